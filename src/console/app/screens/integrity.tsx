import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { JobProgressView, useJobRun, type JobRun } from '../jobs.js';
import { triggerLabel } from '../labels.js';
import { saveText } from '../download.js';
import { formatNumber, t } from '../i18n/index.js';
import { Alert, Badge, Button, Card, ErrorAlert, Facts, Loading, Time, bytes, useAction, useAsync } from '../ui.js';

/**
 * The integrity control of the whole document store (src/vault/verify-routes.ts), on the auditor's
 * audit page: start it now (the weekly `vault.scrub` job, as `coffre vault verify --all`), follow
 * it, and read the signed report of the latest runs: ids and counts only, never content.
 */
export interface IntegrityReport {
  type: 'coffre.integrity-report';
  scope: { kind: string; id: string | null };
  startedAt: string;
  finishedAt: string;
  documents: number;
  versions: number;
  bytes: number;
  ok: boolean;
  failures: { documentId: string; workspaceId: string; version: number; blobId: string; problem: string }[];
  seal?: { algorithm: string; certificateFingerprint: string; signature: string };
}
interface ScrubRun {
  id: number;
  trigger: string;
  actor: string;
  startedAt: string;
  endedAt: string | null;
  outcome: JobRun['outcome'];
  progress: JobRun['progress'];
  error: string | null;
  report: IntegrityReport | null;
}

const PROBLEMS = ['INTEGRITY', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'MISSING', 'KEY'] as const;
const problemLabel = (p: string) =>
  (PROBLEMS as readonly string[]).includes(p) ? t(`integrity.problems.${p as (typeof PROBLEMS)[number]}`) : p;

export function IntegrityCard() {
  const runs = useAsync(
    (signal) => get<{ runs: ScrubRun[] }>('/vault/verify/runs', { signal, query: { limit: 5 } }),
    [],
  );
  const [runId, setRunId] = useState<number | undefined>();
  const start = useAction(async () => setRunId((await post<{ runId: number }>('/vault/verify')).runId));
  const live = useJobRun(runId === undefined ? undefined : `/vault/verify/runs/${runId}`, () => runs.reload());
  const running = runs.data?.runs.find((r) => r.outcome === 'running');
  const latest = runs.data?.runs.find((r) => r.report);
  return (
    <Card
      title={t('integrity.title')}
      actions={
        <Button
          variant="primary"
          busy={start.busy}
          disabled={!!running || live.run?.outcome === 'running'}
          onClick={() => void start.run()}
        >
          {t('integrity.start')}
        </Button>
      }
    >
      <p class="muted small">{t('integrity.description')}</p>
      <ErrorAlert error={start.error ?? live.error ?? runs.error} />
      {live.run ? <JobProgressView run={live.run as JobRun} label={t('integrity.job')} /> : null}
      {runs.loading && !runs.data ? <Loading /> : null}
      {runs.data && !latest ? <p class="muted small">{t('integrity.none')}</p> : null}
      {latest?.report ? <Report run={latest} report={latest.report} /> : null}
    </Card>
  );
}

function Report({ run, report }: { run: ScrubRun; report: IntegrityReport }) {
  return (
    <div class="stack" data-testid="integrity-report" data-ok={String(report.ok)}>
      {report.ok ? (
        <Alert kind="ok" title={t('integrity.ok')}>
          {t('integrity.okText', {
            versions: formatNumber(report.versions),
            documents: formatNumber(report.documents),
            bytes: bytes(report.bytes),
          })}
        </Alert>
      ) : (
        <Alert kind="error" title={t('integrity.failed', { count: report.failures.length })}>
          {t('integrity.failedText')}
        </Alert>
      )}
      <Facts
        items={[
          [t('integrity.when'), <Time t={report.finishedAt} />],
          [t('integrity.by'), `${triggerLabel(run.trigger)} · ${run.actor}`],
          [t('integrity.versions'), formatNumber(report.versions)],
          [t('integrity.documents'), formatNumber(report.documents)],
          [t('integrity.bytes'), bytes(report.bytes)],
          [
            t('integrity.seal'),
            report.seal ? (
              <>
                <Badge kind="ok">{t('integrity.signed')}</Badge>{' '}
                <span class="small">
                  {report.seal.algorithm} · {t('integrity.certificate')}{' '}
                  <code class="fingerprint" data-testid="integrity-certificate">
                    {report.seal.certificateFingerprint}
                  </code>
                </span>
              </>
            ) : (
              <Badge kind="warn">{t('integrity.unsigned')}</Badge>
            ),
          ],
        ]}
      />
      {report.failures.length ? (
        <div class="table-wrap">
          <table class="table" aria-label={t('integrity.failures')}>
            <thead>
              <tr>
                <th>{t('integrity.col.document')}</th>
                <th class="num">{t('integrity.col.version')}</th>
                <th>{t('integrity.col.problem')}</th>
              </tr>
            </thead>
            <tbody>
              {report.failures.map((f) => (
                <tr data-document={f.documentId} data-problem={f.problem}>
                  <td class="mono small">{f.documentId}</td>
                  <td class="num">{f.version}</td>
                  <td>{problemLabel(f.problem)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <div>
        <Button
          small
          onClick={() =>
            saveText(JSON.stringify(report, null, 2), `coffre-integrity-report-${run.id}.json`, 'application/json')
          }
        >
          {t('integrity.download')}
        </Button>
      </div>
    </div>
  );
}
