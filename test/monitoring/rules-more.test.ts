import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, type IdentityEnv } from '../auth/support.js';
import { enrolUser } from '../auth/helpers.js';
import { eventually, startSyslogReceiver, startWebhookReceiver } from '../support/receivers.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import { makeSelfSigned } from '../../src/http/index.js';
import type { Sample } from '../../src/monitoring/index.js';

/**
 * The audit-export, clock-drift and backup-target-space rules, and /metrics over mutual TLS, on
 * a listening appliance (real SoftHSM2, SQLite, HTTPS) with real parts: a syslog-over-TLS
 * collector that is stopped and restarted, an HTTPS peer whose Date header is set ahead, a mounted
 * path target and an SFTP target on a real sshd, client certificates made by openssl. Alerts are
 * checked at a real HTTPS webhook and a real SMTP server. Only the Clock is fake.
 */
let env: IdentityEnv;
let syslog: Awaited<ReturnType<typeof startSyslogReceiver>>;
let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
let sshd: Sshd;
let peer: https.Server;
let skewMs = 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-rules2-'));
const pathTarget = path.join(dir, 'mnt-secondary');
const SCRAPE = 'scrape-token-0c1d2e3f4a5b6c7d';

const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
/** a CA and a client certificate it issued (real openssl) */
function makeCa(name: string): void {
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.pem`,
    '-days',
    '30',
    '-subj',
    `/CN=${name} CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  ssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}-client.key`,
    '-out',
    `${name}-client.csr`,
    '-subj',
    `/CN=${name} scraper`,
  );
  fs.writeFileSync(path.join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  ssl(
    'x509',
    '-req',
    '-in',
    `${name}-client.csr`,
    '-CA',
    `${name}-ca.pem`,
    '-CAkey',
    `${name}-ca.key`,
    '-CAcreateserial',
    '-out',
    `${name}-client.pem`,
    '-days',
    '30',
    '-extfile',
    'client.ext',
  );
}

beforeAll(async () => {
  syslog = await startSyslogReceiver();
  hook = await startWebhookReceiver(dir);
  sshd = await startSshd();
  fs.mkdirSync(pathTarget);
  const peerCert = await makeSelfSigned(['localhost']);
  fs.writeFileSync(path.join(dir, 'peer-ca.pem'), peerCert.certPem);
  peer = https.createServer({ key: peerCert.keyPem, cert: peerCert.certPem }, (_req, res) => {
    res.setHeader('date', new Date(Date.now() + skewMs).toUTCString());
    res.end();
  });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  makeCa('scrape');
  makeCa('other');
  fs.writeFileSync(path.join(dir, 'scrape-token'), `${SCRAPE}\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'syslog-ca.pem'), syslog.caPem);
  env = await openIdentityEnv(
    {
      COFFRE_CFG_audit__syslog: JSON.stringify({
        enabled: true,
        transport: 'tls',
        host: '127.0.0.1',
        port: syslog.port,
        caFile: path.join(dir, 'syslog-ca.pem'),
      }),
      // alerts must not depend on the collector the audit-export test stops
      COFFRE_CFG_monitoring__alerts: JSON.stringify({
        syslog: { enabled: false },
        email: { to: ['oncall@example.fr'], minSeverity: 'info' },
        webhook: { url: hook.url, secretFile: hook.secretFile, caFile: hook.caFile },
      }),
      COFFRE_CFG_monitoring__clock: JSON.stringify({
        peers: [`https://localhost:${(peer.address() as AddressInfo).port}/`],
        caFile: path.join(dir, 'peer-ca.pem'),
        intervalMs: 1000,
      }),
      COFFRE_CFG_monitoring__targetSpaceIntervalMs: '1000',
      COFFRE_CFG_monitoring__rules__targetDisk: JSON.stringify({ percent: 2, clearPercent: 1 }),
      COFFRE_CFG_monitoring__scrapeTokenFile: JSON.stringify(path.join(dir, 'scrape-token')),
      COFFRE_CFG_monitoring__scrapeClientCaFile: JSON.stringify(path.join(dir, 'scrape-ca.pem')),
    },
    { listen: true },
  );
}, 180_000);
afterAll(async () => {
  await env?.close();
  await syslog?.collector.stop();
  await hook?.close();
  await sshd?.close();
  await new Promise<void>((r) => (peer ? peer.close(() => r()) : r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const m = () => env.t.appliance.monitoring;
const db = () => env.t.appliance.db.db;
const at = (kind: string) =>
  hook
    .notices()
    .filter((n) => n.kind === kind)
    .map((n) => n.notice);
const mailed = (kind: string) =>
  env.smtp.messages
    .filter((x) => x.raw.replace(/=\r?\n/g, '').includes(`"kind":"${kind}"`))
    .map((x) => /"notice":"(\w+)"/.exec(x.raw)?.[1]);
const one = (samples: readonly Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))?.value;
/** one real sample (the rules run on it: this process holds the rules lease), then delivery */
async function sample(advanceMs = 2000): Promise<Sample[]> {
  env.clock.advance(advanceMs);
  const s = await m().sampler.sample();
  await m().alerter.settle();
  return s;
}
const lag = async () => {
  const head = await db().selectFrom('audit_head').select('seq').executeTakeFirst();
  const cur = await db().selectFrom('audit_cursors').select('seq').where('sink', '=', 'syslog').executeTakeFirst();
  return Number(head?.seq ?? 0) - Number(cur?.seq ?? -1);
};

describe('audit export lagging', { timeout: 120_000 }, () => {
  it('raised when the oldest record waiting for the collector is older than 15 min, cleared once the collector has it', async () => {
    await env.t.appliance.audit.startExport();
    await enrolUser(env, 'theo', 'member');
    const l0 = await eventually(lag, (n) => n === 0);
    expect(l0, JSON.stringify(env.t.appliance.audit.forwarder?.status())).toBe(0);
    let s = await sample();
    expect(one(s, 'audit_export_lag_seconds')).toBe(0);
    await syslog.collector.stop();
    await enrolUser(env, 'lena', 'member'); // audited while the collector is down
    s = await sample(5 * 60_000);
    expect(one(s, 'audit_export_lag_records')).toBeGreaterThan(0);
    expect(one(s, 'audit_export_lag_seconds')).toBeGreaterThanOrEqual(300);
    expect(at('audit.export-lagging')).toEqual([]); // under 15 min
    s = await sample(11 * 60_000);
    expect(one(s, 'audit_export_lag_seconds')).toBeGreaterThanOrEqual(900);
    expect(at('audit.export-lagging')).toEqual(['raised']);
    expect(hook.notices().find((n) => n.kind === 'audit.export-lagging')!.message).toMatch(
      /\d+ audit record\(s\) wait for the syslog collector, the oldest for 1[56]\.\d min/,
    );
    await syslog.collector.start(syslog.port);
    await eventually(lag, (n) => n === 0, 60_000);
    s = await sample();
    expect(one(s, 'audit_export_lag_seconds')).toBe(0);
    expect(at('audit.export-lagging')).toEqual(['raised', 'resolved']);
    expect(mailed('audit.export-lagging')).toEqual(['raised', 'resolved']);
  });
});

describe('clock drift against HTTPS peers', { timeout: 60_000 }, () => {
  it('a peer 2 min ahead: this clock is behind, alert; the peer agrees again: cleared', async () => {
    let s = await sample();
    expect(Math.abs(one(s, 'clock_offset_seconds')!)).toBeLessThan(2);
    expect(one(s, 'clock_peers_reached')).toBe(1);
    skewMs = 120_000;
    s = await sample();
    expect(one(s, 'clock_offset_seconds')).toBeLessThan(-118);
    expect(one(s, 'clock_offset_seconds')).toBeGreaterThan(-122);
    expect(at('monitoring.clock-drift')).toEqual(['raised']);
    const n = hook.notices().find((x) => x.kind === 'monitoring.clock-drift')!;
    expect(n).toMatchObject({ severity: 'critical' });
    expect(n.message).toMatch(/this clock is 1[12]\d\.\d s behind its HTTPS peers/);
    skewMs = 3000; // between the thresholds (2 s and 5 s): held
    s = await sample();
    expect(
      (await db().selectFrom('alerts').select('state').where('kind', '=', 'monitoring.clock-drift').execute()).map(
        (r) => r.state,
      ),
    ).toEqual(['open']);
    skewMs = 0;
    await sample();
    expect(at('monitoring.clock-drift')).toEqual(['raised', 'resolved']);
    expect(mailed('monitoring.clock-drift')).toEqual(['raised', 'resolved']);
  });

  it('a peer whose certificate does not verify does not count', async () => {
    const other = await makeSelfSigned(['localhost']);
    const liar = https.createServer({ key: other.keyPem, cert: other.certPem }, (_q, r) => {
      r.setHeader('date', new Date(Date.now() + 3_600_000).toUTCString());
      r.end();
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    try {
      const { measureClockOffset } = await import('../../src/monitoring/clock.js');
      const r = await measureClockOffset({
        peers: [
          `https://localhost:${(liar.address() as AddressInfo).port}/`,
          `https://localhost:${(peer.address() as AddressInfo).port}/`,
        ],
        ca: fs.readFileSync(path.join(dir, 'peer-ca.pem'), 'utf8'),
      });
      expect(r.reached).toBe(1);
      expect(Math.abs(r.offsetMs!)).toBeLessThan(2000);
    } finally {
      await new Promise<void>((r) => liar.close(() => r()));
    }
  });
});

describe('space at each backup target', { timeout: 120_000 }, () => {
  it('a mounted path (statfs) and SFTP (statvfs@openssh.com) measured; the rule raises per target and clears', async () => {
    const site = { jurisdiction: 'FR', lat: 45.764, lon: 4.8357 };
    await env.t.appliance.backup.addTarget(
      {
        name: 'dr',
        type: 'sftp',
        url: sshd.url('dr'),
        ...site,
        hostKey: sshd.hostKeyLine,
        identityFile: sshd.identityFile,
      },
      'local:test',
    );
    await env.t.appliance.backup.addTarget(
      { name: 'mnt', type: 'path', url: `file://${pathTarget}`, ...site },
      'local:test',
    );
    const s = await sample();
    for (const [target, where] of [
      ['dr', sshd.root],
      ['mnt', pathTarget],
    ] as const) {
      const st = fs.statfsSync(where);
      expect(one(s, 'backup_target_up', { target }), target).toBe(1);
      expect(one(s, 'backup_target_total_bytes', { target }), target).toBe(st.blocks * st.bsize);
      // free space moves as other processes write: within 1 %
      expect(Math.abs(one(s, 'backup_target_free_bytes', { target })! - st.bavail * st.bsize), target).toBeLessThan(
        st.blocks * st.bsize * 0.01,
      );
      expect(one(s, 'backup_target_used_percent', { target }), target).toBeGreaterThan(2); // over the test's 2 % threshold
    }
    const raised = hook.notices().filter((x) => x.kind === 'backup.target-disk');
    expect(raised.map((x) => [x.notice, x.targets?.target]).sort()).toEqual([
      ['raised', 'dr'],
      ['raised', 'mnt'],
    ]);
    // a volume that empties (fed: a real disk cannot be emptied on demand) clears its alert only
    await m().rules.evaluate({
      now: env.clock.nowMs(),
      samples: [{ name: 'backup_target_used_percent', labels: { target: 'mnt' }, value: 0.1 }],
    });
    await m().alerter.settle();
    expect(
      hook
        .notices()
        .filter((x) => x.kind === 'backup.target-disk')
        .map((x) => [x.notice, x.targets?.target]),
    ).toEqual(expect.arrayContaining([['resolved', 'mnt']]));
    expect(
      hook
        .notices()
        .filter((x) => x.kind === 'backup.target-disk' && x.targets?.target === 'dr')
        .map((x) => x.notice),
    ).toEqual(['raised']);
    expect(mailed('backup.target-disk')).toEqual(['raised', 'raised', 'resolved']);
    // /metrics carries them
    const r = await env.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${SCRAPE}` } });
    expect(r.body).toMatch(/^coffre_backup_target_free_bytes\{target="dr"\} \d+/m);
  });

  it('an SFTP target whose server is gone is reported down; the others still measured', async () => {
    await sshd.close();
    env.clock.advance(1000); // past targetSpaceIntervalMs
    const t0 = Date.now();
    const s = await sample();
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(one(s, 'backup_target_up', { target: 'dr' })).toBe(0);
    expect(one(s, 'backup_target_free_bytes', { target: 'dr' })).toBeUndefined();
    expect(one(s, 'backup_target_up', { target: 'mnt' })).toBe(1);
  });
});

describe('/metrics over mutual TLS', { timeout: 60_000 }, () => {
  const port = () => (env.app.server.address() as AddressInfo).port;
  const get = (p: string, o: { cert?: string; headers?: Record<string, string> } = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = https.request(
        {
          host: '127.0.0.1',
          port: port(),
          path: p,
          servername: 'localhost',
          agent: false,
          ca: fs.readFileSync(path.join(env.t.dataDir, 'tls', 'cert.pem')),
          headers: o.headers ?? {},
          ...(o.cert
            ? {
                cert: fs.readFileSync(path.join(dir, `${o.cert}-client.pem`)),
                key: fs.readFileSync(path.join(dir, `${o.cert}-client.key`)),
              }
            : {}),
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      r.on('error', reject);
      r.end();
    });

  it('a client certificate from the scrape CA is enough; none, or one from another CA, is not; the token still works', async () => {
    const ok = await get('/metrics', { cert: 'scrape' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^coffre_hsm_up 1$/m);
    expect((await get('/metrics')).status).toBe(401);
    expect((await get('/metrics', { cert: 'other' })).status).toBe(401);
    expect((await get('/metrics', { headers: { authorization: `Bearer ${SCRAPE}` } })).status).toBe(200);
    // a foreign certificate with a wrong token: still refused
    expect((await get('/metrics', { cert: 'other', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  });

  it('no other route asks for a client certificate: the console and the API work without one', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/api/v1/auth/me')).status).toBe(401); // the session gate, not TLS
    // and a scrape certificate does not sign anyone in
    expect((await get('/api/v1/auth/me', { cert: 'scrape' })).status).toBe(401);
  });
});
