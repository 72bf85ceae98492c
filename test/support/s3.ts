/**
 * A real S3 server for tests: Ceph's RADOS Gateway from Debian's packages (ceph-mon, ceph-osd,
 * radosgw; ./scripts/test installs them), as a throwaway single-node cluster in a temp dir: one
 * monitor on 127.0.0.1, one BlueStore OSD on a sparse file, radosgw (beast) on loopback. Cephx is
 * off (loopback only, a temp cluster); S3 requests are still signed (SigV4) with the keys of an RGW
 * user created here. Object Lock (compliance and governance) is RGW's own. A test that needs it and
 * cannot start it fails; it never skips.
 *
 * No manager daemon: it serves metrics, the dashboard and orchestration, nothing on the S3 path,
 * and with its Python modules it held 300 MB of the cluster's 440 MB and seconds of its start-up.
 * A 50 ms Paxos proposal interval (1 s by default) commits the map changes of start-up (the OSD,
 * radosgw's pools) without waiting; the OSD is placed in the CRUSH map here, before it boots.
 *
 * Each start attempt is a cluster of its own: a fresh directory, a fresh fsid, its own ports (the
 * monitor's, radosgw's, and a private range for the OSD's messengers), chosen below the kernel's
 * ephemeral range so that no outgoing connection of another process takes one between the check
 * and the bind. The daemons run in the foreground as children of this process, so their pids are
 * known from the start; before the next attempt (and at stop) every one of them has exited and none
 * of the attempt's ports is still listened on. After the monitor starts, the listener on its port
 * must be that monitor's own socket, and the monitor and the OSD must report this attempt's fsid
 * on their admin sockets: a daemon of any other cluster on the machine is named, never joined.
 *
 * A client that has just connected may send its first monitor command before the monitor's map has
 * reached it, with a zero fsid, which the monitor refuses ("wrong fsid", EPERM): the OSD then fails
 * to boot, or the ceph CLI exits 1. So the OSD sends no command while it boots (it is placed in the
 * CRUSH map beforehand), readiness is read from admin sockets, and the two CLI commands are retried
 * on that refusal only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import crypto from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TestS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** how long the cluster took to answer S3 requests (the successful attempt), and its daemons' resident memory then */
  startMs: number;
  rssKiB: Record<string, number>;
  /** attempts it took (1 when the first one started) */
  attempts: number;
  /** milliseconds from the start of the successful attempt to the end of each step */
  stepsMs: Record<string, number>;
  stop(): Promise<void>;
}

const DAEMONS = ['ceph-mon', 'ceph-osd', 'radosgw'];
const ATTEMPTS = 3;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
/** the messengers of the manager and the OSD bind ports in this many from the attempt's base */
const MSGR_PORTS = 24;

function checkInstalled(): void {
  const missing = [...DAEMONS, 'ceph', 'radosgw-admin', 'monmaptool'].filter(
    (b) => !['/usr/bin', '/usr/sbin'].some((d) => fs.existsSync(path.join(d, b))),
  );
  if (missing.length)
    throw new Error(
      `Ceph is not installed (${missing.join(', ')} missing); ./scripts/test installs ceph-mon ceph-osd radosgw`,
    );
}

// ---- ports ---------------------------------------------------------------------------------

/** TCP ports in LISTEN state on this machine (any address, IPv4 and IPv6), with their socket inodes */
function listeners(): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A') continue;
      const port = parseInt(cols[1]!.split(':')[1]!, 16);
      const inodes = out.get(port) ?? new Set<string>();
      inodes.add(cols[9]!);
      out.set(port, inodes);
    }
  }
  return out;
}

const canBind = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* default below */
  }
  return [32768, 60999];
}

/**
 * Ports for one attempt: the monitor's, radosgw's and a block for the messengers, all free and
 * out of the ephemeral range (a connect() elsewhere never picks them), at a random place so that
 * clusters started at once by other test runs rarely meet; a meeting is caught after the bind.
 */
async function choosePorts(): Promise<{ mon: number; rgw: number; msgrMin: number; msgrMax: number }> {
  const [ephLo] = ephemeralRange();
  const lo = 20_000;
  const hi = Math.min(ephLo, 32_768) - (MSGR_PORTS + 2);
  for (let tries = 0; tries < 50; tries++) {
    const base = lo + crypto.randomInt(hi - lo);
    const ports = Array.from({ length: MSGR_PORTS + 2 }, (_, i) => base + i);
    const busy = listeners();
    if (ports.some((p) => busy.has(p))) continue;
    let ok = true;
    for (const p of ports.slice(0, 2)) if (!(await canBind(p))) ok = false;
    if (!ok) continue;
    return { mon: base, rgw: base + 1, msgrMin: base + 2, msgrMax: base + 1 + MSGR_PORTS };
  }
  throw new Error('test S3: no free block of ports between 20000 and the ephemeral range');
}

