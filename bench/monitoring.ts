import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { initAppliance } from '../src/init.js';
import { openAppliance, buildApp } from '../src/main.js';
import { makeSelfSigned } from '../src/http/index.js';
import { createLogger } from '../src/shared/logger.js';

/**
 * `npm run bench -- monitoring`, on a real appliance (SoftHSM2, SQLite, each commit flushed before it resolves, the
 * audit trail):
 * - sampling overhead: CPU time of one sample (every source, the HSM probe, the database write,
 *   the rules), as a share of one core at the 15 s interval (target < 1 %);
 * - alert delivery latency: `raise` until a local HTTPS webhook receiver has the notice
 *   (stored, audited, queued in the outbox, signed, POSTed);
 * - a flood from one address (50 concurrent clients, anonymous, on a vault route) against the
 *   p99 of other clients' authenticated requests (target: within 2× of idle). Requests go through
 *   the whole Fastify pipeline with `inject` (no TLS).
 */
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100;
};

export default async function bench(): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-monitoring-'));
  const cert = await makeSelfSigned(['localhost']);
  fs.writeFileSync(path.join(dir, 'hook-ca.pem'), cert.certPem);
  fs.writeFileSync(path.join(dir, 'hook-secret'), 'bench-webhook-secret-0123456789');
  const got = new Map<string, number>();
  const server = https.createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.set((JSON.parse(body) as { kind: string }).kind, performance.now());
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await initAppliance({
      dataDir: path.join(dir, 'a'),
      jurisdiction: 'FR',
      timeZone: 'UTC',
      hostnames: ['localhost'],
      actor: 'local:bench',
    });
    const env = {
      ...process.env,
      COFFRE_CFG_monitoring__alerts: JSON.stringify({
        webhook: {
          url: `https://localhost:${port}/hook`,
          secretFile: path.join(dir, 'hook-secret'),
          caFile: path.join(dir, 'hook-ca.pem'),
          retries: 0,
        },
      }),
      // the measuring client is one user standing for many: its own per-user budget lifted
      COFFRE_CFG_monitoring__budgets: JSON.stringify({ vault: { perAddress: 900, perUser: 1_000_000 } }),
    };
    const a = await openAppliance({
      dataDir: path.join(dir, 'a'),
      env,
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    const app = await buildApp(a, false);
    await app.ready();
    try {
      // ---- sampling overhead
      const m = a.monitoring;
      for (let i = 0; i < 5; i++) await m.sampler.sample(); // warm-up
      const cpu: number[] = [];
      const wall: number[] = [];
      for (let i = 0; i < 40; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await m.sampler.sample();
        wall.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1000);
      }
      const cpuPerSample = cpu.reduce((x, y) => x + y, 0) / cpu.length;
      const sampling = {
        samples: cpu.length,
        cpuMsPerSampleMean: Math.round(cpuPerSample * 100) / 100,
        cpuMsPerSampleP99: pct(cpu, 99),
        wallMsP50: pct(wall, 50),
        wallMsP99: pct(wall, 99),
        percentOfOneCoreAt15s: Math.round((cpuPerSample / a.config.monitoring.sampleIntervalMs) * 100 * 1000) / 1000,
        metricsPerSample: m.sampler.latest().length,
      };

      // ---- alert delivery latency (webhook), one alert at a time
      const lat: number[] = [];
      for (let i = 0; i < 30; i++) {
        const kind = `bench.alert${i}`;
        const t0 = performance.now();
        await a.alerts.raise({ kind, severity: 'warning', message: `bench alert ${i}` });
        while (!got.has(kind)) await new Promise((r) => setImmediate(r));
        lat.push(got.get(kind)! - t0);
      }
      const delivery = { alerts: lat.length, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99), maxMs: pct(lat, 100) };

      // ---- flood from one address vs other clients' p99
      const password = 'Bench-Orchard-Pass-42';
      const inv = await a.identity.accounts.invite(
        { username: 'bench-user', email: 'bench-user@bench.test', role: 'member' },
        'local:bench',
        {},
      );
      await a.identity.accounts.enrol({ token: inv.enrolUrl, password }, {});
      const tok = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { username: 'bench-user', password, issue: 'token' },
      });
      const bearer = { authorization: `Bearer ${tok.json().token as string}` };
      let n = 0;
      const me = async () => {
        const t0 = performance.now();
        const r = await app.inject({
          method: 'GET',
          url: '/api/v1/workspaces',
          headers: bearer,
          remoteAddress: `10.77.${n++ % 50}.1`,
        });
        if (r.statusCode !== 200) throw new Error(`unexpected ${r.statusCode}`);
        return performance.now() - t0;
      };
      for (let i = 0; i < 100; i++) await me();
      const idle: number[] = [];
      for (let i = 0; i < 600; i++) idle.push(await me());
      let stop = false;
      let sent = 0;
      const codes: Record<number, number> = {};
      const flood = Array.from({ length: 50 }, async () => {
        while (!stop) {
          const r = await app.inject({ method: 'GET', url: '/api/v1/workspaces', remoteAddress: '10.66.6.6' });
          codes[r.statusCode] = (codes[r.statusCode] ?? 0) + 1;
          sent++;
          await new Promise((res) => setImmediate(res));
        }
      });
      await new Promise((r) => setTimeout(r, 500));
      const during: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 600; i++) during.push(await me());
      const secs = (performance.now() - t0) / 1000;
      stop = true;
      await Promise.all(flood);
      const floodResult = {
        idleP50Ms: pct(idle, 50),
        idleP99Ms: pct(idle, 99),
        duringP50Ms: pct(during, 50),
        duringP99Ms: pct(during, 99),
        p99Ratio: Math.round((pct(during, 99) / pct(idle, 99)) * 100) / 100,
        floodRequests: sent,
        floodPerSecond: Math.round(sent / (secs + 0.5)),
        floodAnswers: codes,
      };
      return { sampling, delivery, flood: floodResult };
    } finally {
      await app.close();
      await a.close();
    }
  } finally {
    server.closeAllConnections();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
