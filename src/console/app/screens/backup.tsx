import { useEffect, useState } from 'preact/hooks';
import { del, get, post } from '../api.js';
import type { JobRun } from '../jobs.js';
import { JobProgressView } from '../jobs.js';
import { can, type Me } from '../session.js';
import { outcomeLabel, triggerLabel } from '../labels.js';
import { formatDate, formatNumber, parseDecimal, t, t as tr } from '../i18n/index.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  FormDialog,
  Facts,
  Field,
  Loading,
  PageHeader,
  SelectField,
  TextField,
  Time,
  bytes,
  confirmAction,
  duration,
  notify,
  useAction,
  useAsync,
} from '../ui.js';

/**
 * Backups (src/backup/routes.ts): the seven weekday slots, targets with their declared site and
 * distance, the runs of the backup jobs with live progress, run now and verify now.
 */
interface Backup {
  id: string;
  target: string;
  slot: number;
  slotName: string;
  createdAt: string;
  state: string;
  plainSize: number | null;
  size: number | null;
  parts: number | null;
  members: number | null;
  verifiedAt: string | null;
  error: string | null;
}
interface Target {
  name: string;
  type: string;
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  distanceKm: number;
  allowed: boolean;
  hostKey: string | null;
  createdAt: string;
  createdBy: string;
}
type Run = JobRun & { startedAt: string; endedAt: string | null };

const SLOTS = [1, 2, 3, 4, 5, 6, 7] as const;
const slotName = (s: (typeof SLOTS)[number]) => t(`backup.slots.${s}`);
/** a backup job's name in the console's language (the stable job id when it has none) */
function jobLabel(job: string): string {
  const key = (
    {
      backup: 'backup',
      verify: 'verify',
      'backup.verify': 'weeklyVerify',
      'backup.drill': 'drill',
      'backup.watchdog': 'watchdog',
    } as const
  )[job];
  return key ? t(`backup.jobs.${key}`) : job;
}
const STATES = ['complete', 'failed', 'uploading', 'deleted', 'delete-pending', 'expired'] as const;
const stateLabel = (v: string) =>
  (STATES as readonly string[]).includes(v) ? t(`backup.states.${v as (typeof STATES)[number]}`) : v;

const WEEK = 7 * 86_400_000;

export function BackupPage({ me }: { me: Me }) {
  // an admin who reads no backup data sees only the changes awaiting their decision
  if (!can(me, 'backup:read')) return <ApprovalsPage me={me} />;
  return <OperatorPage me={me} />;
}

function ApprovalsPage({ me }: { me: Me }) {
  const requests = useAsync((signal) => get<{ requests: ChangeRequest[] }>('/backup/approvals', { signal }), []);
  return (
    <>
      <PageHeader title={t('backup.requests.approvalsTitle')} description={t('backup.requests.approvalsDescription')} />
      <Requests me={me} path="/backup/approvals" list={requests} onDecided={() => undefined} />
    </>
  );
}

