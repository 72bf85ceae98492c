/**
 * A real S3 server for tests: Ceph's RADOS Gateway from Debian's packages (ceph-mon, ceph-mgr,
 * ceph-osd, radosgw; ./scripts/test installs them), as a throwaway single-node cluster in a temp
 * dir: one monitor and one manager on 127.0.0.1, one BlueStore OSD on a sparse file, radosgw (beast)
 * on loopback. Cephx is off (loopback only, a temp cluster); S3 requests are still signed (SigV4)
 * with the keys of an RGW user created here. Object Lock (compliance and governance) is RGW's own.
 * A test that needs it and cannot start it fails; it never skips.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import crypto from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TestS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** how long the cluster took to answer S3 requests, and its daemons' resident memory then */
  startMs: number;
  rssKiB: Record<string, number>;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

const DAEMONS = ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'radosgw'];

function checkInstalled(): void {
  const missing = [...DAEMONS, 'ceph', 'radosgw-admin', 'monmaptool'].filter(
    (b) => !['/usr/bin', '/usr/sbin'].some((d) => fs.existsSync(path.join(d, b))),
  );
  if (missing.length)
    throw new Error(
      `Ceph is not installed (${missing.join(', ')} missing); ./scripts/test installs ceph-mon ceph-mgr ceph-osd radosgw`,
    );
}

function conf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
log file = ${dir}/log/$name.log
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[mon]
mon data = ${dir}/mon/$id
[mgr]
mgr data = ${dir}/mgr/$id
[osd]
osd data = ${dir}/osd/$id
osd objectstore = bluestore
bluestore block path = ${dir}/osd/block.$id
bluestore block create = true
bluestore block size = 10737418240
bluestore fsck on mkfs = false
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
rgw thread pool size = 32
`;
}

function rssOf(pidFile: string): number {
  try {
    const pid = fs.readFileSync(pidFile, 'utf8').trim();
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Starts a cluster; one that fails to start on a loaded machine is tried again (3 times in all), with fresh ports and a fresh dir. */
export async function startS3(): Promise<TestS3> {
  checkInstalled();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (e) {
      if (attempt === 3) throw e;
      process.stderr.write(`test S3: start ${attempt} failed, retrying: ${(e as Error).message.split('\n')[0]}\n`);
    }
  }
}

async function startOnce(): Promise<TestS3> {
  const t0 = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-rgw-'));
  for (const d of ['mon/a', 'mgr/x', 'osd', 'rgw', 'run', 'log']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = crypto.randomUUID();
  const cfg = path.join(dir, 'ceph.conf');
  fs.writeFileSync(cfg, conf(dir, fsid, monPort, rgwPort));
  const env = { ...process.env, CEPH_CONF: cfg };
  const run = async (cmd: string, args: string[], timeout = 60_000) =>
    (await exec(cmd, ['-c', cfg, ...args], { env, timeout })).stdout;
  const pids = () =>
    fs
      .readdirSync(path.join(dir, 'run'))
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(fs.readFileSync(path.join(dir, 'run', f), 'utf8').trim()))
      .filter((p) => p > 0);
  const stop = async () => {
    const ps = pids();
    for (const p of ps) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && ps.some((p) => alive(p))) await new Promise((r) => setTimeout(r, 100));
    for (const p of ps) if (alive(p)) process.kill(p, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const monmap = path.join(dir, 'monmap');
    await exec('monmaptool', [
      '--create',
      '--clobber',
      '--fsid',
      fsid,
      '--addv',
      'a',
      `[v1:127.0.0.1:${monPort}]`,
      monmap,
    ]);
    await run('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap]);
    await run('ceph-mon', ['-i', 'a']); // daemonises once listening
    await run('ceph-mgr', ['-i', 'x']);
    const osd = (await run('ceph', ['osd', 'create'])).trim();
    fs.mkdirSync(path.join(dir, 'osd', osd));
    await run('ceph-osd', ['-i', osd, '--mkfs']);
    await run('ceph-osd', ['-i', osd]);
    await run('radosgw', ['-n', 'client.rgw']);
    const accessKeyId = `AK${crypto.randomBytes(9).toString('hex').toUpperCase()}`;
    const secretAccessKey = crypto.randomBytes(24).toString('base64url');
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const up = await fetch(endpoint).then(
        (r) => r.status < 500,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error('radosgw did not answer within 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    await run('radosgw-admin', [
      'user',
      'create',
      '--uid=coffre',
      '--display-name=coffre appliance',
      `--access-key=${accessKeyId}`,
      `--secret=${secretAccessKey}`,
    ]);
    const startMs = Math.round(performance.now() - t0);
    const rssKiB: Record<string, number> = {};
    for (const f of fs.readdirSync(path.join(dir, 'run')).filter((x) => x.endsWith('.pid')))
      rssKiB[f.replace(/\.pid$/, '')] = rssOf(path.join(dir, 'run', f));
    return { endpoint, region: 'default', accessKeyId, secretAccessKey, startMs, rssKiB, stop };
  } catch (e) {
    const logs = fs.existsSync(path.join(dir, 'log'))
      ? fs
          .readdirSync(path.join(dir, 'log'))
          .map((f) => `${f}: ${fs.readFileSync(path.join(dir, 'log', f), 'utf8').slice(-400)}`)
          .join('\n')
      : '';
    await stop();
    throw new Error(`the test Ceph cluster did not start: ${(e as Error).message}\n${logs}`, { cause: e });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
