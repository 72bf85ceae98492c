import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { sql } from 'kysely';
import { MonitoringSection, type MonitoringConfig } from '../../src/config/sections/monitoring.js';
import { AuditSyslogSection, type AuditSyslogConfig } from '../../src/config/sections/audit.js';
import { MailSection, type MailConfig } from '../../src/config/sections/mail.js';
import { smtpSender } from '../../src/auth/messaging.js';
import { AlertOutbox, DbAlerter, createAlertChannels } from '../../src/monitoring/index.js';
import { openTrail, rmrf, silentLog } from '../audit/support.js';
import { eventually, startSmtpReceiver, startSyslogReceiver, startWebhookReceiver } from '../support/receivers.js';

/** a fresh trail and the three real receivers, wired through the channel registry like main.ts */
async function alertEnv(over: Record<string, unknown> = {}) {
  const t = await openTrail();
  const smtp = await startSmtpReceiver(t.dir);
  const syslog = await startSyslogReceiver();
  const hook = await startWebhookReceiver(t.dir);
  const caFile = path.join(t.dir, 'syslog-ca.pem');
  fs.writeFileSync(caFile, syslog.caPem);
  const monitoring = Value.Default(MonitoringSection, {
    alerts: {
      email: { to: ['oncall@example.fr'] },
      webhook: { url: hook.url, secretFile: hook.secretFile, caFile: hook.caFile, retries: 0 },
      ...over,
    },
  }) as MonitoringConfig;
  const mail = (
    Value.Default(MailSection, { smtp: { host: 'localhost', port: smtp.port, caFile: smtp.caFile } }) as MailConfig
  ).smtp!;
  const audSyslog = Value.Default(AuditSyslogSection, {
    enabled: true,
    transport: 'tls',
    host: '127.0.0.1',
    port: syslog.port,
    caFile,
  }) as AuditSyslogConfig;
  const { channels, minSeverity } = createAlertChannels({
    alerts: monitoring.alerts,
    syslog: audSyslog,
    mailer: smtpSender(mail),
  });
  const outbox = (holder: string) =>
    new AlertOutbox({
      db: t.h.db,
      clock: t.clock,
      log: silentLog(),
      channels,
      holder,
      backoffMs: 1000,
      maxAttempts: 3,
    });
  const ob = outbox('test:1');
  const alerter = (o = ob) =>
    new DbAlerter({
      db: t.h.db,
      audit: t.auditor,
      clock: t.clock,
      log: silentLog(),
      applianceId: 'appliance-1',
      outbox: o,
      minSeverity,
      dedupeMs: monitoring.alerts.dedupeMs,
      renotifyMs: monitoring.alerts.renotifyMs,
    });
  return {
    t,
    smtp,
    syslog,
    hook,
    outbox,
    ob,
    alerter,
    audit: async (action: string) =>
      t.h.db.selectFrom('audit_events').selectAll().where('action', '=', action).execute(),
    cleanup: async () => {
      await ob.stop(100);
      await smtp.close();
      await syslog.collector.stop();
      await hook.close();
      await t.close();
      rmrf(t.dir);
    },
  };
}
type Env = Awaited<ReturnType<typeof alertEnv>>;

/** the notices each receiver got, as [notice, kind, alert id] */
const seen = (e: Env) => ({
  email: e.smtp.notices().map((n) => [n.notice, n.kind, n.id]),
  syslog: e.syslog.notices().map((n) => [n.notice, n.kind, n.id]),
  webhook: e.hook.notices().map((n) => [n.notice, n.kind, n.id]),
});