// ---- processes -----------------------------------------------------------------------------

/** every daemon this process started and has not yet seen exit: killed if the process exits first */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
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

/** pids of processes whose command line names this attempt's configuration file (forks included) */
function pidsNaming(cfg: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(cfg)) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

function ownsSocket(pid: number, inodes: Set<string>): boolean {
  try {
    return fs
      .readdirSync(`/proc/${pid}/fd`)
      .some((fd) => inodes.has(/^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`))?.[1] ?? ''));
  } catch {
    return false;
  }
}
function safeReadlink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
}

function rssOf(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// ---- the cluster ---------------------------------------------------------------------------

function conf(dir: string, fsid: string, p: Awaited<ReturnType<typeof choosePorts>>): string {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${p.mon}
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind port min = ${p.msgrMin}
ms bind port max = ${p.msgrMax}
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
paxos propose interval = 0.05
osd crush chooseleaf type = 0
[mon]
mon data = ${dir}/mon/$id
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
osd crush update on start = false
osd class update on start = false
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${p.rgw}
rgw data = ${dir}/rgw
rgw thread pool size = 32
`;
}

/** a start-up step that failed, with what it saw (the message is the whole report) */
class StartError extends Error {}

/** One attempt's cluster: its directory, fsid, ports and daemons; stop() leaves nothing of it running or bound. */
class Attempt {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-rgw-'));
  readonly cfg = path.join(this.dir, 'ceph.conf');
  readonly fsid = crypto.randomUUID();
  readonly daemons = new Map<string, ChildProcess>();
  readonly exits = new Map<string, string>();
  private stopped = false;
  readonly ports: Awaited<ReturnType<typeof choosePorts>>;

  constructor(ports: Awaited<ReturnType<typeof choosePorts>>) {
    this.ports = ports;
    for (const d of ['mon/a', 'osd', 'rgw', 'run', 'log']) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    fs.writeFileSync(this.cfg, conf(this.dir, this.fsid, ports));
  }

  private get env() {
    return { ...process.env, CEPH_CONF: this.cfg, CEPH_ARGS: '' };
  }

  /** a one-shot command (mkfs, the ceph CLI, radosgw-admin): its output, or a StartError with its stderr */
  async run(cmd: string, args: string[], timeout = 60_000): Promise<string> {
    try {
      return (await exec(cmd, ['-c', this.cfg, ...args], { env: this.env, timeout })).stdout;
    } catch (e) {
      const x = e as Error & { stderr?: string; killed?: boolean; code?: number | string };
      const why = x.killed ? `timed out after ${timeout / 1000} s` : `exit ${x.code}`;
      throw new StartError(
        `${cmd} ${args.join(' ')}: ${why}: ${(x.stderr ?? x.message).trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
  }

  /**
   * A monitor command through the ceph CLI. A client that has just connected can send its first
   * command before the monitor's map reached it, with a zero fsid, which the monitor refuses
   * ("wrong fsid", EPERM); such a refusal is sent again (a fresh client), anything else fails.
   */
  async monCommand(args: string[]): Promise<string> {
    for (let i = 1; ; i++) {
      try {
        return await this.run('ceph', ['--connect-timeout', '30', ...args]);
      } catch (e) {
        if (i >= 5 || !/EPERM|wrong fsid/.test((e as Error).message)) throw e;
        await sleep(200);
      }
    }
  }

  /** a command on a daemon's admin socket (the unix socket in run/), without the ceph CLI: its JSON answer */
  asok(id: string, prefix: string): Promise<unknown> {
    const sock = path.join(this.dir, 'run', `${id}.asok`);
    return new Promise((resolve, reject) => {
      const c = net.createConnection(sock);
      const parts: Buffer[] = [];
      c.setTimeout(10_000, () => c.destroy(new Error(`${id}.asok: no answer within 10 s`)));
      c.on('connect', () => c.write(`${JSON.stringify({ prefix, format: 'json' })}\0`));
      c.on('data', (d: Buffer) => parts.push(d));
      c.on('error', reject);
      c.on('close', () => {
        const all = Buffer.concat(parts);
        if (all.length < 4) return reject(new Error(`${id}.asok: short answer`));
        const len = all.readUInt32BE(0);
        try {
          resolve(JSON.parse(all.subarray(4, 4 + len).toString('utf8')));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  /**
   * a daemon in the foreground, as this process's child (its pid known at once); setpriv makes the
   * kernel kill it if this process dies without stopping it (a test worker killed at a timeout)
   */
  daemon(name: string, cmd: string, args: string[]): ChildProcess {
    const errFile = fs.openSync(path.join(this.dir, 'log', `${name}.stderr`), 'a');
    const argv = [cmd, '-f', '-c', this.cfg, ...args];
    const [bin, ...rest] = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv;
    const child = spawn(bin!, rest, { env: this.env, stdio: ['ignore', errFile, errFile] });
    fs.closeSync(errFile);
    track(child);
    child.once('exit', (code, signal) => this.exits.set(name, signal ? `killed by ${signal}` : `exit ${code}`));
    child.once('error', (e) => this.exits.set(name, `could not run: ${e.message}`));
    this.daemons.set(name, child);
    return child;
  }

  /** throws if a daemon this attempt started has exited */
  checkAlive(): void {
    for (const [name, how] of this.exits)
      if (!this.stopped) throw new StartError(`${name} ended (${how}) during start-up${this.logHint(name)}`);
  }

  /** waits for cond(), failing as soon as a daemon dies or after timeoutMs */
  async until(what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      this.checkAlive();
      const ok = await cond().catch((e: unknown) => {
        if (e instanceof StartError) throw e;
        last = (e as Error).message;
        return false;
      });
      if (ok) return;
      if (Date.now() > deadline)
        throw new StartError(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last: ${last})` : ''}`);
      await sleep(250);
    }
  }

  /** the lines of a daemon's log that say what went wrong (or its last lines) */
  logHint(name: string): string {
    const read = (f: string) => {
      try {
        return fs.readFileSync(path.join(this.dir, 'log', f), 'utf8');
      } catch {
        return '';
      }
    };
    const id = { mon: 'mon.a', osd: 'osd.0', rgw: 'client.rgw' }[name] ?? name;
    const lines = `${read(`${name}.stderr`)}\n${read(`${id}.log`)}`.split('\n').filter((l) => l.trim());
    // Ceph logs errors at level -1 ("<time> <thread> -1 <message>"); stderr has what came before logging
    const bad = lines.filter(
      (l) => /^\S+ \S+ -1 /.test(l) || (/error|fail|unable|abort/i.test(l) && !/^\S+ \S+ +\d /.test(l)),
    );
    const pick = (bad.length ? bad : lines).slice(-4).map((l) => l.slice(0, 300));
    return pick.length ? `; its log: ${pick.join(' | ')}` : '';
  }

  /** the listener on port is a socket of daemon name, not of another process */
  listenerIsOurs(port: number, name: string): boolean | 'other' {
    const inodes = listeners().get(port);
    if (!inodes) return false;
    const pid = this.daemons.get(name)?.pid;
    return pid !== undefined && ownsSocket(pid, inodes) ? true : 'other';
  }

  /**
   * Every daemon of this attempt has exited and none of its ports is listened on. A throwaway
   * cluster needs no clean shutdown: KILL at once (on TERM the OSD waits seconds for a monitor
   * being stopped at the same time).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const kill = (p: number) => {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const pids = new Set<number>([...this.daemons.values()].map((c) => c.pid ?? 0).filter((p) => p > 0));
    let deadline = Date.now() + 10_000;
    for (;;) {
      // this attempt's daemons, and anything else started with its configuration (a CLI call, a fork)
      for (const p of pidsNaming(this.cfg)) pids.add(p);
      const left = [...pids].filter(alive);
      if (!left.length) break;
      if (Date.now() > deadline)
        throw new Error(`test S3: pids ${left.join(', ')} of ${this.dir} still alive after SIGKILL`);
      left.forEach(kill);
      await sleep(50);
    }
    const ours = [this.ports.mon, this.ports.rgw];
    for (let p = this.ports.msgrMin; p <= this.ports.msgrMax; p++) ours.push(p);
    deadline = Date.now() + 5_000;
    // a listener that outlives every daemon of this attempt is someone else's: reported, not waited for
    const held = () => {
      const busy = listeners();
      return ours.filter((p) => busy.has(p));
    };
    while (held().length && Date.now() < deadline) await sleep(100);
    const still = held();
    if (still.length)
      process.stderr.write(`test S3: ports ${still.join(', ')} still listened on after ${this.dir} stopped\n`);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts a cluster; one that fails to start on a loaded machine is stopped completely and a fresh one tried (3 attempts in all). */
export async function startS3(): Promise<TestS3> {
  checkInstalled();
  const failures: string[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const a = new Attempt(await choosePorts());
    try {
      const s3 = await startOnce(a);
      return { ...s3, attempts: attempt };
    } catch (e) {
      const msg = e instanceof StartError ? e.message : ((e as Error).stack ?? String(e));
      failures.push(`attempt ${attempt} (mon :${a.ports.mon}, rgw :${a.ports.rgw}, fsid ${a.fsid}): ${msg}`);
      await a.stop();
      if (attempt < ATTEMPTS) process.stderr.write(`test S3: start ${attempt} failed, retrying: ${msg}\n`);
    }
  }
  throw new Error(`the test Ceph cluster did not start in ${ATTEMPTS} attempts:\n${failures.join('\n')}`);
}

async function startOnce(a: Attempt): Promise<Omit<TestS3, 'attempts'>> {
  const t0 = performance.now();
  const stepsMs: Record<string, number> = {};
  const step = (name: string) => (stepsMs[name] = Math.round(performance.now() - t0));
  const { ports, dir, fsid } = a;
  const monmap = path.join(dir, 'monmap');
  try {
    await exec('monmaptool', [
      '--create',
      '--clobber',
      '--fsid',
      fsid,
      '--addv',
      'a',
      `[v1:127.0.0.1:${ports.mon}]`,
      monmap,
    ]);
  } catch (e) {
    throw new StartError(`monmaptool: ${(e as Error).message}`);
  }
  await a.run('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap]);

  a.daemon('mon', 'ceph-mon', ['-i', 'a']);
  await a.until(`ceph-mon listening on 127.0.0.1:${ports.mon}`, 60_000, async () => {
    const who = a.listenerIsOurs(ports.mon, 'mon');
    if (who === 'other')
      throw new StartError(
        `port ${ports.mon} is held by another process, not this attempt's ceph-mon${a.logHint('mon')}`,
      );
    return who;
  });
  await a.until('ceph-mon leading its one-monitor quorum', 60_000, async () => {
    const st = (await a.asok('mon.a', 'mon_status')) as { state: string; monmap: { fsid: string } };
    if (st.monmap.fsid !== fsid)
      throw new StartError(
        `ceph-mon on 127.0.0.1:${ports.mon} runs cluster ${st.monmap.fsid}, not this attempt's ${fsid}`,
      );
    return st.state === 'leader';
  });
  step('mon');

  // the OSD's store is made while the monitor registers it and places it in the CRUSH map (here,
  // so that the OSD sends no command of its own while it boots)
  const osd = '0';
  fs.mkdirSync(path.join(dir, 'osd', osd));
  await Promise.all([
    a.run('ceph-osd', ['-i', osd, '--mkfs'], 120_000).then(() => step('mkfs')),
    (async () => {
      const id = (await a.monCommand(['osd', 'create'])).trim();
      if (id !== osd) throw new StartError(`ceph osd create answered ${JSON.stringify(id)} in a fresh cluster, not 0`);
      await a.monCommand(['osd', 'crush', 'add', `osd.${osd}`, '0.01', 'host=local', 'root=default']);
      step('crush');
    })(),
  ]);
  a.daemon('osd', 'ceph-osd', ['-i', osd]);
  await a.until('ceph-osd booted (state active)', 120_000, async () => {
    const st = (await a.asok('osd.0', 'status')) as { cluster_fsid: string; state: string };
    if (st.cluster_fsid !== fsid) throw new StartError(`ceph-osd joined cluster ${st.cluster_fsid}, not ${fsid}`);
    return st.state === 'active';
  });
  step('osd');

  a.daemon('rgw', 'radosgw', ['-n', 'client.rgw']);
  const endpoint = `http://127.0.0.1:${ports.rgw}`;
  await a.until(`radosgw answering on ${endpoint}`, 120_000, async () => {
    const who = a.listenerIsOurs(ports.rgw, 'rgw');
    if (who === 'other')
      throw new StartError(`port ${ports.rgw} is held by another process, not this attempt's radosgw`);
    if (!who) return false;
    const r = await fetch(endpoint, { signal: AbortSignal.timeout(5_000) });
    return r.status < 500;
  });
  step('rgw');

  const accessKeyId = `AK${crypto.randomBytes(9).toString('hex').toUpperCase()}`;
  const secretAccessKey = crypto.randomBytes(24).toString('base64url');
  await a.run('radosgw-admin', [
    'user',
    'create',
    '--uid=coffre',
    '--display-name=coffre appliance',
    `--access-key=${accessKeyId}`,
    `--secret=${secretAccessKey}`,
  ]);
  const startMs = step('user');
  const rssKiB: Record<string, number> = {};
  for (const [name, child] of a.daemons) rssKiB[name] = rssOf(child.pid);
  return { endpoint, region: 'default', accessKeyId, secretAccessKey, startMs, stepsMs, rssKiB, stop: () => a.stop() };
}
