import type { Config } from '../config/index.js';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The record of processing activities (GDPR art. 30), generated from the configuration: one
 * printable HTML page (no script, no style sheet, no external resource: it passes the console's CSP). docs/gdpr.md "Record of processing".
 */
export function ropaHtml(c: Config, now: number): string {
  const r = c.privacy.retention;
  const rows: [string, string, string, string, string][] = [
    [
      'Accounts of the people who use the appliance',
      'identification and access control (contract, legal obligation to secure records)',
      'user name, e-mail (encrypted), phone (encrypted, optional), role, second-factor kind',
      'admins (users:manage)',
      'until erased (coffre user erase) or deleted',
    ],
    [
      'Sessions',
      'keeping people signed in; security',
      'client address, user agent, times',
      'the person; admins end them',
      `${r.sessionsDays} days after they end (privacy.retention.sessionsDays)`,
    ],
    [
      'Sign-in records',
      'brute-force protection (no lockout), known devices',
      'one-way hashes of addresses and devices, counters',
      'nobody reads them directly',
      `${r.loginRecordsDays} days (privacy.retention.loginRecordsDays)`,
    ],
    [
      'Alerts',
      'operating and securing the appliance',
      'alert texts may name a user',
      'admins, backup operators (monitoring:read)',
      `${r.alertsDays} days after resolution (privacy.retention.alertsDays)`,
    ],
    [
      'Audit trail',
      'accountability, proof (tamper-evident)',
      'user ids, client address, user agent, request id',
      'auditors (audit:read)',
      `${c.audit.retentionDays} days (audit.retentionDays)`,
    ],
    [
      'Backups',
      'availability, disaster recovery',
      'a copy of all of the above, encrypted (OpenPGP, HSM-wrapped key)',
      'backup operators',
      'per backup.retention',
    ],
  ];
  const cell = (s: string) => `<td>${esc(s)}</td>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Record of processing activities</title>
</head>
<body>
<h1>Record of processing activities (GDPR art. 30)</h1>
<p>Controller: ${esc(c.site.name ?? 'the organisation operating this appliance')}. Appliance ${esc(c.applianceId)}, site ${esc(c.site.jurisdiction)}. Generated ${esc(new Date(now).toISOString())} from the configuration.</p>
<p>Data subjects: the people who have an account on the appliance. No transfer outside ${esc(c.site.jurisdiction)}: backup targets must be in the same jurisdiction. Security measures: encryption at rest under the customer's HSM, TLS 1.2/1.3 with 256-bit AEAD, second factor, tamper-evident audit trail (docs/architecture.md).</p>
<table border="1" cellpadding="6"><thead><tr><th>Processing</th><th>Purpose</th><th>Personal data</th><th>Who has access</th><th>Retention</th></tr></thead>
<tbody>
${rows.map((row) => `<tr>${row.map(cell).join('')}</tr>`).join('\n')}
</tbody></table>
</body></html>
`;
}