describe('DbAlerter with real receivers (SMTP, syslog over TLS, HTTPS webhook)', { timeout: 60_000 }, () => {
  let env: Env | undefined;
  afterEach(async () => {
    await env?.cleanup();
    env = undefined;
  });

  it('stores, audits, redacts and delivers an alert to every channel once; repeats while open are counted, not re-sent', async () => {
    env = await alertEnv();
    const a = env.alerter();
    await a.raise({
      kind: 'backup.failed',
      severity: 'critical',
      message: 'backup failed; retry link https://h/reset/AAAAAAAAAAAAAAAAAAAAAAAA',
      targets: { target: 'tgt-1' },
    });
    await a.raise({ kind: 'backup.failed', severity: 'critical', message: 'again', targets: { target: 'tgt-1' } });
    await a.settle();
    const rows = await env.t.h.db.selectFrom('alerts').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: 'backup.failed', severity: 'critical', repeats: 1, state: 'open' });
    expect(JSON.parse(rows[0]!.deliveries!)).toEqual({ email: 'sent', syslog: 'sent', webhook: 'sent' });
    expect(rows[0]!.message).not.toContain('AAAAAAAAAAAAAAAA');
    const ev = await env.audit('alert.raised');
    expect(ev).toHaveLength(1);
    expect(JSON.parse(ev[0]!.targets!)).toEqual([
      ['alert', rows[0]!.id],
      ['kind', 'backup.failed'],
      ['target', 'tgt-1'],
    ]);
    const id = rows[0]!.id;
    expect(seen(env)).toEqual({
      email: [['raised', 'backup.failed', id]],
      syslog: [['raised', 'backup.failed', id]],
      webhook: [['raised', 'backup.failed', id]],
    });
    // a syslog message of severity critical (2) in facility 13; a signed webhook with a delivery id
    expect(env.syslog.collector.messages[0]).toMatch(/^<106>1 /);
    expect(env.hook.hits[0]!.signed).toBe(true);
    expect(env.hook.hits[0]!.headers['x-coffre-delivery']).toMatch(new RegExp(`^${id}:\\d+$`));
    // a one-off alert raised again after the dedupe window opens a new alert
    env.t.clock.advance(16 * 60_000);
    await a.raise({ kind: 'backup.failed', severity: 'critical', message: 'later', targets: { target: 'tgt-1' } });
    await a.settle();
    expect(
      (await env.t.h.db.selectFrom('alerts').select(['repeats', 'message']).orderBy('at').execute()).map((r) => [
        r.repeats,
        r.message,
      ]),
    ).toEqual([
      [1, rows[0]!.message],
      [0, 'later'],
    ]);
    expect(env.hook.notices()).toHaveLength(2);
  });

  it('reminds about an unacknowledged alert, stops after acknowledgement, and sends the resolution when the condition clears', async () => {
    env = await alertEnv();
    const a = env.alerter();
    const disk = {
      kind: 'monitoring.disk',
      severity: 'warning' as const,
      message: 'data disk 91 % full',
      targets: { volume: 'data' },
    };
    await a.raise(disk);
    // still raised every minute for 4 hours: a reminder at 4 h, not before
    for (let m = 1; m <= 240; m += 1) {
      env.t.clock.advance(60_000);
      await a.raise(disk);
    }
    await a.settle();
    const [row] = await env.t.h.db.selectFrom('alerts').selectAll().execute();
    expect(row).toMatchObject({ repeats: 240, state: 'open' });
    expect(seen(env).webhook).toEqual([
      ['raised', 'monitoring.disk', row!.id],
      ['reminder', 'monitoring.disk', row!.id],
    ]);
    expect(await env.audit('alert.reminded')).toHaveLength(1);
    expect(await a.acknowledge(row!.id, 'user:admin-1', { ip: '192.0.2.7', requestId: 'req-1' })).toBe(true);
    expect(await a.acknowledge(row!.id, 'user:admin-1')).toBe(false);
    for (let m = 1; m <= 300; m += 1) {
      env.t.clock.advance(60_000);
      await a.raise(disk);
    }
    await a.clear({ kind: 'monitoring.disk', targets: { volume: 'data' } });
    await a.settle();
    const after = await env.t.h.db.selectFrom('alerts').selectAll().where('id', '=', row!.id).executeTakeFirstOrThrow();
    expect(after).toMatchObject({ state: 'resolved', acked_by: 'user:admin-1', resolved_by: 'rule' });
    const want = [
      ['raised', 'monitoring.disk', row!.id],
      ['reminder', 'monitoring.disk', row!.id],
      ['resolved', 'monitoring.disk', row!.id],
    ];
    // e-mail takes warnings and up (default), so it got the same three
    expect(seen(env)).toEqual({ email: want, syslog: want, webhook: want });
    expect((await env.audit('alert.acknowledged'))[0]).toMatchObject({ actor: 'user:admin-1', source_ip: '192.0.2.7' });
    expect((await env.audit('alert.resolved'))[0]).toMatchObject({ actor: 'system', reason: 'CONDITION_CLEARED' });
    // cleared again: nothing open, nothing sent
    await a.clear({ kind: 'monitoring.disk', targets: { volume: 'data' } });
    expect(await a.resolve(row!.id, 'user:admin-1')).toBe(false);
    // raised again after resolution: a new alert
    await a.raise(disk);
    await a.settle();
    expect(await env.t.h.db.selectFrom('alerts').select('state').orderBy('at').execute()).toEqual([
      { state: 'resolved' },
      { state: 'open' },
    ]);
  });

  it('sends an info alert to syslog and the webhook but not by e-mail (minSeverity warning)', async () => {
    env = await alertEnv();
    const a = env.alerter();
    await a.raise({ kind: 'audit.syslog_up', severity: 'info', message: 'collector back' });
    await a.settle();
    expect(seen(env).email).toEqual([]);
    expect(seen(env).syslog).toHaveLength(1);
    expect(seen(env).webhook).toHaveLength(1);
  });

  it('keeps a notice a receiver refused and delivers it, once, when the receiver is back (back-off per attempt)', async () => {
    env = await alertEnv();
    const a = env.alerter();
    env.hook.failNext(1, 503);
    await a.raise({ kind: 'keys.unavailable', severity: 'critical', message: 'HSM unreachable' });
    await a.settle(2000);
    const [row] = await env.t.h.db.selectFrom('alerts').selectAll().execute();
    expect(JSON.parse(row!.deliveries!)).toMatchObject({
      webhook: expect.stringMatching(/^retrying: ALERT_CHANNEL_FAILED/),
      email: 'sent',
      syslog: 'sent',
    });
    expect(env.hook.notices()).toHaveLength(0);
    // not before its back-off (1 s on the injected clock)
    await env.ob.deliverDue();
    expect(env.hook.hits).toHaveLength(1);
    env.t.clock.advance(1000);
    await a.settle();
    expect(env.hook.notices().map((n) => n.id)).toEqual([row!.id]);
    expect(
      JSON.parse((await env.t.h.db.selectFrom('alerts').select('deliveries').executeTakeFirstOrThrow()).deliveries!),
    ).toEqual({ email: 'sent', syslog: 'sent', webhook: 'sent' });
    // a receiver that keeps refusing: given up after maxAttempts (3), recorded
    env.hook.failNext(100, 500);
    await a.raise({ kind: 'backup.failed', severity: 'critical', message: 'x', targets: { target: 't' } });
    for (let i = 0; i < 4; i++) {
      await env.ob.deliverDue();
      env.t.clock.advance(60_000);
    }
    const failed = await env.t.h.db
      .selectFrom('alert_outbox')
      .selectAll()
      .where('channel', '=', 'webhook')
      .where('failed_at', 'is not', null)
      .execute();
    expect(failed).toHaveLength(1);
    expect(failed[0]!.attempts).toBe(3);
  });

  it('two processes draining the same outbox deliver each notice exactly once', async () => {
    env = await alertEnv();
    const a = env.alerter();
    for (let i = 0; i < 20; i++)
      await a.raise({
        kind: 'vault.integrity',
        severity: 'critical',
        message: `mismatch ${i}`,
        targets: { document: `d${i}` },
      });
    const other = env.outbox('test:2');
    await Promise.all([env.ob.drain(), other.drain(), env.ob.drain(), other.drain()]);
    for (const list of [env.hook.notices(), env.syslog.notices(), env.smtp.notices()]) {
      expect(list).toHaveLength(20);
      expect(new Set(list.map((n) => n.id)).size).toBe(20);
    }
  });

  it('refuses malformed alerts, and still sends an alert the database cannot store', async () => {
    env = await alertEnv();
    const a = env.alerter();
    await expect(a.raise({ kind: 'Backup failed', severity: 'critical', message: 'x' })).rejects.toMatchObject({
      code: 'ALERT_INVALID',
    });
    await expect(a.raise({ kind: 'a.b', severity: 'bad' as never, message: 'x' })).rejects.toMatchObject({
      code: 'ALERT_INVALID',
    });
    await expect(
      a.raise({ kind: 'a.b', severity: 'info', message: 'x', targets: { name: 'Quarterly report.pdf' } }),
    ).rejects.toMatchObject({ code: 'ALERT_INVALID' });
    await sql`PRAGMA query_only = ON`.execute(env.t.h.db);
    await expect(
      a.raise({ kind: 'db.readonly', severity: 'critical', message: 'database is read-only' }),
    ).rejects.toMatchObject({ code: 'ALERT_UNRECORDED', message: expect.stringContaining('SQLITE_READONLY') });
    const got = await eventually(
      () => seen(env!),
      (s) => s.webhook.length > 0 && s.syslog.length > 0 && s.email.length > 0,
    );
    expect(got.webhook[0]).toEqual(['raised', 'db.readonly', expect.any(String)]);
    await sql`PRAGMA query_only = OFF`.execute(env.t.h.db);
    expect(await env.t.h.db.selectFrom('alerts').selectAll().execute()).toHaveLength(0);
  });
});
