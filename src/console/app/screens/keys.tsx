import { useState } from 'preact/hooks';
import { ApiError, get, post } from '../api.js';
import { JobProgressView, useJobRun } from '../jobs.js';
import { can, type Me } from '../session.js';
import { Alert, Badge, Button, Card, Dialog, ErrorAlert, Facts, Loading, PageHeader, duration, useAction, useAsync } from '../ui.js';

/** Key status and rotation (src/keys), for IT admins (and read-only for auditors). */
interface KekVersion {
  label: string;
  version: number;
  state: string;
  createdAt?: string | null;
  attributes: Record<string, boolean | string | number>;
  wrappedKeys: number;
}
interface KeyStatus {
  module: string;
  slot: number | string;
  tokenLabel: string;
  tokenSerial?: string;
  available: boolean;
  latencyMs?: number | null;
  current: KekVersion | null;
  versions: KekVersion[];
}

export function KeysPage({ me }: { me: Me }) {
  const s = useAsync((signal) => get<KeyStatus>('/keys/status', { signal }), []);
  const [confirm, setConfirm] = useState(false);
  const [job, setJob] = useState<string | undefined>();
  const { run, error: jobError } = useJobRun(job, () => s.reload());
  const rotate = useAction(async () => {
    const r = await post<{ runId: number }>('/keys/rotate');
    setConfirm(false);
    setJob(`/jobs/runs/${r.runId}`);
  });
  const hsmDown = s.error instanceof ApiError && s.error.code === 'KEYS_UNAVAILABLE';
  return (
    <>
      <PageHeader
        title="Keys"
        description="The key-encryption key lives in the HSM and never leaves it; data keys are wrapped by it. Rotation re-wraps data keys and never re-encrypts documents."
        actions={
          can(me, 'keys:manage') ? (
            <Button variant="primary" disabled={!s.data?.available || run?.outcome === 'running'} onClick={() => setConfirm(true)}>
              Rotate the key
            </Button>
          ) : null
        }
      />
      {hsmDown ? (
        <Alert kind="error" title="The hardware security module is unavailable">
          Documents cannot be read or written, and backups cannot run, until the HSM answers again: Coffre never falls back to a software key. Check the HSM, its network and the PIN file named in the <code>keys</code> section of the configuration.
        </Alert>
      ) : (
        <ErrorAlert error={s.error} />
      )}
      <ErrorAlert error={jobError} />
      {run ? (
        <Card>
          <JobProgressView run={run} label="Key rotation" />
        </Card>
      ) : null}
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <>
          <Card title="Hardware security module">
            <Facts
              items={[
                ['State', s.data.available ? <Badge kind="ok">available</Badge> : <Badge kind="error">unavailable</Badge>],
                ['PKCS#11 module', <code>{s.data.module}</code>],
                ['Slot', String(s.data.slot)],
                ['Token', `${s.data.tokenLabel}${s.data.tokenSerial ? ` (serial ${s.data.tokenSerial})` : ''}`],
                ['Round trip', s.data.latencyMs === undefined || s.data.latencyMs === null ? '—' : duration(s.data.latencyMs)],
              ]}
            />
          </Card>
          <Card title="Key-encryption key versions" class="flush">
            <div class="table-wrap">
              <table class="table" aria-label="Key versions">
                <thead>
                  <tr>
                    <th>Label</th>
                    <th class="num">Version</th>
                    <th>State</th>
                    <th>Attributes read from the HSM</th>
                    <th class="num">Wrapped data keys</th>
                  </tr>
                </thead>
                <tbody>
                  {s.data.versions.map((v) => (
                    <tr>
                      <td class="mono">{v.label}</td>
                      <td class="num">{v.version}</td>
                      <td>
                        <Badge kind={v.state === 'current' || v.state === 'active' ? 'ok' : 'neutral'}>{v.state}</Badge>
                      </td>
                      <td class="small">
                        {Object.entries(v.attributes).map(([k, val]) => (
                          <span class="badge">
                            {k}: {String(val)}
                          </span>
                        ))}
                      </td>
                      <td class="num">{v.wrappedKeys}</td>
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
        title="Rotate the key-encryption key?"
        onClose={() => setConfirm(false)}
        footer={
          <>
            <Button onClick={() => setConfirm(false)}>Cancel</Button>
            <Button variant="primary" busy={rotate.busy} onClick={() => void rotate.run()}>
              Rotate now
            </Button>
          </>
        }
      >
        <ErrorAlert error={rotate.error} />
        <p>A new key version is created in the HSM and every data key is re-wrapped with it, online, in batches. Documents stay readable throughout. The old version is destroyed after the configured grace period.</p>
      </Dialog>
    </>
  );
}
