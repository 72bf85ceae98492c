import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as OTPAuth from 'otpauth';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openAppliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { ctx, fieldScope } from '../src/vault/core.js';

/**
 * `npm run bench -- vault`, on loopback over HTTPS, in one run:
 * - a 1 GiB upload and download through Coffre (`coffre serve` in its own process; its peak RSS);
 * - (a) a durable raw disk write of the same size: `dd conv=fdatasync`;
 * - (b) the same size served by a plain Fastify HTTPS static route (no encryption at rest), in its
 *   own process like Coffre (bench/_vault-peer.ts);
 * - (c) for reference, the same size uploaded over the same HTTPS to a plain route that writes it
 *   durably, without hashing or encryption: what the transport alone allows on this machine;
 * - listing and search in one workspace of 100,000 documents (names and tags decrypted in memory).
 * Targets (issue 5): upload ≥ 0.6 × dd, download ≥ 0.7 × the static route.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
/** VAULT_BENCH_CLI: another build's CLI (e.g. an older commit's), to compare builds with the same bench */
const CLI = process.env.VAULT_BENCH_CLI ?? path.resolve(here, '../src/cli/main.js');
const MiB = 1024 * 1024;
const SIZE = Number(process.env.VAULT_BENCH_BYTES ?? 1024 * MiB);
const DOCS = Number(process.env.VAULT_BENCH_DOCS ?? 100_000);
/** each transfer (and dd) is repeated; the best of each is compared (the machine is shared) */
const REPEAT = Math.max(1, Number(process.env.VAULT_BENCH_REPEAT ?? 3));

/** Runs `f` REPEAT times; the seconds of each run, the fastest first in `best`. */
async function repeated(f: () => Promise<void>): Promise<{ best: number; runs: number[] }> {
  const runs: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    await f();
    runs.push((performance.now() - t) / 1000);
  }
  return { best: Math.min(...runs), runs };
}
const run = promisify(execFile);

/**
 * A cheap generated stream (no fixture on disk): 16 distinct random 1 MiB blocks, sent in turn.
 * The blocks are never modified, so each is pushed as is (no copy per MiB: the client is the
 * load generator, not what is measured, and it shares the machine's two cores with the server).
 */
function content(size: number): Readable {
  const blocks = Array.from({ length: 16 }, () => crypto.randomBytes(MiB));
  let pos = 0;
  let i = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (pos >= size) return void this.push(null);
      const n = Math.min(MiB, size - pos);
      const b = blocks[i++ % blocks.length]!;
      pos += n;
      this.push(n === MiB ? b : b.subarray(0, n));
    },
  });
}
const sink = () => new Writable({ highWaterMark: MiB, write: (_c, _e, cb) => cb() });

async function cli(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // the verb only: arguments may hold an enrolment link
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`coffre ${args.slice(0, 2).join(' ')}: ${err}`))));
    c.stdin.end(input ?? '');
  });
}
let env: Record<string, string> = {};

function serve(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /"event":"appliance.started","url":"([^"]+)"/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${out}`)));
  });
}
const stop = (c: ChildProcess) =>
  new Promise<void>((r) => {
    if (c.exitCode !== null) return r();
    c.removeAllListeners('exit');
    c.once('exit', () => r());
    c.kill('SIGTERM');
  });
/** CPU seconds (user + system, all threads) a process used so far */
const cpuSeconds = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 }; // utime, stime in clock ticks (USER_HZ = 100)
};
const memory = (pid: number) => {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};

function request(url: string, ca: string, method: string, p: string, token: string | undefined, body?: Readable | string, size?: number, extra: Record<string, string> = {}): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const type = typeof body === 'string' ? { 'content-type': 'application/json' } : body ? { 'content-type': 'application/octet-stream', 'content-length': String(size) } : {};
    const req = https.request(
      { host: u.hostname, port: u.port, servername: 'localhost', ca, method, path: p, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...type, ...extra } },
      (res) => {
        let bytes = 0;
        let text = '';
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          if (text.length < 100_000) text += d.toString('latin1');
        });
        res.on('end', () => resolve({ status: res.statusCode!, bytes, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (typeof body === 'string') req.end(body);
    else if (body) body.pipe(req);
    else req.end();
  });
}

const rate = (bytes: number, s: number) => Math.round((bytes / MiB / s) * 10) / 10;
/** the 1-minute load average (2 cores are shared): reported with every figure */
const load = () => Math.round(os.loadavg()[0]! * 100) / 100;