function OperatorPage({ me }: { me: Me }) {
  const requests = useAsync((signal) => get<{ requests: ChangeRequest[] }>('/backup/requests', { signal }), []);
  const backups = useAsync((signal) => get<{ backups: Backup[] }>('/backup/backups', { signal }), []);
  const targets = useAsync((signal) => get<{ targets: Target[] }>('/backup/targets', { signal }), []);
  const runs = useAsync((signal) => get<{ runs: Run[] }>('/backup/runs', { signal }), []);
  const escrow = useAsync((signal) => get<{ keys: EscrowKey[] }>('/backup/escrow', { signal }), []);
  const drills = useAsync((signal) => get<{ drills: Drill[] }>('/backup/drills', { signal, query: { limit: 5 } }), []);
  const [adding, setAdding] = useState(false);
  const runner = can(me, 'backup:run');
  const manager = can(me, 'backup:manage');
  const running = runs.data?.runs.find((r) => r.outcome === 'running' && r.job !== 'backup.watchdog');
  const [watch, setWatch] = useState(false);
  const live = (backups.data?.backups ?? []).filter((b) => b.state !== 'deleted' && b.state !== 'failed');

  // while a job runs (or was just started), follow it every second; then refresh the lists
  useEffect(() => {
    if (!running && !watch) return;
    const timer = setTimeout(() => {
      runs.reload();
      if (!running) {
        setWatch(false);
        backups.reload();
      }
    }, 1000);
    return () => clearTimeout(timer);
  }, [runs.data, watch]);

  // a verification started here runs outside the job table: follow the backup's own record
  const [verifying, setVerifying] = useState<{ id: string; before: string | null; since: number } | undefined>();
  useEffect(() => {
    if (!verifying) return;
    const b = backups.data?.backups.find((x) => x.id === verifying.id);
    if (b && b.verifiedAt !== verifying.before) {
      notify(
        b.error ? t('backup.verifyFailed', { id: b.id, error: b.error }) : t('backup.verifyDone', { id: b.id }),
        b.error ? 'error' : 'ok',
      );
      setVerifying(undefined);
      runs.reload();
      return;
    }
    if (Date.now() - verifying.since > 10 * 60_000) return setVerifying(undefined);
    const timer = setTimeout(() => backups.reload(), 1000);
    return () => clearTimeout(timer);
  }, [backups.data, verifying]);

  const start = useAction(async (what: 'run' | 'verify', id?: string) => {
    if (what === 'run') {
      await post('/backup/run');
      notify(tr('backup.started'));
      setWatch(true);
      runs.reload();
      return;
    }
    const target = id
      ? live.find((b) => b.id === id)
      : [...live].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
    if (!target) return;
    await post(`/backup/backups/${encodeURIComponent(target.id)}/verify`);
    setVerifying({ id: target.id, before: target.verifiedAt, since: Date.now() });
  });
  const lastEnded = runs.data?.runs.find((r) => r.outcome !== 'running' && r.job === 'backup');
  const busy = !!running || start.busy || !!verifying;
  const noTarget = targets.data && targets.data.targets.length === 0;
  return (
    <>
      <PageHeader
        title={tr('backup.title')}
        description={tr('backup.description')}
        actions={
          runner ? (
            <>
              <Button
                variant="primary"
                busy={start.busy}
                disabled={busy || !!noTarget}
                onClick={() => void start.run('run')}
              >
                {tr('backup.now')}
              </Button>
              <Button disabled={busy || live.length === 0} onClick={() => void start.run('verify')}>
                {tr('backup.verifyLatest')}
              </Button>
            </>
          ) : null
        }
      />
      <ErrorAlert error={start.error} />
      {verifying ? (
        <Card>
          <div class="row" data-testid="verifying" role="status">
            <span class="spinner" aria-hidden="true" />
            <strong>{t('backup.verifying', { id: verifying.id })}</strong>
            <span class="muted">{t('backup.verifyingText')}</span>
          </div>
        </Card>
      ) : null}
      {running ? (
        <Card>
          <JobProgressView run={running} label={jobLabel(running.job)} />
        </Card>
      ) : lastEnded &&
        watch === false &&
        lastEnded.outcome === 'failed' &&
        !(noTarget && /BACKUP_NO_TARGET/.test(lastEnded.error ?? '')) ? (
        <RunFailed run={lastEnded} />
      ) : null}
      {noTarget ? (
        <Alert kind="warn" title={tr('backup.noTarget.title')}>
          {manager ? tr('backup.noTarget.manager') : tr('backup.noTarget.other')}
        </Alert>
      ) : null}
      <ErrorAlert error={backups.error ?? targets.error ?? runs.error} />
      <Card title={tr('backup.week')}>
        {backups.loading && !backups.data ? (
          <Loading />
        ) : (
          <Week backups={live} runner={runner} busy={busy} onVerify={(id) => void start.run('verify', id)} />
        )}
      </Card>
      <div class="grid-2">
        <Targets
          targets={targets.data?.targets}
          manager={manager}
          onAdd={() => setAdding(true)}
          onRemoved={() => (targets.reload(), backups.reload())}
        />
        <Runs runs={runs.data?.runs} />
      </div>
      <ErrorAlert error={escrow.error ?? drills.error} />
      <div class="grid-2">
        <Drills drills={drills.data?.drills} />
        <EscrowKeys keys={escrow.data?.keys} manager={manager} onAdded={() => (escrow.reload(), requests.reload())} />
      </div>
      <Requests me={me} path="/backup/requests" list={requests} onDecided={() => (targets.reload(), escrow.reload())} />
      {manager ? (
        <AddTarget
          open={adding}
          onClose={() => setAdding(false)}
          onAdded={() => (setAdding(false), targets.reload(), requests.reload())}
        />
      ) : null}
    </>
  );
}

