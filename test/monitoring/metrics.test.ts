import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled, type Signed } from '../auth/helpers.js';
import { MetricStore } from '../../src/monitoring/index.js';
import { openTrail, rmrf } from '../audit/support.js';

/**
 * Metrics: what one sample holds (real process, volumes, SoftHSM2, requests through the real app),
 * the database points (1-minute merge, 15-minute downsampling, retention), `/metrics` behind its
 * scrape token, and the operations API across roles.
 */
let env: IdentityEnv;
const u: Record<string, Enrolled> = {};
const s: Record<string, Signed> = {};
const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-scrape-'));
const SCRAPE = 'scrape-token-7f3a9c1e5b2d4f60';

beforeAll(async () => {
  fs.writeFileSync(path.join(tokenDir, 'scrape'), `${SCRAPE}\n`, { mode: 0o600 });
  // the fake clock jumps hours between records, faster than the checkpointer's real-time tick: a
  // 30-day cadence keeps verify's cadence check (test/audit/checkpoints.test.ts) out of this test
  env = await openIdentityEnv({
    COFFRE_CFG_audit__checkpointIntervalMs: String(30 * 86_400_000),
    COFFRE_CFG_monitoring__scrapeTokenFile: JSON.stringify(path.join(tokenDir, 'scrape')),
  });
  for (const [name, role] of [
    ['adele', 'admin'],
    ['bob', 'backup-operator'],
    ['aude', 'auditor'],
    ['mia', 'member'],
  ] as const) {
    u[name] = await enrolUser(env, name, role);
    s[name] = await signIn(env, u[name]);
  }
}, 120_000);
afterAll(async () => {
  await env?.close();
  fs.rmSync(tokenDir, { recursive: true, force: true });
});

const req = (who: string, method: 'GET' | 'POST', url: string) =>
  env.app.inject({ method, url, headers: s[who]!.headers });
const m = () => env.t.appliance.monitoring;

