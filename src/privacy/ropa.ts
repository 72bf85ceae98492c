import type { Config } from '../config/index.js';
import { translator, type Language } from '../shared/i18n/index.js';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** the processing activities, in the order the record lists them (texts: pages.ropa.rows.<id> in src/shared/i18n) */
const ROWS = ['accounts', 'sessions', 'login', 'alerts', 'audit', 'incidents', 'backups'] as const;
const COLS = ['name', 'purpose', 'basis', 'data', 'recipients', 'retention'] as const;
const MEASURES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'] as const;

/**
 * The record of processing activities (GDPR art. 30), generated from the configuration, in French
 * or English: the controller and its DPO (privacy.controller), each processing with its purpose,
 * legal basis, personal data, recipients and retention in force, transfers (none), security
 * measures. One printable HTML page (no script, no style sheet, no external resource: it passes the
 * console's CSP). docs/gdpr.md "Record of processing".
 */
export function ropaHtml(c: Config, now: number, lang: Language = 'en'): string {
  const t = translator(lang);
  const r = c.privacy.retention;
  const ctl = c.privacy?.controller ?? {};
  const days: Record<(typeof ROWS)[number], number | undefined> = {
    accounts: undefined,
    sessions: r.sessionsDays,
    login: r.loginRecordsDays,
    alerts: r.alertsDays,
    audit: c.audit.retentionDays,
    incidents: undefined,
    backups: undefined,
  };
  const or = (v: string | undefined, key: string) =>
    v ? esc(v) : `<em>${esc(t('pages.ropa.notSet', { key: `privacy.controller.${key}` }))}</em>`;
  const row = (id: (typeof ROWS)[number]) =>
    `<tr>${COLS.map((k) => {
      const v = t(`pages.ropa.rows.${id}.${k}`, { days: days[id] });
      return k === 'name' ? `<th scope="row">${esc(v)}</th>` : `<td>${esc(v)}</td>`;
    }).join('')}</tr>`;
  const th = (k: (typeof COLS)[number]) =>
    `<th scope="col">${esc(t(`pages.ropa.col.${k === 'name' ? 'processing' : k}`))}</th>`;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${esc(t('pages.ropa.title'))}</title>
</head>
<body>
<h1>${esc(t('pages.ropa.title'))}</h1>
<p>${esc(
    t('pages.ropa.generated', {
      appliance: c.applianceId,
      jurisdiction: c.site.jurisdiction,
      at: new Date(now).toISOString().slice(0, 16).replace('T', ' '),
    }),
  )}</p>
<h2>${esc(t('pages.ropa.controller'))}</h2>
<dl>
<dt>${esc(t('pages.ropa.controllerName'))}</dt><dd>${or(ctl.name ?? c.site.name, 'name')}</dd>
<dt>${esc(t('pages.ropa.address'))}</dt><dd>${or(ctl.address, 'address')}</dd>
<dt>${esc(t('pages.ropa.contact'))}</dt><dd>${or(ctl.contact, 'contact')}</dd>
<dt>${esc(t('pages.ropa.dpo'))}</dt><dd>${
    ctl.dpoName || ctl.dpoContact
      ? esc([ctl.dpoName, ctl.dpoContact].filter(Boolean).join(', '))
      : or(undefined, 'dpoName')
  }</dd>
</dl>
<p>${esc(t('pages.ropa.subjects'))}</p>
<p>${esc(t('pages.ropa.transfers', { jurisdiction: c.site.jurisdiction }))}</p>
<h2>${esc(t('pages.ropa.processings'))}</h2>
<table border="1" cellpadding="6"><thead><tr>${COLS.map(th).join('')}</tr></thead>
<tbody>
${ROWS.map(row).join('\n')}
</tbody></table>
<h2>${esc(t('pages.ropa.security'))}</h2>
<ul>
${MEASURES.map((m) => `<li>${esc(t(`pages.ropa.measures.${m}`))}</li>`).join('\n')}
</ul>
</body></html>
`;
}
