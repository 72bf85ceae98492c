import { useState } from 'preact/hooks';
import { ApiError, get, post } from '../api.js';
import { JobProgressView, useJobRun } from '../jobs.js';
import { can, type Me } from '../session.js';
import { Alert, Badge, Button, Card, Dialog, ErrorAlert, Facts, Loading, PageHeader, Time, useAction, useAsync } from '../ui.js';

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
  attributes?: { extractable: boolean; sensitive: boolean; neverExtractable: boolean; alwaysSensitive: boolean; local: boolean; keyType: string; valueLen: number; mechanism: string; wrap: boolean; unwrap: boolean };
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
  embeddedToken?: { evaluationOnly: true; tokenConfig: string | null; pinStore: 'file' | 'systemd-credential'; message: string };
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
        title="Keys"
        description="The key-encryption key lives in the HSM and never leaves it; data keys are wrapped by it. Rotation re-wraps data keys and never re-encrypts documents."
        actions={
          can(me, 'keys:manage') ? (
            <Button variant="primary" disabled={!s.data?.up || run?.outcome === 'running'} onClick={() => setConfirm(true)}>
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
      {s.data?.embeddedToken ? (
        <Alert kind="warn" title="Evaluation only: the keys are in the embedded software token">
          <span data-testid="embedded-token">{s.data.embeddedToken.message}</span>
        </Alert>
      ) : null}
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
                ['State', s.data.up ? <Badge kind="ok">available</Badge> : <Badge kind="error">unavailable</Badge>],
                ['PKCS#11 module', <code>{s.data.module}</code>],
                ['Slot', String(s.data.slot)],
                ['Token', `${s.data.token.label} (serial ${s.data.token.serial})`],
                ['Device', `${s.data.token.manufacturer} ${s.data.token.model}`],
                ['Current key', <code data-testid="kek-current">{s.data.kek.currentLabel}</code>],
                ['Round trip', `${s.data.latencyMs} ms`],
                ['Retired keys destroyed after', `${s.data.retiredKekGraceDays} day(s)`],
              ]}
            />
          </Card>
          <Card title="Key-encryption key versions" class="flush">
            <div class="table-wrap">
              <table class="table" aria-label="Key versions">
                <thead>
                  <tr>
                    <th>Label</th>
                    <th>State</th>
                    <th>Attributes read from the HSM</th>
                    <th class="num">Wrapped data keys</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody>
                  {[...s.data.versions].reverse().map((v) => (
                    <tr data-version={v.version} data-state={v.state}>
                      <td class="mono">
                        {v.label} {v.version === s.data!.kek.currentVersion ? <Badge kind="accent">current</Badge> : null}
                      </td>
                      <td>
                        <Badge kind={v.state === 'active' ? 'ok' : v.state === 'destroyed' ? 'error' : 'neutral'}>{v.state}</Badge>
                        {v.state === 'retired' && v.destroyAfter ? <div class="muted small">destroyed after {new Date(v.destroyAfter).toLocaleDateString()}</div> : null}
                      </td>
                      <td class="small">
                        {v.attributes ? (
                          <div class="row">
                            <Badge kind={v.attributes.extractable ? 'error' : 'ok'}>extractable: {String(v.attributes.extractable)}</Badge>
                            <Badge kind={v.attributes.sensitive ? 'ok' : 'error'}>sensitive: {String(v.attributes.sensitive)}</Badge>
                            <Badge kind={v.attributes.neverExtractable ? 'ok' : 'warn'}>never extractable: {String(v.attributes.neverExtractable)}</Badge>
                            <span class="muted mono">
                              {v.attributes.keyType} {v.attributes.valueLen * 8}-bit · {v.attributes.mechanism}
                            </span>
                          </div>
                        ) : (
                          <span class="muted">{v.inHsm ? '—' : 'not in the HSM'}</span>
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