function RunFailed({ run }: { run: Run }) {
  const unreachable = /TARGET_UNREACHABLE|ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|unreachable/i.test(run.error ?? '');
  const hsm = /KEYS_UNAVAILABLE/.test(run.error ?? '');
  return (
    <Alert
      kind="error"
      title={
        unreachable
          ? t('backup.failed.unreachable')
          : hsm
            ? t('backup.failed.hsm')
            : t('backup.failed.other', { job: jobLabel(run.job) })
      }
    >
      <p>{run.error}</p>
      <p class="muted small">
        {unreachable
          ? t('backup.failed.unreachableText')
          : hsm
            ? t('backup.failed.hsmText')
            : t('backup.failed.otherText')}
      </p>
    </Alert>
  );
}

function Week({
  backups,
  runner,
  busy,
  onVerify,
}: {
  backups: Backup[];
  runner: boolean;
  busy: boolean;
  onVerify: (id: string) => void;
}) {
  const bySlot = new Map<number, Backup>();
  for (const b of backups) {
    const cur = bySlot.get(b.slot);
    if (!cur || cur.createdAt < b.createdAt) bySlot.set(b.slot, b);
  }
  return (
    <div class="week" aria-label={t('backup.slot.label')}>
      {SLOTS.map((s) => {
        const b = bySlot.get(s);
        if (!b) {
          return (
            <div class="slot empty-slot" data-slot={s}>
              <h3>{slotName(s)}</h3>
              <span>{t('backup.slot.none')}</span>
            </div>
          );
        }
        const verified = b.verifiedAt !== null && b.state === 'complete';
        return (
          <div class="slot" data-slot={s} data-state={b.state} data-verified={verified ? 'true' : 'false'}>
            <h3>{slotName(s)}</h3>
            <Time t={b.createdAt} />
            <div>{bytes(b.size)}</div>
            <div class="muted small">
              {t('backup.slot.counts', {
                members: b.members === null ? '—' : t('backup.slot.members', { count: b.members }),
                parts: b.parts === null ? '—' : t('backup.slot.parts', { count: b.parts }),
              })}
            </div>
            <div>
              {verified ? (
                <Badge kind="ok">{t('backup.slot.verified')}</Badge>
              ) : b.state === 'complete' ? (
                <Badge kind="warn">{t('backup.slot.notVerified')}</Badge>
              ) : (
                <Badge kind={b.error ? 'error' : 'warn'}>{stateLabel(b.state)}</Badge>
              )}
            </div>
            {b.verifiedAt ? (
              <div class="muted small">
                {t('backup.slot.checked')} <Time t={b.verifiedAt} />
              </div>
            ) : null}
            <div class="muted small">
              {t('backup.slot.replacedAfter', {
                date: formatDate(new Date(new Date(b.createdAt).getTime() + WEEK), { dateStyle: 'medium' }),
              })}
            </div>
            <div class="muted small mono" title={t('backup.slot.target')}>
              → {b.target}
            </div>
            {runner && b.state === 'complete' ? (
              <Button
                small
                disabled={busy}
                onClick={() => onVerify(b.id)}
                aria-label={t('backup.slot.verifyLabel', { day: slotName(s) })}
              >
                {t('backup.slot.verify')}
              </Button>
            ) : null}
          </div>
        );
      })}
    </div>
  );
}

