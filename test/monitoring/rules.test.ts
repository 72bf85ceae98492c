import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { startSyslogReceiver, startWebhookReceiver } from '../support/receivers.js';
import type { Sample } from '../../src/monitoring/index.js';

/**
 * Every alert rule raises and clears, through the whole appliance (real SoftHSM2, SQLite, audit
 * trail, HTTP app) and real receivers: the SMTP server of the identity env, a syslog-over-TLS
 * collector and an HTTPS webhook. Metric conditions are fed as samples (a disk cannot be filled on
 * demand); database conditions are produced for real (403s, downloads, admin changes at night, a
 * failing job, an overdue review, a tampered audit record). Only the clock is fake.
 */
let env: IdentityEnv;
let syslog: Awaited<ReturnType<typeof startSyslogReceiver>>;
let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-rules-'));
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};

beforeAll(async () => {
  syslog = await startSyslogReceiver();
  hook = await startWebhookReceiver(dir);
  const caFile = path.join(dir, 'syslog-ca.pem');
  fs.writeFileSync(caFile, syslog.caPem);
  // the fake clock jumps hours between records, faster than the checkpointer's real-time tick: a
  // 30-day cadence keeps verify's cadence check (test/audit/checkpoints.test.ts) out of this test
  env = await openIdentityEnv(
    {
      COFFRE_CFG_audit__checkpointIntervalMs: String(30 * 86_400_000),
      COFFRE_CFG_audit__syslog: JSON.stringify({
        enabled: true,
        transport: 'tls',
        host: '127.0.0.1',
        port: syslog.port,
        caFile,
      }),
      COFFRE_CFG_monitoring__alerts: JSON.stringify({
        email: { to: ['oncall@example.fr'], minSeverity: 'info' },
        webhook: { url: hook.url, secretFile: hook.secretFile, caFile: hook.caFile },
      }),
      COFFRE_CFG_monitoring__rules__massDownload: JSON.stringify({ count: 10, bytes: 1024 * 1024 }),
    },
    { listen: true },
  );
  for (const [name, role] of [
    ['adele', 'admin'],
    ['mia', 'member'],
    ['max', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
}, 120_000);
afterAll(async () => {
  await env?.close();
  await syslog?.collector.stop();
  await hook?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const m = () => env.t.appliance.monitoring;
const db = () => env.t.appliance.db.db;
/** one evaluation; database rules run when a minute has passed since the last */
async function evaluate(samples: Sample[] = [], advanceMs = 61_000): Promise<void> {
  env.clock.advance(advanceMs);
  await m().rules.evaluate({ now: env.clock.nowMs(), samples });
  await m().alerter.settle();
}
/** notices of one kind at the webhook, as `notice` strings, in order */
const at = (kind: string, rx: { notices(): { kind: string; notice?: string }[] } = hook) =>
  rx
    .notices()
    .filter((n) => n.kind === kind)
    .map((n) => n.notice);
const state = async (kind: string) =>
  (
    await db()
      .selectFrom('alerts')
      .select(['state', 'severity', 'targets'])
      .where('kind', '=', kind)
      .orderBy('at')
      .execute()
  ).map((r) => r.state);
const req = (
  who: string,
  method: 'GET' | 'POST',
  url: string,
  o: { payload?: unknown; headers?: Record<string, string>; query?: Record<string, string> } = {},
) =>
  env.app.inject({
    method,
    url,
    headers: { ...s[who]!.headers, ...o.headers },
    ...(o.payload !== undefined ? { payload: o.payload as string } : {}),
    ...(o.query ? { query: o.query } : {}),
  });

describe(
  'metric rules: raise past the threshold, hold between the thresholds, clear below',
  { timeout: 120_000 },
  () => {
    it('disk, memory, certificate expiry, stale backups', async () => {
      const cases: [string, Sample[], Sample[], Sample[]][] = [
        [
          'monitoring.disk',
          [{ name: 'disk_used_percent', labels: { volume: 'blobs' }, value: 90 }],
          [{ name: 'disk_used_percent', labels: { volume: 'blobs' }, value: 82 }],
          [{ name: 'disk_used_percent', labels: { volume: 'blobs' }, value: 79 }],
        ],
        [
          'monitoring.memory',
          [{ name: 'memory_system_used_percent', value: 93 }],
          [{ name: 'memory_system_used_percent', value: 88 }],
          [{ name: 'memory_system_used_percent', value: 70 }],
        ],
        [
          'tls.certificate-expiring',
          [{ name: 'tls_certificate_expiry_days', value: 20 }],
          [{ name: 'tls_certificate_expiry_days', value: 25 }],
          [{ name: 'tls_certificate_expiry_days', value: 390 }],
        ],
        [
          'backup.stale',
          [{ name: 'backup_newest_age_seconds', labels: { target: 'dr' }, value: 27 * 3600 }],
          [{ name: 'backup_newest_age_seconds', labels: { target: 'dr' }, value: 28 * 3600 }],
          [{ name: 'backup_newest_age_seconds', labels: { target: 'dr' }, value: 3600 }],
        ],
      ];
      for (const [kind, raise, hold, clear] of cases) {
        await evaluate(raise, 1000);
        expect(at(kind), kind).toEqual(['raised']);
        await evaluate(hold, 1000);
        expect(await state(kind), kind).toEqual(['open']);
        await evaluate(clear, 1000);
        expect(at(kind), kind).toEqual(['raised', 'resolved']);
        expect(await state(kind), kind).toEqual(['resolved']);
        // every channel got both notices
        expect(at(kind, syslog), kind).toEqual(['raised', 'resolved']);
        expect(
          at(kind, {
            notices: () =>
              env.smtp.messages.map((x) => ({
                kind: /coffre-alert: .*"kind":"([^"]+)"/.exec(x.raw.replace(/=\r?\n/g, ''))?.[1] ?? '',
                notice: /"notice":"(\w+)"/.exec(x.raw)?.[1],
              })),
          }),
          kind,
        ).toEqual(['raised', 'resolved']);
      }
    });

    it('event-loop lag and an unreachable HSM must last their forMs before they alert', async () => {
      await evaluate(
        [
          { name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: 800 },
          { name: 'hsm_up', value: 0 },
        ],
        1000,
      );
      expect(at('monitoring.event-loop')).toEqual([]);
      expect(at('hsm.unreachable')).toEqual([]);
      await evaluate(
        [
          { name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: 800 },
          { name: 'hsm_up', value: 0 },
        ],
        31_000,
      );
      expect(at('hsm.unreachable')).toEqual(['raised']);
      expect(at('monitoring.event-loop')).toEqual([]);
      await evaluate(
        [
          { name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: 800 },
          { name: 'hsm_up', value: 1 },
        ],
        30_000,
      );
      expect(at('monitoring.event-loop')).toEqual(['raised']);
      expect(at('hsm.unreachable')).toEqual(['raised', 'resolved']);
      await evaluate([{ name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: 300 }], 1000);
      expect(await state('monitoring.event-loop')).toEqual(['open']); // between 200 and 500: held
      await evaluate([{ name: 'event_loop_lag_ms', labels: { stat: 'p99' }, value: 50 }], 1000);
      expect(at('monitoring.event-loop')).toEqual(['raised', 'resolved']);
    });
  },
);

describe('database rules, produced for real', { timeout: 120_000 }, () => {
  it('a burst of authorisation denials by one user, then quiet', async () => {
    await evaluate();
    for (let i = 0; i < 30; i++) expect((await req('mia', 'GET', '/api/v1/users')).statusCode).toBe(403);
    await evaluate([], 1000 + 60_000);
    const [n] = hook.notices().filter((x) => x.kind === 'security.denials');
    expect(n).toMatchObject({ notice: 'raised', targets: { actor: `user:${u.mia!.id}` }, severity: 'warning' });
    await evaluate([], 11 * 60_000);
    expect(at('security.denials')).toEqual(['raised', 'resolved']);
  });

  it('mass download: by bytes (two large versions) and by count (ten small ones) per user in 10 minutes', async () => {
    s.mia = await signIn(env, u.mia!);
    s.max = await signIn(env, u.max!);
    const ws = (await req('mia', 'POST', '/api/v1/workspaces', { payload: { name: 'Exports' } })).json().id as string;
    expect(
      (
        await req('mia', 'PUT' as 'POST', `/api/v1/workspaces/${ws}/members/${u.max!.id}`, {
          payload: { role: 'viewer' },
        })
      ).statusCode,
    ).toBe(200);
    const up = async (name: string, body: Buffer) => {
      // uploads stream: over the real HTTPS listener
      const r = await env.https('POST', `/api/v1/workspaces/${ws}/documents`, {
        headers: {
          ...(s.mia!.headers as Record<string, string>),
          'content-disposition': `attachment; filename=${name}`,
          'content-type': 'application/octet-stream',
          'content-length': String(body.length),
        },
        body,
      });
      expect(r.statusCode, r.body).toBe(201);
      return JSON.parse(r.body).id as string;
    };
    const big = await up('big.bin', crypto.randomBytes(700 * 1024));
    const small = await up('small.txt', Buffer.from('small'));
    await evaluate();
    for (let i = 0; i < 2; i++)
      expect((await req('mia', 'GET', `/api/v1/documents/${big}/content`)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++)
      expect((await req('max', 'GET', `/api/v1/documents/${small}/content`)).statusCode).toBe(200);
    await evaluate([], 61_000);
    const raised = hook.notices().filter((x) => x.kind === 'security.mass-download');
    expect(raised.map((x) => x.targets?.actor).sort()).toEqual([`user:${u.mia!.id}`, `user:${u.max!.id}`].sort());
    expect(raised.find((x) => x.targets?.actor === `user:${u.mia!.id}`)!.message).toMatch(
      /2 document version\(s\), 1\.4 MiB/,
    );
    expect(raised.every((x) => x.severity === 'critical')).toBe(true);
    await evaluate([], 11 * 60_000);
    expect(at('security.mass-download')).toEqual(['raised', 'raised', 'resolved', 'resolved']);
  });

  it('admin changes outside working hours alert once per admin; the same change in working hours does not', async () => {
    // Monday 2 November 2026 (the fake clock's day), 10:00 UTC: working hours
    env.clock.set(Date.UTC(2026, 10, 9, 10, 0, 0));
    s.adele = await signIn(env, u.adele!);
    await evaluate([], 1000);
    expect(
      (
        await req('adele', 'POST', '/api/v1/users', {
          payload: { username: 'daytime', email: 'day@example.fr', role: 'member' },
        })
      ).statusCode,
    ).toBeLessThan(300);
    await evaluate();
    expect(at('security.off-hours-admin')).toEqual([]);
    env.clock.set(Date.UTC(2026, 10, 14, 23, 10, 0)); // Saturday night
    s.adele = await signIn(env, u.adele!);
    await evaluate([], 1000);
    expect(
      (
        await req('adele', 'POST', '/api/v1/users', {
          payload: { username: 'nighttime', email: 'night@example.fr', role: 'member' },
        })
      ).statusCode,
    ).toBeLessThan(300);
    await evaluate();
    const [n] = hook.notices().filter((x) => x.kind === 'security.off-hours-admin');
    expect(n).toMatchObject({ notice: 'raised', targets: { actor: `user:${u.adele!.id}` } });
    expect(n!.message).toMatch(/user\.invite|user\.create/);
  });

  it('a failing job alerts until its next run succeeds (backup, verify, drill and every other job)', async () => {
    let fail = true;
    env.t.appliance.scheduler.register({
      name: 'test.flaky',
      run: async () => {
        if (fail) throw new Error('target unreachable');
      },
    });
    await expect(env.t.appliance.scheduler.run('test.flaky', { trigger: 'api', actor: 'job:test' })).rejects.toThrow();
    await evaluate();
    expect(
      hook
        .notices()
        .filter((x) => x.kind === 'job.failed')
        .map((x) => [x.notice, x.targets?.job]),
    ).toEqual([['raised', 'test.flaky']]);
    fail = false;
    await env.t.appliance.scheduler.run('test.flaky', { trigger: 'api', actor: 'job:test' });
    await evaluate();
    expect(at('job.failed')).toEqual(['raised', 'resolved']);
  });

  it('no successful restore drill for 8 days after a target exists; cleared by a drill', async () => {
    const now = env.clock.nowMs();
    await db()
      .insertInto('backup_targets')
      .values({
        name: 'lyon',
        type: 'path',
        url: 'file:///mnt/lyon',
        jurisdiction: 'FR',
        lat: 45.76,
        lon: 4.83,
        host_key: null,
        identity_file: null,
        password_file: null,
        created_at: now - 9 * 86_400_000,
        created_by: 'local:test',
      })
      .execute();
    await evaluate();
    expect(at('backup.drill-stale')).toEqual(['raised']);
    await db()
      .insertInto('backup_checks')
      .values({
        backup_id: 'b-1',
        kind: 'drill',
        started_at: now,
        ended_at: now + 1000,
        ok: 1,
        error: null,
        details: null,
      })
      .execute();
    await evaluate();
    expect(at('backup.drill-stale')).toEqual(['raised', 'resolved']);
  });

  it('an overdue access review alerts until it is closed', async () => {
    s.adele = await signIn(env, u.adele!);
    const r = await req('adele', 'POST', '/api/v1/access-reviews');
    expect(r.statusCode, r.body).toBe(201);
    await db()
      .updateTable('access_reviews')
      .set({ due_at: env.clock.nowMs() - 1000 })
      .where('id', '=', r.json().id)
      .execute();
    await evaluate();
    expect(
      hook
        .notices()
        .filter((x) => x.kind === 'access.review.overdue')
        .map((x) => [x.notice, x.targets?.review]),
    ).toEqual([['raised', r.json().id]]);
    await db()
      .updateTable('access_reviews')
      .set({ closed_at: env.clock.nowMs() })
      .where('id', '=', r.json().id)
      .execute();
    await evaluate();
    expect(at('access.review.overdue')).toEqual(['raised', 'resolved']);
  });

  it('a tampered audit record breaks the chain: alert; put back: cleared', async () => {
    const row = await db()
      .selectFrom('audit_events')
      .select(['seq', 'actor'])
      .orderBy('seq')
      .where('actor', 'like', 'user:%')
      .executeTakeFirstOrThrow();
    await db().updateTable('audit_events').set({ actor: 'user:someone-else' }).where('seq', '=', row.seq).execute();
    await evaluate([], 3_600_000);
    const [n] = hook.notices().filter((x) => x.kind === 'audit.chain-broken');
    expect(n).toMatchObject({ notice: 'raised', severity: 'critical' });
    expect(n!.message).toContain(`seq ${row.seq}`);
    await db().updateTable('audit_events').set({ actor: row.actor }).where('seq', '=', row.seq).execute();
    await evaluate([], 3_600_000);
    expect(at('audit.chain-broken')).toEqual(['raised', 'resolved']);
  });
});
