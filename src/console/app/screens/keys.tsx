import { useState } from 'preact/hooks';
import { ApiError, get, post } from '../api.js';
import { JobProgressView, useJobRun } from '../jobs.js';
import { can, type Me } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  Dialog,
  ErrorAlert,
  Facts,
  Loading,
  PageHeader,
  Time,
  useAction,
  useAsync,
  when,
} from '../ui.js';
import { formatNumber, t } from '../i18n/index.js';

/** Key status and rotation (src/keys/routes.ts), for IT admins (read-only for auditors). */
interface KekVersion {
  version: number;
  label: string;
  state: string;
  inHsm: boolean;
  wrappedKeys: number;
  createdAt: string | null;
  retiredAt: string | null;
  destroyAfter: string | null;
  destroyedAt: string | null;
  attributes?: {
    extractable: boolean;
    sensitive: boolean;
    neverExtractable: boolean;
    alwaysSensitive: boolean;
    local: boolean;
    keyType: string;
    valueLen: number;
    mechanism: string;
    wrap: boolean;
    unwrap: boolean;
  };
}
interface KeyStatus {
  up: boolean;
  module: string;
  slot: number;
  token: { label: string; serial: string; manufacturer: string; model: string };
  kek: { labelPrefix: string; currentVersion: number; currentLabel: string };
  versions: KekVersion[];
  latencyMs: number;
  retiredKekGraceDays: number;
  /** the embedded SoftHSM2 token: evaluation only */
  embeddedToken?: {
    evaluationOnly: true;
    tokenConfig: string | null;
    pinStore: 'file' | 'systemd-credential';
    message: string;
  };
}

export function KeysPage({ me }: { me: Me }) {
  const s = useAsync((signal) => get<KeyStatus>('/keys/status', { signal }), []);
  const [confirm, setConfirm] = useState(false);
  const [job, setJob] = useState<string | undefined>();
  const { run, error: jobError } = useJobRun(job, () => s.reload());
  const rotate = useAction(async () => {
    const r = await post<{ runId: number }>('/keys/rotate', { confirm: true });
    setConfirm(false);
    setJob(`/keys/rotations/${r.runId}`);
  });
  const hsmDown = s.error instanceof ApiError && s.error.code === 'KEYS_UNAVAILABLE';
  return (
    <>
      <PageHeader
        title={t('keys.title')}
        description={t('keys.description')}
        actions={
          can(me, 'keys:manage') ? (
            <Button
              variant="primary"
              disabled={!s.data?.up || run?.outcome === 'running'}
              onClick={() => setConfirm(true)}
            >
              {t('keys.rotate')}
            </Button>
          ) : null
        }
      />
      {hsmDown ? (
        <Alert kind="error" title={t('errors.keys.title')}>
          {t('keys.down')} (<code>keys</code>)
        </Alert>
      ) : (
        <ErrorAlert error={s.error} />
      )}
      <ErrorAlert error={jobError} />
      {s.data?.embeddedToken ? (
        <Alert kind="warn" title={t('keys.embedded')}>
          <span data-testid="embedded-token">{s.data.embeddedToken.message}</span>
        </Alert>
      ) : null}
      {run ? (
        <Card>
          <JobProgressView run={run} label={t('keys.rotation')} />
        </Card>
      ) : null}
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <>
          <Card title={t('keys.hsm')}>
            <Facts
              items={[
                [
                  t('keys.f.state'),
                  s.data.up ? (
                    <Badge kind="ok">{t('keys.available')}</Badge>
                  ) : (
                    <Badge kind="error">{t('keys.unavailable')}</Badge>
                  ),
                ],
                [t('keys.f.module'), <code>{s.data.module}</code>],
                [t('keys.f.slot'), String(s.data.slot)],
                [t('keys.f.token'), t('keys.tokenValue', { label: s.data.token.label, serial: s.data.token.serial })],
                [t('keys.f.device'), `${s.data.token.manufacturer} ${s.data.token.model}`],
                [t('keys.f.current'), <code data-testid="kek-current">{s.data.kek.currentLabel}</code>],
                [t('keys.f.latency'), t('common.duration.ms', { ms: formatNumber(s.data.latencyMs) })],
                [t('keys.f.grace'), t('keys.days', { count: s.data.retiredKekGraceDays })],
              ]}
            />
          </Card>
          <Card title={t('keys.versions')} class="flush">
            <div class="table-wrap">
              <table class="table" aria-label={t('keys.versionsLabel')}>
                <thead>
                  <tr>
                    <th>{t('keys.col.label')}</th>
                    <th>{t('keys.f.state')}</th>
                    <th>{t('keys.col.attributes')}</th>
                    <th class="num">{t('keys.col.wrapped')}</th>
                    <th>{t('keys.col.created')}</th>
                  </tr>
                </thead>
                <tbody>
                  {[...s.data.versions].reverse().map((v) => (
                    <tr data-version={v.version} data-state={v.state}>
                      <td class="mono">
                        {v.label}{' '}
                        {v.version === s.data!.kek.currentVersion ? (
                          <Badge kind="accent">{t('keys.current')}</Badge>
                        ) : null}
                      </td>
                      <td>
                        <Badge kind={v.state === 'active' ? 'ok' : v.state === 'destroyed' ? 'error' : 'neutral'}>
                          {v.state === 'active' || v.state === 'retired' || v.state === 'destroyed'
                            ? t(`keys.state.${v.state}`)
                            : v.state}
                        </Badge>
                        {v.state === 'retired' && v.destroyAfter ? (
                          <div class="muted small">{t('keys.destroyedAfter', { date: when(v.destroyAfter) })}</div>
                        ) : null}
                      </td>
                      <td class="small">
                        {v.attributes ? (
                          <div class="row">
                            <Badge kind={v.attributes.extractable ? 'error' : 'ok'}>
                              extractable: {String(v.attributes.extractable)}
                            </Badge>
                            <Badge kind={v.attributes.sensitive ? 'ok' : 'error'}>
                              sensitive: {String(v.attributes.sensitive)}
                            </Badge>
                            <Badge kind={v.attributes.neverExtractable ? 'ok' : 'warn'}>
                              never extractable: {String(v.attributes.neverExtractable)}
                            </Badge>
                            <span class="muted mono">
                              {v.attributes.keyType} {v.attributes.valueLen * 8}-bit · {v.attributes.mechanism}
                            </span>
                          </div>
                        ) : (
                          <span class="muted">{v.inHsm ? '—' : t('keys.notInHsm')}</span>
                        )}
                      </td>
                      <td class="num">{v.wrappedKeys}</td>
                      <td>
                        <Time t={v.createdAt} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        </>
      ) : null}
      <Dialog
        open={confirm}
        title={t('keys.confirm.title')}
        onClose={() => setConfirm(false)}
        footer={
          <>
            <Button onClick={() => setConfirm(false)}>{t('common.cancel')}</Button>
            <Button variant="primary" busy={rotate.busy} onClick={() => void rotate.run()}>
              {t('keys.confirm.go')}
            </Button>
          </>
        }
      >
        <ErrorAlert error={rotate.error} />
        <p>{t('keys.confirm.body', { days: s.data?.retiredKekGraceDays ?? '?' })}</p>
      </Dialog>
    </>
  );
}