export default async function bench(): Promise<Record<string, unknown>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-vault-'));
  const dataDir = path.join(root, 'data');
  const out: Record<string, unknown> = { bytes: SIZE };
  const children: ChildProcess[] = [];
  try {
    // (a) durable raw write
    const loads: Record<string, number> = { beforeDd: load() };
    out.load1 = loads;
    const dd = path.join(root, 'dd.bin');
    const ddT = await repeated(async () => {
      await run('dd', ['if=/dev/zero', `of=${dd}`, 'bs=1M', `count=${Math.round(SIZE / MiB)}`, 'conv=fdatasync', 'status=none']);
      fs.rmSync(dd, { force: true });
    });
    const ddS = ddT.best;
    out.ddFdatasyncMiBs = rate(SIZE, ddS);

    // (b) a plain Fastify HTTPS static route serving the same size, no encryption at rest
    const init = JSON.parse(await cli(['init', '--data-dir', dataDir, '--json'])) as { caFile: string };
    const ca = fs.readFileSync(init.caFile, 'utf8');
    const plain = path.join(root, 'static');
    fs.mkdirSync(plain);
    await pipeline(content(SIZE), fs.createWriteStream(path.join(plain, 'file.bin')));
    fs.rmSync(dd, { force: true });
    const peer = spawn(process.execPath, [path.join(here, '_vault-peer.js'), root, path.join(dataDir, 'tls', 'cert.pem'), path.join(dataDir, 'tls', 'key.pem')], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(peer);
    const peerPort = await new Promise<number>((resolve, reject) => {
      let o = '';
      peer.stdout!.on('data', (d: Buffer) => {
        o += d.toString();
        const m = /\{"port":(\d+)\}/.exec(o);
        if (m) resolve(Number(m[1]));
      });
      peer.on('exit', (c) => reject(new Error(`peer server exited ${c}`)));
    });
    const stUrl = `https://127.0.0.1:${peerPort}`;
    loads.beforeStatic = load();
    const staticT = await repeated(async () => {
      const s1 = await request(stUrl, ca, 'GET', '/file.bin', undefined);
      if (s1.bytes !== SIZE) throw new Error('static route: short read');
    });
    const staticS = staticT.best;
    out.staticDownloadMiBs = rate(SIZE, staticS);
    loads.beforePlainUpload = load();
    const plainT = await repeated(async () => {
      const p1 = await request(stUrl, ca, 'POST', '/upload', undefined, content(SIZE), SIZE);
      if (p1.status !== 201 || (JSON.parse(p1.text) as { bytes: number }).bytes !== SIZE) throw new Error(`plain upload: ${p1.status} ${p1.text}`);
    });
    const plainUpS = plainT.best;
    out.plainDurableUploadMiBs = rate(SIZE, plainUpS);
    await stop(peer);
    fs.rmSync(plain, { recursive: true, force: true });

    // Coffre: user, token, workspace through the real CLI and API
    let server = await serve(dataDir);
    children.push(server.child);
    env = { COFFRE_URL: server.url, COFFRE_CA: init.caFile };
    const inv = JSON.parse(await cli(['user', 'invite', 'bench', '--email', 'bench@example.test', '--role', 'member', '--data-dir', dataDir, '--json'])) as { enrolUrl: string; id: string };
    const password = `Tangerine-Ladder-${crypto.randomBytes(6).toString('hex')}-Q7`;
    const enrolled = JSON.parse(await cli(['user', 'enrol', inv.enrolUrl, '--password-stdin', '--json'], `${password}\n`)) as { totp?: { secret: string } };
    // every role has a second factor by default: the code is the second line on stdin
    const code = enrolled.totp ? OTPAuth.TOTP.generate({ secret: OTPAuth.Secret.fromBase32(enrolled.totp.secret), algorithm: 'SHA1', digits: 6, period: 30 }) : '';
    const token = (JSON.parse(await cli(['login', '--username', 'bench', '--password-stdin', '--json'], `${password}\n${code}\n`)) as { token: string }).token;
    env.COFFRE_TOKEN = token;
    const ws = (JSON.parse(await cli(['workspace', 'create', 'Bench', '--json'])) as { id: string }).id;

    const pid = server.child.pid!;
    const before = memory(pid).rss;
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    loads.beforeUpload = load();
    let id: string | undefined;
    const upCpu: { server: number; serverSystem: number; client: number }[] = [];
    const upT = await repeated(async () => {
      const s0 = cpuSeconds(pid);
      const c0 = process.cpuUsage();
      // the first upload creates the document, the next ones add versions to it
      const p = id === undefined ? `/api/v1/workspaces/${ws}/documents` : `/api/v1/documents/${id}/versions`;
      const up = await request(server.url, ca, 'POST', p, token, content(SIZE), SIZE, { 'content-disposition': 'attachment; filename=big.bin' });
      if (up.status !== 201) throw new Error(`upload: ${up.status} ${up.text}`);
      id = (JSON.parse(up.text) as { id: string }).id;
      const c = process.cpuUsage(c0);
      const s1 = cpuSeconds(pid);
      upCpu.push({ server: s1.user + s1.system - s0.user - s0.system, serverSystem: s1.system - s0.system, client: (c.user + c.system) / 1e6 });
    });
    const upS = upT.best;
    const upPeak = memory(pid).peak;
    loads.beforeDownload = load();
    const downT = await repeated(async () => {
      const down = await request(server.url, ca, 'GET', `/api/v1/documents/${id}/content`, token);
      if (down.bytes !== SIZE) throw new Error('download: short read');
    });
    const downS = downT.best;
    const peak = memory(pid).peak;
    const all = (t: { runs: number[] }) => t.runs.map((s) => rate(SIZE, s));
    // what the upload costs in CPU: the server (event loop, sealing worker, kernel time of its
    // writes) and this process as the HTTPS client, per GiB; both share the machine's cores
    const gib = SIZE / 1024 ** 3;
    const cpu = upCpu[upT.runs.indexOf(upS)]!;
    const cores = os.availableParallelism();
    out.uploadCpu = {
      serverCpuSecondsPerGiB: Math.round((cpu.server / gib) * 100) / 100,
      serverKernelCpuSecondsPerGiB: Math.round((cpu.serverSystem / gib) * 100) / 100,
      clientCpuSecondsPerGiB: Math.round((cpu.client / gib) * 100) / 100,
      cores,
      cpuBoundMiBs: Math.round((cores * 1024) / ((cpu.server + cpu.client) / gib)),
    };
    out.runsMiBs = { dd: all(ddT), staticDownload: all(staticT), plainDurableUpload: all(plainT), upload: all(upT), download: all(downT) };
    out.coffre = {
      uploadMiBs: rate(SIZE, upS),
      downloadMiBs: rate(SIZE, downS),
      uploadVsDd: Math.round((upS > 0 ? ddS / upS : 0) * 100) / 100,
      downloadVsStatic: Math.round((downS > 0 ? staticS / downS : 0) * 100) / 100,
      uploadVsPlainDurableUpload: Math.round((upS > 0 ? plainUpS / upS : 0) * 100) / 100,
      serverRssBeforeMB: Math.round(before / 1e6),
      serverPeakRssDuringUploadMB: Math.round(upPeak / 1e6),
      serverPeakRssDuringTransfersMB: Math.round(peak / 1e6),
    };
    out.targets = { uploadVsDd: '>= 0.6', downloadVsStatic: '>= 0.7' };
    await stop(server.child);

    // listing and search at DOCS documents in one workspace
    const a = await openAppliance({ dataDir, log: createLogger({ level: 'silent', destination: 'stderr' }), migrate: false });
    let insertS = 0;
    try {
      const t4 = performance.now();
      const now = Date.now();
      for (let i = 0; i < DOCS; i += 1000) {
        const rows = await Promise.all(
          Array.from({ length: Math.min(1000, DOCS - i) }, async (_, k) => {
            const n = i + k;
            const did = crypto.randomUUID();
            return {
              id: did,
              workspace_id: ws,
              folder_id: null,
              name_enc: await a.keys.fields.encrypt(fieldScope(ws), n % 1000 === 0 ? `Board minutes ${n}.pdf` : `document-${n}.txt`, ctx.docName(did)),
              description_enc: null,
              tags_enc: n % 100 === 0 ? await a.keys.fields.encrypt(fieldScope(ws), JSON.stringify(['legal', `batch-${n % 7}`]), ctx.docTags(did)) : null,
              head_version: 1,
              head_size: 1,
              created_at: now + n,
              created_by: `user:${inv.id}`,
              updated_at: now + n,
              trashed_at: null,
              trashed_by: null,
              purged_at: null,
            };
          }),
        );
        await a.db.db.insertInto('vault_documents').values(rows).execute();
      }
      insertS = (performance.now() - t4) / 1000;
    } finally {
      await a.close();
    }
    server = await serve(dataDir);
    children.push(server.child);
    const lpid = server.child.pid!;
    const timed = async (p: string, search?: Record<string, string>) => {
      const t = performance.now();
      const r = search ? await request(server.url, ca, 'POST', `${p}/search`, token, JSON.stringify(search)) : await request(server.url, ca, 'GET', p, token);
      if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text.slice(0, 200)}`);
      return { ms: Math.round(performance.now() - t), json: JSON.parse(r.text) as { total: number | null; items: unknown[] } };
    };
    const cold = await timed(`/api/v1/workspaces/${ws}/documents`, { q: 'minutes' });
    const warm = await timed(`/api/v1/workspaces/${ws}/documents`, { q: 'minutes' });
    const tag = await timed(`/api/v1/workspaces/${ws}/documents`, { tag: 'legal' });
    const page = await timed(`/api/v1/workspaces/${ws}/documents?limit=100`);
    out.listing = {
      documents: DOCS + 1,
      insertDocsPerS: Math.round(DOCS / insertS),
      searchByNameColdMs: cold.ms,
      searchByNameWarmMs: warm.ms,
      searchMatches: warm.json.total,
      searchByTagMs: tag.ms,
      tagMatches: tag.json.total,
      firstPageOf100Ms: page.ms,
      serverPeakRssMB: Math.round(memory(lpid).peak / 1e6),
    };
    await stop(server.child);
  } finally {
    for (const c of children) await stop(c);
    fs.rmSync(root, { recursive: true, force: true });
  }
  return out;
}