describe('sampling', { timeout: 60_000 }, () => {
  it('one sample measures the process, the machine, both volumes, requests per route group, the HSM, the certificate, sessions and alerts', async () => {
    for (let i = 0; i < 5; i++) await env.app.inject({ method: 'GET', url: '/healthz' });
    await env.app.inject({ method: 'GET', url: '/api/v1/auth/me' }); // 401: counted, not an error
    await m().sampler.sample(); // the first sample opens the CPU and request intervals
    for (let i = 0; i < 5; i++) await env.app.inject({ method: 'GET', url: '/healthz' });
    await req('adele', 'GET', '/api/v1/auth/me');
    const samples = await m().sampler.sample();
    const one = (name: string, labels: Record<string, string> = {}) =>
      samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))?.value;
    expect(one('cpu_process_percent')).toBeGreaterThan(0);
    expect(one('memory_rss_bytes')).toBeGreaterThan(10 * 1024 ** 2);
    expect(one('memory_system_used_percent')).toBeGreaterThan(0);
    for (const volume of ['data', 'blobs']) {
      expect(one('disk_total_bytes', { volume })).toBeGreaterThan(0);
      expect(one('disk_used_percent', { volume })).toBeGreaterThan(0);
    }
    expect(one('http_requests_per_second', { group: 'probes' })).toBeGreaterThan(0);
    expect(one('http_requests_per_second', { group: 'auth' })).toBeGreaterThan(0);
    expect(one('http_errors_per_second', { group: 'auth' })).toBe(0);
    expect(one('http_latency_ms', { group: 'probes', stat: 'p99' })).toBeGreaterThan(0);
    expect(one('hsm_up')).toBe(1);
    expect(one('hsm_latency_ms')).toBeGreaterThan(0);
    expect(one('tls_certificate_expiry_days')).toBeGreaterThan(30);
    expect(one('sessions_active')).toBe(4);
    expect(one('alerts_open', { severity: 'critical' })).toBe(0);
    // stored as 1-minute points
    const rows = await env.t.appliance.db.db
      .selectFrom('metric_samples')
      .selectAll()
      .where('name', '=', 'disk_used_percent')
      .execute();
    expect(rows.map((r) => [JSON.parse(r.labels).volume, r.res, Number(r.n)]).sort()).toEqual([
      ['blobs', 60_000, 2],
      ['data', 60_000, 2],
    ]);
  });

  it('/metrics: 401 without the scrape token or with a wrong one, the Prometheus text format with it', async () => {
    expect((await env.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect(
      (await env.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-token' } }))
        .statusCode,
    ).toBe(401);
    // a session is not a scrape token
    expect((await env.app.inject({ method: 'GET', url: '/metrics', headers: s.adele!.headers })).statusCode).toBe(401);
    const r = await env.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${SCRAPE}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toMatch(/^# HELP coffre_memory_rss_bytes /m);
    expect(r.body).toMatch(/^coffre_disk_used_percent\{volume="blobs"\} \d/m);
    expect(r.body).toMatch(/^coffre_http_request_duration_seconds_bucket\{le="0\.005",group="probes"\} \d+/m);
    expect(r.body).toMatch(/^coffre_hsm_up 1$/m);
  });
});

describe('operations API across roles', { timeout: 60_000 }, () => {
  it('metric series for admins, backup operators and auditors; members are refused (403, not an empty list)', async () => {
    for (const who of ['adele', 'bob', 'aude']) {
      const r = await req(who, 'GET', '/api/v1/monitoring/metrics?range=1h&names=memory_rss_bytes,disk_used_percent');
      expect(r.statusCode, r.body).toBe(200);
      const j = r.json() as {
        resolutionMs: number;
        series: { name: string; labels: Record<string, string>; points: number[][] }[];
      };
      expect(j.resolutionMs).toBe(60_000);
      expect(j.series.map((x) => `${x.name}${JSON.stringify(x.labels)}`).sort()).toEqual([
        'disk_used_percent{"volume":"blobs"}',
        'disk_used_percent{"volume":"data"}',
        'memory_rss_bytes{}',
      ]);
      expect(j.series[0]!.points[0]).toHaveLength(3);
    }
    expect((await req('mia', 'GET', '/api/v1/monitoring/metrics?range=1h&names=memory_rss_bytes')).statusCode).toBe(
      403,
    );
    expect((await req('adele', 'GET', '/api/v1/monitoring/metrics?range=1y&names=x')).statusCode).toBe(400);
    expect((await req('adele', 'GET', '/api/v1/monitoring/metrics?names=a%20b')).statusCode).toBe(400);
  });

  it('component health with details for operators', async () => {
    const r = await req('aude', 'GET', '/api/v1/monitoring/health');
    expect(r.statusCode).toBe(200);
    expect((r.json() as { components: { name: string; ok: boolean }[] }).components.map((c) => [c.name, c.ok])).toEqual(
      [
        ['database', true],
        ['keys', true],
        ['storage', true],
        ['audit-export', true],
      ],
    );
    expect((await req('mia', 'GET', '/api/v1/monitoring/health')).statusCode).toBe(403);
  });

  it('alerts: admins and backup operators acknowledge and resolve (audited with who and from where); auditors only read', async () => {
    await m().alerter.raise({
      kind: 'backup.failed',
      severity: 'critical',
      message: 'target unreachable',
      targets: { target: 'dr' },
    });
    const list = await req('aude', 'GET', '/api/v1/monitoring/alerts?state=active');
    expect(list.statusCode).toBe(200);
    const [a] = (list.json() as { alerts: { id: string; state: string; kind: string }[] }).alerts;
    expect(a).toMatchObject({ kind: 'backup.failed', state: 'open' });
    expect((await req('aude', 'POST', `/api/v1/monitoring/alerts/${a!.id}/ack`)).statusCode).toBe(403);
    expect((await req('mia', 'GET', '/api/v1/monitoring/alerts')).statusCode).toBe(403);
    const ack = await req('bob', 'POST', `/api/v1/monitoring/alerts/${a!.id}/ack`);
    expect(ack.statusCode, ack.body).toBe(200);
    expect((await req('bob', 'POST', `/api/v1/monitoring/alerts/${a!.id}/ack`)).json().error.code).toBe(
      'ALERT_NOT_OPEN',
    );
    expect((await req('adele', 'POST', `/api/v1/monitoring/alerts/${a!.id}/resolve`)).statusCode).toBe(200);
    expect((await req('adele', 'POST', `/api/v1/monitoring/alerts/${a!.id}/resolve`)).statusCode).toBe(409);
    expect(
      (await req('adele', 'POST', '/api/v1/monitoring/alerts/00000000-0000-4000-8000-000000000000/resolve')).statusCode,
    ).toBe(404);
    const ev = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', 'in', ['alert.acknowledged', 'alert.resolved'])
      .orderBy('seq')
      .execute();
    expect(ev.map((e) => [e.action, e.actor, e.source_ip])).toEqual([
      ['alert.acknowledged', `user:${u.bob!.id}`, '127.0.0.1'],
      ['alert.resolved', `user:${u.adele!.id}`, '127.0.0.1'],
    ]);
    const hist = (await req('adele', 'GET', '/api/v1/monitoring/alerts?state=resolved')).json() as {
      alerts: { id: string; acknowledgedBy: string; resolvedBy: string }[];
    };
    expect(hist.alerts[0]).toMatchObject({
      id: a!.id,
      acknowledgedBy: `user:${u.bob!.id}`,
      resolvedBy: `user:${u.adele!.id}`,
    });
  });

  it('jobs: every registered job and its runs with outcome and duration', async () => {
    await env.t.appliance.scheduler.run('monitoring.compact', { trigger: 'api', actor: 'job:test' });
    const r = await req('bob', 'GET', '/api/v1/monitoring/jobs');
    expect(r.statusCode).toBe(200);
    const j = r.json() as { jobs: { name: string }[]; runs: { job: string; outcome: string; durationMs: number }[] };
    expect(j.jobs.map((x) => x.name)).toContain('monitoring.compact');
    expect(j.runs.find((x) => x.job === 'monitoring.compact')).toMatchObject({
      outcome: 'succeeded',
      durationMs: expect.any(Number),
    });
    expect((await req('mia', 'GET', '/api/v1/monitoring/jobs')).statusCode).toBe(403);
  });
});

describe('MetricStore', () => {
  it('merges samples into 1-minute points, folds points older than a day into 15-minute means and maxima, drops points past the retention', async () => {
    const t = await openTrail();
    try {
      const store = new MetricStore(t.h.db);
      const DAY = 86_400_000;
      const t0 = Date.UTC(2026, 10, 1, 10, 0, 0);
      // 3 days of one sample per 15 s for 40 minutes, value = minute index, plus a spike
      for (const day of [0, 2]) {
        for (let s = 0; s < 160; s++)
          await store.write(
            [
              { name: 'memory_rss_bytes', value: Math.floor(s / 4) + (s === 17 ? 100 : 0) },
              { name: 'disk_used_percent', labels: { volume: 'data' }, value: 50 },
            ],
            t0 + day * DAY + s * 15_000,
          );
      }
      const minute = await t.h.db
        .selectFrom('metric_samples')
        .selectAll()
        .where('name', '=', 'memory_rss_bytes')
        .where('at', '=', t0 + 4 * 60_000)
        .executeTakeFirstOrThrow();
      expect([Number(minute.value), Number(minute.max), Number(minute.n)]).toEqual([4 + 25, 104, 4]);
      const now = t0 + 2 * DAY + 3_600_000;
      const r = await store.compact(now, DAY, 30 * DAY);
      expect(r.folded).toBe(80); // the 40 old 1-minute points of each series
      const coarse = await t.h.db
        .selectFrom('metric_samples')
        .selectAll()
        .where('name', '=', 'memory_rss_bytes')
        .where('res', '=', 900_000)
        .orderBy('at')
        .execute();
      expect(
        coarse.map((c) => [Number(c.at) - t0, Math.round(Number(c.value) * 1000) / 1000, Number(c.max), Number(c.n)]),
      ).toEqual([
        [0, 8.667, 104, 60],
        [900_000, 22, 29, 60],
        [1_800_000, 34.5, 39, 40],
      ]);
      // the recent day is still at 1 minute; a 30-day query folds it on the fly
      expect((await store.query(['memory_rss_bytes'], now - 3_600_000 * 2, false))[0]!.points).toHaveLength(40);
      const month = await store.query(['memory_rss_bytes'], now - 30 * DAY, true);
      expect(month[0]!.points.map((p) => p[0] - t0)).toEqual([
        0,
        900_000,
        1_800_000,
        2 * DAY,
        2 * DAY + 900_000,
        2 * DAY + 1_800_000,
      ]);
      // 31 days later everything is gone
      await store.compact(now + 31 * DAY, DAY, 30 * DAY);
      expect(await t.h.db.selectFrom('metric_samples').selectAll().execute()).toHaveLength(0);
    } finally {
      await t.close();
      rmrf(t.dir);
    }
  });
});
