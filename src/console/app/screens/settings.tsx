import { get } from '../api.js';
import type { Me } from '../session.js';
import { Alert, Card, ErrorAlert, Facts, Loading, PageHeader, useAsync } from '../ui.js';
import { t } from '../i18n/index.js';

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

const SECTIONS = [
  'http',
  'tls',
  'database',
  'keys',
  'storage',
  'site',
  'jobs',
  'logging',
  'audit',
  'vault',
  'auth',
  'mail',
  'backup',
] as const;
const sectionTitle = (name: string): string =>
  (SECTIONS as readonly string[]).includes(name) ? t(`settings.sections.${name as (typeof SECTIONS)[number]}`) : name;

function show(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v === '' ? '—' : v;
  if (Array.isArray(v))
    return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
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
      <PageHeader title={t('settings.title')} description={t('settings.description')} />
      <ErrorAlert error={s.error} />
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <>
          <Alert kind="info" title={s.data.editable.length ? t('settings.someEditable') : t('settings.readOnly')}>
            {s.data.editable.length ? null : `${t('settings.noneEditable')} `}
            {s.data.howToChange}
          </Alert>
          <Card title={t('settings.appliance')}>
            <Facts
              items={[
                [t('settings.applianceId'), <code>{s.data.applianceId}</code>],
                [t('settings.dataDir'), <code>{s.data.dataDir}</code>],
              ]}
            />
          </Card>
          <div class="settings-grid">
            {Object.entries(s.data.sections).map(([name, value]) => (
              <Card title={sectionTitle(name)}>
                <table
                  class="table compact"
                  aria-label={t('settings.tableLabel', { name: sectionTitle(name) })}
                  data-section={name}
                >
                  <tbody>
                    {(value && typeof value === 'object'
                      ? flatten(value as Record<string, unknown>)
                      : [['value', show(value)] as [string, string]]
                    ).map(([k, v]) => (
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
