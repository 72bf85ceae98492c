import { get } from '../api.js';
import type { Me } from '../session.js';
import { Alert, Card, ErrorAlert, Facts, Loading, PageHeader, useAsync } from '../ui.js';

/**
 * Appliance settings (GET /api/v1/settings): the effective configuration, read-only, with every
 * secret and secret-file path redacted by the server. Nothing can be changed while the appliance
 * runs (its configuration is frozen at start), so the page says how to change it instead of
 * offering controls that would not take effect.
 */
interface Settings {
  applianceId: string;
  dataDir: string;
  editable: string[];
  howToChange: string;
  sections: Record<string, unknown>;
}

const SECTION_TITLE: Record<string, string> = {
  http: 'Web server (HTTPS)',
  tls: 'TLS certificate',
  database: 'Database',
  keys: 'Keys (HSM)',
  storage: 'Document storage',
  site: 'Site',
  jobs: 'Scheduled jobs',
  logging: 'Logging',
  audit: 'Audit trail',
  vault: 'Documents',
  auth: 'Sign-in and second factor',
  mail: 'E-mail and SMS',
  backup: 'Backups',
};

function show(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v === '' ? '—' : v;
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
  return String(v);
}

/** nested objects become dotted keys: `smtp.host` */
function flatten(o: Record<string, unknown>, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...flatten(v as Record<string, unknown>, key));
    else out.push([key, show(v)]);
  }
  return out;
}

export function SettingsPage(_: { me: Me }) {
  const s = useAsync((signal) => get<Settings>('/settings', { signal }), []);
  return (
    <>
      <PageHeader title="Settings" description="The appliance's effective configuration. Secrets and the paths of the files that hold them are never shown." />
      <ErrorAlert error={s.error} />
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <>
          <Alert kind="info" title={s.data.editable.length ? 'Some settings can be changed here' : 'Read-only'}>
            {s.data.editable.length ? null : 'No setting can be changed while the appliance runs. '}
            {s.data.howToChange}
          </Alert>
          <Card title="Appliance">
            <Facts items={[['Appliance id', <code>{s.data.applianceId}</code>], ['Data directory', <code>{s.data.dataDir}</code>]]} />
          </Card>
          <div class="settings-grid">
            {Object.entries(s.data.sections).map(([name, value]) => (
              <Card title={SECTION_TITLE[name] ?? name}>
                <table class="table compact" aria-label={`Settings: ${name}`} data-section={name}>
                  <tbody>
                    {(value && typeof value === 'object' ? flatten(value as Record<string, unknown>) : [['value', show(value)] as [string, string]]).map(([k, v]) => (
                      <tr data-key={`${name}.${k}`}>
                        <th scope="row">
                          <code>{k}</code>
                        </th>
                        <td class={v === '[redacted]' ? 'muted' : undefined}>{v}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Card>
            ))}
          </div>
        </>
      ) : null}
    </>
  );
}
