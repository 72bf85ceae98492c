import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { sql } from 'kysely';
import { makeSelfSigned } from '../../src/http/index.js';
import { AuditSyslogSection, type AuditSyslogConfig } from '../../src/config/sections/audit.js';
import { SyslogForwarder } from '../../src/audit/index.js';
import { DbAlerter, createAlertChannels } from '../../src/monitoring/index.js';
import { alertChannelContract, type SentAlert } from '../contracts/alert-channel.js';
import { TestCollector, parse5424 } from '../audit/collector.js';
import { openTrail, rmrf, silentLog, type TestTrail } from '../audit/support.js';

let cert: { certPem: string; keyPem: string };
beforeAll(async () => {
  cert = await makeSelfSigned([]);
});

/** a real TLS collector and a forwarder on a fresh trail */
async function syslogEnv() {
  const t = await openTrail();
  const caFile = path.join(t.dir, 'ca.pem');
  fs.writeFileSync(caFile, cert.certPem);
  const collector = new TestCollector('tls', { key: cert.keyPem, cert: cert.certPem });
  const port = await collector.start();
  const cfg = Value.Default(AuditSyslogSection, { enabled: true, transport: 'tls', host: '127.0.0.1', port, caFile }) as AuditSyslogConfig;
  const forwarder = new SyslogForwarder({ db: t.h.db, cfg, applianceId: 'appliance-1', clock: t.clock, log: silentLog(), pollMs: 50 });
  await forwarder.start();
  const alerts = () => collector.messages.map(parse5424).filter((p) => p.msgId === 'alert');
  return {
    t,
    collector,
    forwarder,
    alerts,
    channels: createAlertChannels({ syslog: { sink: forwarder, header: { facility: cfg.facility, appName: cfg.appName } } }),
    cleanup: async () => {
      await forwarder.stop(500);
      await collector.stop();
      await t.close();
      rmrf(t.dir);
    },
  };
}

alertChannelContract('syslog', async () => {
  const env = await syslogEnv();
  return {
    channel: env.channels[0]!,
    received: async () => env.alerts().map((p) => JSON.parse(p.msg) as SentAlert & { type: string }),
    cleanup: env.cleanup,
  };
});

describe('DbAlerter', () => {
  let env: Awaited<ReturnType<typeof syslogEnv>> | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  const make = (e: NonNullable<typeof env>) => new DbAlerter({ db: e.t.h.db, audit: e.t.auditor, clock: e.t.clock, log: silentLog(), applianceId: 'appliance-1', channels: e.channels });

  it('stores, audits (alert.raised), redacts and sends an alert; repeats within the window are counted, not re-sent', async () => {
    env = await syslogEnv();
    const alerter = make(env);
    await alerter.raise({ kind: 'backup.failed', severity: 'critical', message: 'backup failed; retry link https://h/reset/AAAAAAAAAAAAAAAAAAAAAAAA', targets: { target: 'tgt-1' } });
    await alerter.settle();
    const rows = await env.t.h.db.selectFrom('alerts').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'backup.failed', severity: 'critical', repeats: 0, deliveries: '{"syslog":"sent"}' });
    expect(rows[0]!.message).not.toContain('AAAAAAAAAAAAAAAA');
    const ev = await env.t.h.db.selectFrom('audit_events').selectAll().where('action', '=', 'alert.raised').execute();
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ actor: 'system', outcome: 'success' });
    expect(JSON.parse(ev[0]!.targets!)).toEqual([['alert', rows[0]!.id], ['kind', 'backup.failed'], ['target', 'tgt-1']]);
    await env.collector.waitFor(() => env!.alerts().length >= 1);
    const msg = env.alerts()[0]!;
    expect(msg.pri).toBe(13 * 8 + 2);
    expect(JSON.parse(msg.msg)).toMatchObject({ type: 'coffre.alert', id: rows[0]!.id, kind: 'backup.failed', severity: 'critical' });
    // the same alert again within 15 minutes: counted
    await alerter.raise({ kind: 'backup.failed', severity: 'critical', message: 'again', targets: { target: 'tgt-1' } });
    env.t.clock.advance(16 * 60_000);
    await alerter.raise({ kind: 'backup.failed', severity: 'critical', message: 'later', targets: { target: 'tgt-1' } });
    await alerter.settle();
    const after = await env.t.h.db.selectFrom('alerts').select(['repeats', 'message']).orderBy('at').execute();
    expect(after.map((r) => [r.repeats, r.message])).toEqual([
      [1, rows[0]!.message],
      [0, 'later'],
    ]);
  });

  it('refuses malformed alerts, and still sends an alert the database cannot store', async () => {
    env = await syslogEnv();
    const alerter = make(env);
    await expect(alerter.raise({ kind: 'Backup failed', severity: 'critical', message: 'x' })).rejects.toMatchObject({ code: 'ALERT_INVALID' });
    await expect(alerter.raise({ kind: 'a.b', severity: 'bad' as never, message: 'x' })).rejects.toMatchObject({ code: 'ALERT_INVALID' });
    await expect(alerter.raise({ kind: 'a.b', severity: 'info', message: 'x', targets: { name: 'Quarterly report.pdf' } })).rejects.toMatchObject({ code: 'ALERT_INVALID' });
    await sql`PRAGMA query_only = ON`.execute(env.t.h.db);
    await expect(alerter.raise({ kind: 'db.readonly', severity: 'critical', message: 'database is read-only' })).rejects.toMatchObject({ code: 'ALERT_UNRECORDED', message: expect.stringContaining('SQLITE_READONLY') });
    await alerter.settle();
    await sql`PRAGMA query_only = OFF`.execute(env.t.h.db);
    await env.collector.waitFor(() => env!.alerts().some((a) => JSON.parse(a.msg).kind === 'db.readonly'));
    expect(await env.t.h.db.selectFrom('alerts').selectAll().execute()).toHaveLength(0);
  });
});
