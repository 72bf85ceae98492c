import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { JobProgressView, useJobRun, type JobRun } from '../jobs.js';
import { can, type Me } from '../session.js';
import { Alert, Badge, Button, Card, EmptyState, ErrorAlert, Facts, Loading, PageHeader, Time, bytes, duration, useAction, useAsync } from '../ui.js';

/** Backups (src/backup): targets and their sites, escrow keys, the 7 weekday slots, run and verify. */
interface Target {
  name: string;
  type: string;
  url: string;
  jurisdiction: string;
  lat: number;
  lon: number;
  distanceKm: number;
  reachable?: boolean | null;
  lastError?: string | null;
}
interface EscrowKey {
  fingerprint: string;
  userIds: string[];
  algorithm?: string;
  addedAt: string;
}
interface Backup {
  id: string;
  target: string;
  slot: string;
  createdAt: string;
  size: number;
  durationMs: number | null;
  verification: 'verified' | 'failed' | 'pending' | string;
  verifiedAt: string | null;
  deleteAfter: string | null;
}
interface Drill {
  at: string;
  ok: boolean;
  rtoMs: number;
  backupId: string;
}
interface Overview {
  site: { jurisdiction: string; lat: number; lon: number };
  targets: Target[];
  escrow: EscrowKey[];
  backups: Backup[];
  lastDrill: Drill | null;
  nextRun: string | null;
}

const SLOTS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const SLOT_NAMES: Record<string, string> = { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday', sun: 'Sunday' };

export function BackupPage({ me }: { me: Me }) {
  const o = useAsync((signal) => get<Overview>('/backup', { signal }), []);
  const [job, setJob] = useState<{ path: string; label: string } | undefined>();
  const { run, error: jobError } = useJobRun(job?.path, () => o.reload());
  const start = useAction(async (what: 'run' | 'verify', id?: string) => {
    const r = await post<{ runId: number }>(what === 'run' ? '/backup/run' : '/backup/verify', what === 'verify' ? { backup: id ?? 'latest' } : {});
    setJob({ path: `/jobs/runs/${r.runId}`, label: what === 'run' ? 'Backup' : 'Verification' });
  });
  const runner = can(me, 'backup:run');
  const busy = run?.outcome === 'running' || start.busy;
  return (
    <>
      <PageHeader
        title="Backups"
        description="Encrypted every day to a distant site in the same jurisdiction; seven weekday slots, each verified before the one it replaces is destroyed."
        actions={
          runner ? (
            <>
              <Button variant="primary" busy={start.busy} disabled={busy} onClick={() => void start.run('run')}>
                Back up now
              </Button>
              <Button disabled={busy} onClick={() => void start.run('verify')}>
                Verify latest
              </Button>
            </>
          ) : null
        }
      />
      <ErrorAlert error={start.error ?? jobError} />
      {run ? (
        <Card>
          <JobProgressView run={run} label={job?.label ?? 'Job'} />
        </Card>
      ) : null}
      <ErrorAlert error={o.error} />
      {o.loading && !o.data ? <Loading /> : null}
      {o.data ? <OverviewView o={o.data} runner={runner} onVerify={(id) => void start.run('verify', id)} busy={busy} /> : null}
    </>
  );
}

function OverviewView({ o, runner, onVerify, busy }: { o: Overview; runner: boolean; onVerify: (id: string) => void; busy: boolean }) {
  const bySlot = new Map<string, Backup>();
  for (const b of o.backups) {
    const cur = bySlot.get(b.slot);
    if (!cur || cur.createdAt < b.createdAt) bySlot.set(b.slot, b);
  }
  return (
    <>
      {o.targets.length === 0 ? (
        <Alert kind="warn" title="No backup target">
          Nothing is backed up until a target at a distant site is registered (<code>coffre backup target add</code>).
        </Alert>
      ) : null}
      <Card title="The last seven days">
        <div class="week" aria-label="Backups by weekday slot">
          {SLOTS.map((s) => {
            const b = bySlot.get(s);
            return b ? (
              <div class="slot" data-slot={s} data-verification={b.verification}>
                <h3>{SLOT_NAMES[s]}</h3>
                <Time t={b.createdAt} />
                <div>{bytes(b.size)}</div>
                <div class="muted">took {duration(b.durationMs)}</div>
                <div>
                  <Badge kind={b.verification === 'verified' ? 'ok' : b.verification === 'failed' ? 'error' : 'warn'}>{b.verification}</Badge>
                </div>
                <div class="muted small">deleted after {b.deleteAfter ? new Date(b.deleteAfter).toLocaleDateString() : '—'}</div>
                {runner ? (
                  <Button small disabled={busy} onClick={() => onVerify(b.id)}>
                    Verify
                  </Button>
                ) : null}
              </div>
            ) : (
              <div class="slot empty-slot" data-slot={s}>
                <h3>{SLOT_NAMES[s]}</h3>
                <span>no backup</span>
              </div>
            );
          })}
        </div>
        <p class="muted small">Next scheduled backup: {o.nextRun ? <Time t={o.nextRun} /> : '—'}</p>
      </Card>
      <div class="grid-2">
        <Card title="Targets" class="flush">
          {o.targets.length === 0 ? (
            <EmptyState icon="archive" title="No target yet" />
          ) : (
            <div class="table-wrap">
              <table class="table" aria-label="Backup targets">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Site</th>
                    <th class="num">Distance</th>
                    <th>State</th>
                  </tr>
                </thead>
                <tbody>
                  {o.targets.map((t) => (
                    <tr>
                      <td>
                        <strong>{t.name}</strong>
                        <div class="muted small mono">{t.url}</div>
                      </td>
                      <td>
                        {t.jurisdiction} · {t.lat.toFixed(2)}, {t.lon.toFixed(2)}
                      </td>
                      <td class="num">{Math.round(t.distanceKm)} km</td>
                      <td>{t.reachable === false ? <Badge kind="error">unreachable</Badge> : t.reachable ? <Badge kind="ok">reachable</Badge> : <Badge>unknown</Badge>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {o.targets.some((t) => t.reachable === false) ? (
            <div class="card-body">
              <Alert kind="error" title="A backup target cannot be reached">
                {o.targets
                  .filter((t) => t.reachable === false)
                  .map((t) => `${t.name}: ${t.lastError ?? 'no answer'}`)
                  .join('; ')}
                . Check its address, credentials and the network; backups to it fail until then.
              </Alert>
            </div>
          ) : null}
        </Card>
        <Card title="Escrow keys and drills">
          <Facts
            items={[
              ['Appliance site', `${o.site.jurisdiction} · ${o.site.lat.toFixed(2)}, ${o.site.lon.toFixed(2)}`],
              ['Escrow keys', o.escrow.length ? o.escrow.map((k) => k.userIds[0] ?? k.fingerprint).join(', ') : 'none'],
              ['Last restore drill', o.lastDrill ? <Time t={o.lastDrill.at} /> : 'never'],
              ['Drill result', o.lastDrill ? <Badge kind={o.lastDrill.ok ? 'ok' : 'error'}>{o.lastDrill.ok ? 'restored' : 'failed'}</Badge> : '—'],
              ['Recovery time (RTO)', o.lastDrill ? duration(o.lastDrill.rtoMs) : '—'],
            ]}
          />
          {o.escrow.length ? (
            <ul class="small mono">
              {o.escrow.map((k) => (
                <li>{k.fingerprint}</li>
              ))}
            </ul>
          ) : (
            <p class="muted small">Without an escrow key, a backup opens only with this appliance's HSM (or its replica).</p>
          )}
        </Card>
      </div>
    </>
  );
}

export type { JobRun };