function Targets({
  targets,
  manager,
  onAdd,
  onRemoved,
}: {
  targets: Target[] | undefined;
  manager: boolean;
  onAdd: () => void;
  onRemoved: () => void;
}) {
  // removal destroys every backup at the target first: said in full before anything happens
  const remove = useAction(async (t: Target) => {
    const last = (targets ?? []).length === 1;
    const ok = await confirmAction({
      title: tr('backup.remove.title', { name: t.name }),
      body: (
        <>
          <p>{tr('backup.remove.body', { name: t.name })}</p>
          {last ? <Alert kind="warn">{tr('backup.remove.last')}</Alert> : null}
        </>
      ),
      confirmLabel: tr('backup.remove.confirm'),
      danger: true,
    });
    if (!ok) return;
    // a request that another admin approves (two-person rule): nothing is destroyed before that
    const r = await del<{ status: 'pending'; request: { id: string } }>(
      `/backup/targets/${encodeURIComponent(t.name)}`,
    );
    notify(tr('backup.requests.pendingNotice', { id: r.request.id }));
    onRemoved();
  });
  return (
    <Card
      title={tr('backup.targets')}
      class="flush"
      actions={
        manager ? (
          <Button small onClick={onAdd}>
            {tr('backup.add')}
          </Button>
        ) : null
      }
    >
      <ErrorAlert error={remove.error} />
      {!targets ? <Loading /> : null}
      {targets && targets.length === 0 ? <EmptyState icon="archive" title={tr('backup.noTargetYet')} /> : null}
      {targets && targets.length ? (
        <div class="table-wrap">
          <table class="table" aria-label={tr('backup.targetsLabel')}>
            <thead>
              <tr>
                <th>{tr('documents.col.name')}</th>
                <th>{tr('backup.site')}</th>
                <th class="num">{tr('backup.distance')}</th>
                <th>{tr('backup.policy')}</th>
                {manager ? (
                  <th class="actions">
                    <span class="sr-only">{tr('common.actions')}</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {targets.map((t) => (
                <tr data-target={t.name}>
                  <td>
                    <strong>{t.name}</strong> <Badge>{t.type}</Badge>
                    <div class="muted small mono">{t.url}</div>
                  </td>
                  <td>
                    {t.jurisdiction} · {formatNumber(t.lat, { minimumFractionDigits: 3, maximumFractionDigits: 3 })} ;{' '}
                    {formatNumber(t.lon, { minimumFractionDigits: 3, maximumFractionDigits: 3 })}
                  </td>
                  <td class="num">{tr('backup.km', { km: formatNumber(Math.round(t.distanceKm)) })}</td>
                  <td>
                    {t.allowed ? (
                      <Badge kind="ok">{tr('backup.allowed')}</Badge>
                    ) : (
                      <Badge kind="error">{tr('backup.notAllowed')}</Badge>
                    )}
                  </td>
                  {manager ? (
                    <td class="actions">
                      <Button small variant="danger" busy={remove.busy} onClick={() => void remove.run(t)}>
                        {tr('backup.remove.button')}
                      </Button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}

function Runs({ runs }: { runs: Run[] | undefined }) {
  const shown = (runs ?? []).filter((r) => r.job !== 'backup.watchdog').slice(0, 10);
  return (
    <Card title={t('backup.runs.title')} class="flush">
      {shown.length === 0 ? (
        <EmptyState icon="clock" title={t('backup.runs.none')} />
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label={t('backup.runs.label')}>
            <thead>
              <tr>
                <th>{t('backup.runs.job')}</th>
                <th>{t('backup.runs.started')}</th>
                <th class="num">{t('backup.runs.took')}</th>
                <th>{t('backup.runs.outcome')}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr data-job={r.job} data-outcome={r.outcome}>
                  <td>
                    {jobLabel(r.job)}
                    <div class="muted small">{triggerLabel(r.trigger)}</div>
                  </td>
                  <td>
                    <Time t={r.startedAt} />
                  </td>
                  <td class="num">
                    {r.endedAt ? duration(new Date(r.endedAt).getTime() - new Date(r.startedAt).getTime()) : '…'}
                  </td>
                  <td>
                    <Badge kind={r.outcome === 'succeeded' ? 'ok' : r.outcome === 'running' ? 'accent' : 'error'}>
                      {outcomeLabel(r.outcome)}
                    </Badge>
                    {r.error ? <div class="small field-error">{r.error}</div> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function AddTarget({ open, onClose, onAdded }: { open: boolean; onClose: () => void; onAdded: () => void }) {
  const [f, setF] = useState({ name: '', type: 'sftp', url: '', jurisdiction: '', lat: '', lon: '', hostKey: '' });
  const add = useAction(async () => {
    const r = await post<{ request: ChangeRequest }>('/backup/targets', {
      name: f.name.trim(),
      type: f.type,
      url: f.url.trim(),
      jurisdiction: f.jurisdiction.trim().toUpperCase(),
      // a French decimal comma is accepted ("45,76")
      lat: parseDecimal(f.lat),
      lon: parseDecimal(f.lon),
      ...(f.hostKey.trim() ? { hostKey: f.hostKey.trim() } : {}),
    });
    notify(t('backup.requests.pendingNotice', { id: r.request.id }));
    setF({ name: '', type: 'sftp', url: '', jurisdiction: '', lat: '', lon: '', hostKey: '' });
    onAdded();
  });
  const ok =
    f.name &&
    f.url &&
    f.jurisdiction &&
    f.lat !== '' &&
    f.lon !== '' &&
    Number.isFinite(parseDecimal(f.lat)) &&
    Number.isFinite(parseDecimal(f.lon));
  return (
    <FormDialog
      open={open}
      title={tr('backup.addTitle')}
      id="add-target"
      class="stack"
      submitLabel={tr('backup.register')}
      action={add}
      ready={!!ok}
      onClose={onClose}
    >
      <TextField
        label={tr('documents.col.name')}
        value={f.name}
        onValue={(v) => setF({ ...f, name: v })}
        required
        autoFocus
        hint={tr('backup.nameHint')}
      />
      <SelectField
        label={tr('documents.col.type')}
        value={f.type}
        onValue={(v) => setF({ ...f, type: v })}
        options={[
          { value: 'sftp', label: tr('backup.types.sftp') },
          { value: 'path', label: tr('backup.types.path') },
        ]}
      />
      <TextField
        label={tr('account.sessions.address')}
        value={f.url}
        onValue={(v) => setF({ ...f, url: v })}
        required
        placeholder={f.type === 'sftp' ? 'sftp://coffre@backup.example:22/srv/coffre' : 'file:///mnt/secondary'}
      />
      <div class="grid-2">
        <TextField
          label={tr('backup.jurisdiction')}
          value={f.jurisdiction}
          onValue={(v) => setF({ ...f, jurisdiction: v })}
          required
          maxLength={2}
          placeholder="FR"
        />
        <div class="row">
          <TextField
            label={tr('backup.lat')}
            value={f.lat}
            onValue={(v) => setF({ ...f, lat: v })}
            required
            inputMode="text"
            placeholder={formatNumber(45.76)}
          />
          <TextField
            label={tr('backup.lon')}
            value={f.lon}
            onValue={(v) => setF({ ...f, lon: v })}
            required
            inputMode="text"
            placeholder={formatNumber(4.84)}
          />
        </div>
      </div>
      {f.type === 'sftp' ? (
        <TextField
          label={tr('backup.hostKey')}
          value={f.hostKey}
          onValue={(v) => setF({ ...f, hostKey: v })}
          placeholder="ssh-ed25519 AAAA…"
          hint={tr('backup.hostKeyHint')}
        />
      ) : null}
      <p class="muted small">{tr('backup.siteRule')}</p>
    </FormDialog>
  );
}

interface EscrowKey {
  fingerprint: string;
  userIds: string[];
  algorithm: string;
  expiresAt: string | null;
  createdAt: string;
  createdBy: string;
  createdByName: string | null;
}
interface Drill {
  backupId: string;
  target: string | null;
  startedAt: string;
  endedAt: string;
  ok: boolean;
  rtoMs: number | null;
  documents: number | null;
  versions: number | null;
  blobs: number | null;
  samples: number | null;
  error: string | null;
  /** `local`, or `secondary`: the signed report of a drill on the secondary site */
  where: string;
  site: string | null;
}

/** the latest restore drills (GET /backup/drills): the newest first, with its RTO; the secondary site's apart */
function Drills({ drills }: { drills: Drill[] | undefined }) {
  const last = drills?.find((d) => d.where !== 'secondary');
  const secondary = drills?.find((d) => d.where === 'secondary');
  return (
    <Card title={t('backup.drillsCard.title')} class="flush">
      <div class="pad">
        <p class="muted small">{t('backup.drillsCard.text')}</p>
        {last ? (
          <div data-testid="last-drill" data-ok={last.ok ? 'true' : 'false'}>
            <Facts
              items={[
                [t('backup.drillsCard.last'), <Time t={last.endedAt} />],
                [
                  t('backup.drillsCard.result'),
                  last.ok ? (
                    <Badge kind="ok">{t('backup.drills.passed')}</Badge>
                  ) : (
                    <Badge kind="error">{t('backup.drills.failed')}</Badge>
                  ),
                ],
                [
                  t('backup.drillsCard.rto'),
                  last.rtoMs !== null ? <strong data-testid="drill-rto">{duration(last.rtoMs)}</strong> : '—',
                ],
                [t('backup.drillsCard.backup'), <code>{last.backupId}</code>],
                [
                  t('backup.drillsCard.restored'),
                  last.ok
                    ? t('backup.drillsCard.restoredText', {
                        documents: t('backup.drillsCard.documents', { count: last.documents ?? 0 }),
                        versions: t('backup.drillsCard.versions', { count: last.versions ?? 0 }),
                        samples: t('backup.drillsCard.samples', { count: last.samples ?? 0 }),
                      })
                    : (last.error ?? '—'),
                ],
              ]}
            />
          </div>
        ) : null}
        <div data-testid="last-secondary-drill" data-ok={secondary ? (secondary.ok ? 'true' : 'false') : 'none'}>
          <h3 class="small">{t('backup.drills.secondaryTitle')}</h3>
          {secondary ? (
            <Facts
              items={[
                [t('backup.drills.when'), <Time t={secondary.endedAt} />],
                [t('backup.drills.site'), secondary.site ?? '—'],
                [
                  t('backup.drills.outcome'),
                  secondary.ok ? (
                    <Badge kind="ok">{t('backup.drills.passed')}</Badge>
                  ) : (
                    <Badge kind="error">{t('backup.drills.failed')}</Badge>
                  ),
                ],
                [
                  t('backup.drillsCard.rto'),
                  secondary.rtoMs !== null ? (
                    <strong data-testid="secondary-drill-rto">{duration(secondary.rtoMs)}</strong>
                  ) : (
                    (secondary.error ?? '—')
                  ),
                ],
              ]}
            />
          ) : (
            <p class="muted small">{t('backup.drills.secondaryNone')}</p>
          )}
        </div>
      </div>
      {drills && drills.length === 0 ? (
        <EmptyState icon="clock" title={t('backup.drillsCard.none')}>
          {t('backup.drillsCard.noneText')} <code>coffre backup drill</code>.
        </EmptyState>
      ) : null}
      {drills && drills.some((d) => d !== last && d !== secondary) ? (
        <div class="table-wrap">
          <table class="table" aria-label={t('backup.drillsCard.label')}>
            <thead>
              <tr>
                <th>{t('backup.drillsCard.ended')}</th>
                <th>{t('backup.drillsCard.backup')}</th>
                <th class="num">{t('backup.drillsCard.rto')}</th>
                <th>{t('backup.drillsCard.result')}</th>
              </tr>
            </thead>
            <tbody>
              {drills
                .filter((d) => d !== last && d !== secondary)
                .map((d) => (
                  <tr data-drill={d.backupId}>
                    <td>
                      <Time t={d.endedAt} />
                    </td>
                    <td>
                      <code>{d.backupId}</code>
                    </td>
                    <td class="num">{d.rtoMs !== null ? duration(d.rtoMs) : '—'}</td>
                    <td>
                      {d.ok ? (
                        <Badge kind="ok">{t('backup.drills.passed')}</Badge>
                      ) : (
                        <Badge kind="error">{t('backup.drills.failed')}</Badge>
                      )}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}

/** escrow keys (GET /backup/escrow): the customer's offline OpenPGP recovery keys; operators add one (POST /backup/escrow) */
function EscrowKeys({
  keys,
  manager,
  onAdded,
}: {
  keys: EscrowKey[] | undefined;
  manager: boolean;
  onAdded: () => void;
}) {
  return (
    <Card title={t('backup.escrow.title')} class="flush">
      <div class="pad">
        <p class="muted small">
          {t('backup.escrow.text')} {manager ? t('backup.escrow.manager') : t('backup.escrow.other')}{' '}
          <code>coffre backup escrow add</code>).
        </p>
        <p class="small" data-testid="escrow-warning">
          <strong>{t('backup.escrow.warningStrong')}</strong> {t('backup.escrow.warning')} (
          <code>coffre backup escrow expire</code>), {t('backup.escrow.warningEnd')}
        </p>
        {manager ? <AddEscrow onAdded={onAdded} /> : null}
      </div>
      {keys && keys.length === 0 ? (
        <EmptyState icon="lock" title={t('backup.escrow.none')}>
          {t('backup.escrow.noneText')}
        </EmptyState>
      ) : null}
      {keys && keys.length ? (
        <div class="table-wrap">
          <table class="table" aria-label={t('backup.escrow.label')}>
            <thead>
              <tr>
                <th>{t('backup.escrow.fingerprint')}</th>
                <th>{t('backup.escrow.owner')}</th>
                <th>{t('backup.escrow.added')}</th>
                <th>{t('backup.escrow.by')}</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr data-fingerprint={k.fingerprint}>
                  <td>
                    <code class="fingerprint">{k.fingerprint.replace(/(.{4})/g, '$1 ').trim()}</code>
                    <div class="muted small">
                      {k.algorithm}
                      {k.expiresAt ? (
                        <>
                          {' '}
                          · {t('backup.escrow.expires')} <Time t={k.expiresAt} />
                        </>
                      ) : null}
                    </div>
                  </td>
                  <td>{k.userIds.join(', ') || '—'}</td>
                  <td>
                    <Time t={k.createdAt} />
                  </td>
                  <td>{k.createdByName ?? k.createdBy}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}

const fingerprintText = (f: string) => f.replace(/(.{4})/g, '$1 ').trim();

/** paste an armored public key (`gpg --export --armor KEYID`); the appliance checks GnuPG 2.2 can read what it sends it */
function AddEscrow({ onAdded }: { onAdded: () => void }) {
  const [key, setKey] = useState('');
  const [added, setAdded] = useState<ChangeRequest | undefined>();
  const add = useAction(async () => {
    setAdded(undefined);
    const r = await post<{ request: ChangeRequest }>('/backup/escrow', { publicKey: key.trim() });
    setAdded(r.request);
    setKey('');
    notify(t('backup.requests.pendingNotice', { id: r.request.id }));
    onAdded();
  });
  return (
    <form
      class="stack"
      aria-label={t('backup.escrow.form')}
      onSubmit={(e) => {
        e.preventDefault();
        if (key.trim()) void add.run();
      }}
    >
      <Field label={t('backup.escrow.key')} hint={t('backup.escrow.keyHint')}>
        {(p) => (
          <textarea
            class="input mono"
            rows={4}
            {...p}
            value={key}
            spellcheck={false}
            placeholder="-----BEGIN PGP PUBLIC KEY BLOCK-----"
            onInput={(e) => setKey((e.currentTarget as HTMLTextAreaElement).value)}
          />
        )}
      </Field>
      <ErrorAlert error={add.error} />
      {added ? (
        <Alert kind="ok" title={t('backup.requests.pendingTitle')}>
          <p>
            {t('backup.escrow.fingerprintLabel')}{' '}
            <code class="fingerprint" data-testid="escrow-added">
              {fingerprintText(String(added.change.fingerprint))}
            </code>
            : {t('backup.requests.escrowPending')} {t('backup.escrow.check')}
          </p>
        </Alert>
      ) : null}
      <div>
        <Button variant="primary" type="submit" busy={add.busy} disabled={!key.trim()}>
          {t('backup.escrow.add')}
        </Button>
      </div>
    </form>
  );
}

interface ChangeRequest {
  id: string;
  kind: string;
  change: Record<string, unknown>;
  digest: string;
  summary: string;
  state: string;
  requestedBy: string;
  requestedByName: string | null;
  requestedAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedByName?: string | null;
  decidedAt: string | null;
  reason: string | null;
}
const REQUEST_STATES = ['pending', 'applying', 'applied', 'rejected', 'expired', 'failed'] as const;
const requestState = (v: string) =>
  (REQUEST_STATES as readonly string[]).includes(v)
    ? t(`backup.requests.states.${v as (typeof REQUEST_STATES)[number]}`)
    : v;
const REQUEST_KIND: Record<string, 'ok' | 'error' | 'warn' | 'neutral'> = {
  pending: 'warn',
  applying: 'warn',
  applied: 'ok',
  rejected: 'neutral',
  expired: 'neutral',
  failed: 'error',
};
type RequestView = 'pending' | 'mine' | 'all';

/** pending changes to targets and escrow keys (src/backup/requests.ts): admins decide, operators see them waiting */
function Requests({
  me,
  path,
  list,
  onDecided,
}: {
  me: Me;
  /** where the list comes from: /backup/requests (operators, auditors) or /backup/approvals (admins) */
  path: string;
  list: { data?: { requests: ChangeRequest[] } | undefined; error?: unknown; reload: () => void };
  onDecided: () => void;
}) {
  const approver = can(me, 'backup:approve');
  // pending (what the page loaded), mine (everything I asked for) or every recent request, decided ones too
  const [view, setView] = useState<RequestView>('pending');
  const recent = useAsync(
    (signal) =>
      view === 'pending'
        ? Promise.resolve(undefined)
        : get<{ requests: ChangeRequest[] }>(path, { signal, query: { all: true } }),
    [view, list.data],
  );
  const decide = useAction(async (r: ChangeRequest, how: 'approve' | 'reject') => {
    await post(`/backup/requests/${encodeURIComponent(r.id)}/${how}`, how === 'approve' ? { digest: r.digest } : {});
    notify(
      how === 'approve' ? t('backup.requests.approved', { id: r.id }) : t('backup.requests.rejected', { id: r.id }),
    );
    list.reload();
    onDecided();
  });
  const mine = (r: ChangeRequest) => `user:${me.id}` === r.requestedBy;
  const rows =
    view === 'pending'
      ? (list.data?.requests ?? [])
      : (recent.data?.requests ?? []).filter((r) => view === 'all' || mine(r));
  const views: [RequestView, string][] = [
    ['pending', t('backup.requests.views.pending')],
    ['mine', t('backup.requests.views.mine')],
    ['all', t('backup.requests.views.all')],
  ];
  return (
    <Card
      title={t('backup.requests.title')}
      class="flush"
      actions={
        <div class="row" role="group" aria-label={t('backup.requests.views.label')}>
          {views.map(([v, label]) => (
            <Button
              small
              variant={v === view ? 'primary' : 'secondary'}
              aria-pressed={v === view}
              onClick={() => setView(v)}
            >
              {label}
            </Button>
          ))}
        </div>
      }
    >
      <ErrorAlert error={(list.error as Error | undefined) ?? recent.error ?? decide.error} />
      {view !== 'pending' && recent.loading && !recent.data ? <Loading /> : null}
      {rows.length === 0 ? (
        <p class="muted small">
          {view === 'pending'
            ? t('backup.requests.none')
            : view === 'mine'
              ? t('backup.requests.noneMine')
              : t('backup.requests.noneRecent')}
        </p>
      ) : (
        <table class="table" aria-label={t('backup.requests.title')} data-testid="backup-requests">
          <tbody>
            {rows.map((r) => {
              const own = mine(r);
              const pending = r.state === 'pending';
              return (
                <tr key={r.id} data-request={r.id} data-state={r.state}>
                  <td>
                    <strong>{r.summary}</strong>
                    <div class="muted small">
                      {t('backup.requests.by')} {r.requestedByName ?? r.requestedBy}, <Time t={r.requestedAt} />;{' '}
                      {pending ? (
                        <>
                          {t('backup.requests.expires')} <Time t={r.expiresAt} />;{' '}
                        </>
                      ) : r.decidedAt ? (
                        <>
                          {t('backup.requests.decided', { who: r.decidedByName ?? r.decidedBy ?? '—' })}{' '}
                          <Time t={r.decidedAt} />;{' '}
                        </>
                      ) : null}
                      {r.reason ? <>{t('backup.requests.reason', { reason: r.reason })}; </> : null}
                      {t('backup.requests.digest')} <code>{r.digest.slice(0, 16)}…</code>
                    </div>
                    <details class="small">
                      <summary>{t('backup.requests.fullDigest')}</summary>
                      <code class="digest" data-testid="request-digest">
                        {r.digest}
                      </code>
                      <p class="muted">{t('backup.requests.digestHint')}</p>
                    </details>
                  </td>
                  <td>
                    {!pending ? (
                      <Badge kind={REQUEST_KIND[r.state] ?? 'neutral'}>{requestState(r.state)}</Badge>
                    ) : approver && !own ? (
                      <div class="row">
                        <Button variant="primary" busy={decide.busy} onClick={() => void decide.run(r, 'approve')}>
                          {t('backup.requests.approve')}
                        </Button>
                        <Button busy={decide.busy} onClick={() => void decide.run(r, 'reject')}>
                          {t('backup.requests.reject')}
                        </Button>
                      </div>
                    ) : (
                      <Badge kind="warn">
                        {own && approver ? t('backup.requests.own') : t('backup.requests.pendingBadge')}
                      </Badge>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Card>
  );
}
