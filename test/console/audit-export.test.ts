import { describe, expect, it } from 'vitest';
import { csvCell, toCsv, toJsonl, type AuditRecord } from '../../src/console/app/screens/audit-export.js';

/** The auditor's export of the filtered view (src/console/app/screens/audit-export.ts), outside the browser. */
const rec = (over: Partial<AuditRecord>): AuditRecord => ({
  seq: 7,
  at: '2026-12-07T08:00:00.000Z',
  action: 'user.invite',
  actor: 'user:0b0e',
  outcome: 'success',
  reason: null,
  targets: { user: 'u-1', role: 'member' },
  source: { ip: '127.0.0.1', userAgent: null, requestId: 'req-1' },
  hash: 'ab12',
  ...over,
});

describe('audit export', () => {
  it('CSV: one header, one line per record, the name beside the id, RFC 4180 quoting', () => {
    const csv = toCsv([rec({}), rec({ seq: 8, reason: 'said "no", twice' })], new Map([['user:0b0e', 'alice']]));
    expect(csv.split('\r\n')).toEqual([
      'seq,at,action,actor,actor_name,outcome,reason,targets,ip,request_id,hash',
      '7,2026-12-07T08:00:00.000Z,user.invite,user:0b0e,alice,success,,user=u-1 role=member,127.0.0.1,req-1,ab12',
      '8,2026-12-07T08:00:00.000Z,user.invite,user:0b0e,alice,success,"said ""no"", twice",user=u-1 role=member,127.0.0.1,req-1,ab12',
      '',
    ]);
  });

  it('CSV: a value a spreadsheet would run as a formula is written as text', () => {
    for (const v of ['=HYPERLINK("x")', '+1', '-2', '@SUM(A1)', '\tx'])
      expect(csvCell(v).replace(/^"/, '')).toMatch(/^'/);
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell(null)).toBe('');
  });

  it('JSON lines: one object per line, the record as the API gave it plus actorName', () => {
    const lines = toJsonl([rec({}), rec({ actor: 'local:root' })], new Map([['user:0b0e', 'alice']])).split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 7, actorName: 'alice', targets: { user: 'u-1' } });
    expect(JSON.parse(lines[1]!)).toMatchObject({ actor: 'local:root', actorName: null });
  });
});
