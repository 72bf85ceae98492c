import { client, data } from '../client.js';
import type { Me } from '../session.js';
import { Alert, Card, ErrorAlert, Facts, Loading, PageHeader, useAsync } from '../ui.js';
import { t } from '../i18n/index.js';
import { sectionTitle, settingLabel } from './setting-labels.js';
import { EditableSettings, type Editable } from './settings-edit.js';

/**
 * Appliance settings (GET /api/v1/settings): a safe subset editable here (settings-edit.tsx),
 * written to config.json and effective at the next start of the service; the rest of the effective
 * configuration read-only, with every secret and secret-file path redacted by the server, each
 * value under a label in words rather than its configuration key: `settings.labels.<key>` in the
 * catalogues, one for every key of the schema (setting-labels.ts).
 */

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
  const s = useAsync((signal) => data(client.GET('/api/v1/settings', { signal })), []);
  const editable = new Set(
    (s.data?.editable ?? []).flatMap((f) => [f.key, f.key.replace(/\.(password|authHeader|secret)$/, '.$1File')]),
  );
  return (
    <>
      <PageHeader title={t('settings.title')} description={t('settings.description')} />
      <ErrorAlert error={s.error} />
      {s.loading && !s.data ? <Loading /> : null}
      {s.data ? (
        <>
          <Alert kind="info" title={t('settings.someEditable')}>
            {t('settings.editIntro')}
          </Alert>
          <EditableSettings
            key={s.data.editable.map((f) => JSON.stringify(f)).join()}
            fields={s.data.editable}
            onSaved={s.reload}
          />
          <h2 class="section-title">{t('settings.readOnly')}</h2>
          <p class="muted">{t('settings.readOnlyText')}</p>
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
                    )
                      .filter(([k]) => !editable.has(`${name}.${k}`))
                      .map(([k, v]) => (
                        <tr data-key={`${name}.${k}`}>
                          <th scope="row">{settingLabel(name, k)}</th>
                          <td class={v === '[redacted]' ? 'muted' : undefined}>
                            {v === '[redacted]' ? t('settings.redacted') : v}
                          </td>
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
