import { execFile, type ChildProcess } from 'node:child_process';
import * as OTPAuth from 'otpauth';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { openAppliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { seedDocuments } from './_listing-seed.js';
import {
  MiB,
  atMost,
  cli,
  cpuSeconds,
  load,
  median,
  memory,
  peer,
  randomFile,
  rate,
  ratio,
  request,
  resetPeak,
  round2,
  serve,
  source,
  stop,
  type Env,
} from './_vault-lib.js';

/**
 * `npm run bench -- vault`: Coffre against its peers on loopback HTTPS, in one run, on the same
 * incompressible bytes (a file of CSPRNG output, read from the page cache by every client):
 * - durableWrite: `dd` of that file with `conv=fdatasync` (what the disk takes durably);
 * - plainUpload: the same bytes over HTTPS to a plain Fastify route that writes them durably,
 *   without hashing or encryption (bench/_vault-peer.ts, its own process);
 * - staticDownload: the same file from a plain Fastify static route (same process);
 * - upload / download: through `coffre serve` (own process), the API called by this process;
 * - static8 / download8: 8 concurrent downloads of a smaller file (VAULT_BENCH_CONC_BYTES) from
 *   each, and the server's CPU seconds over wall seconds (how many cores it kept busy);
 * - cliPut / cliGet: `coffre doc put` / `doc get` (a process each, digest check and fsync included);
 * - listing and search in one workspace of VAULT_BENCH_DOCS documents.
 * The measures run interleaved, VAULT_BENCH_REPEAT rounds (each round runs every measure once,
 * peers next to Coffre), so drifting load from other users of the machine hits both sides of a
 * ratio alike; ratios are of the best of each, and the median of the per-round ratios is shown too.
 * VAULT_BENCH_PARTS=transfer,listing selects parts.
 */
const SIZE = Number(process.env.VAULT_BENCH_BYTES ?? 1024 * MiB);
const CONC_SIZE = Number(process.env.VAULT_BENCH_CONC_BYTES ?? 256 * MiB);
const CONC = 8;
const DOCS = Number(process.env.VAULT_BENCH_DOCS ?? 100_000);
const REPEAT = Math.max(1, Number(process.env.VAULT_BENCH_REPEAT ?? 3));
const PARTS = new Set((process.env.VAULT_BENCH_PARTS ?? 'transfer,listing').split(','));
const run = promisify(execFile);

interface Appliance {
  root: string;
  dataDir: string;
  ca: string;
  caFile: string;
  url: string;
  token: string;
  ws: string;
  userId: string;
  server: ChildProcess;
  env: Env;
}

/** init, serve, a user with a token and a workspace, all through the real CLI and API */
async function appliance(root: string, children: ChildProcess[]): Promise<Appliance> {
  const dataDir = path.join(root, 'data');
  const init = JSON.parse(await cli(['init', '--data-dir', dataDir, '--json'], {})) as { caFile: string };
  const ca = fs.readFileSync(init.caFile, 'utf8');
  const server = await serve(dataDir);
  children.push(server.child);
  const env: Env = { COFFRE_URL: server.url, COFFRE_CA: init.caFile };
  const inv = JSON.parse(
    await cli(
      ['user', 'invite', 'bench', '--email', 'bench@example.test', '--role', 'member', '--data-dir', dataDir, '--json'],
      env,
    ),
  ) as { enrolUrl: string; id: string };
  const password = `Tangerine-Ladder-${crypto.randomBytes(6).toString('hex')}-Q7`;
  const enrolled = JSON.parse(
    await cli(['user', 'enrol', inv.enrolUrl, '--password-stdin', '--json'], env, `${password}\n`),
  ) as { totp?: { secret: string } };
  // every role has a second factor by default: the code is the second line on stdin
  const code = enrolled.totp
    ? OTPAuth.TOTP.generate({
        secret: OTPAuth.Secret.fromBase32(enrolled.totp.secret),
        algorithm: 'SHA1',
        digits: 6,
        period: 30,
      })
    : '';
  const token = (
    JSON.parse(
      await cli(['login', '--username', 'bench', '--password-stdin', '--json'], env, `${password}\n${code}\n`),
    ) as { token: string }
  ).token;
  env.COFFRE_TOKEN = token;
  const ws = (JSON.parse(await cli(['workspace', 'create', 'Bench', '--json'], env)) as { id: string }).id;
  return {
    root,
    dataDir,
    ca,
    caFile: init.caFile,
    url: server.url,
    token,
    ws,
    userId: inv.id,
    server: server.child,
    env,
  };
}

/** One measure: seconds per round; `cpu`: the server's CPU seconds over each round's wall seconds. */
interface Measure {
  bytes: number;
  runs: number[];
  serverCores: number[];
}

async function transfers(a: Appliance, children: ChildProcess[]): Promise<Record<string, unknown>> {
  const { root, ca, url, token } = a;
  const big = path.join(root, 'static', 'big.bin');
  const small = path.join(root, 'static', 'small.bin');
  fs.mkdirSync(path.dirname(big), { recursive: true });
  randomFile(big, SIZE);
  randomFile(small, CONC_SIZE);
  const p = await peer(root, path.join(a.dataDir, 'tls', 'cert.pem'), path.join(a.dataDir, 'tls', 'key.pem'));
  children.push(p.child);
  const pid = a.server.pid!;
  const post = (doc: string | undefined, file: string, size: number) =>
    request(
      url,
      ca,
      'POST',
      doc === undefined ? `/api/v1/workspaces/${a.ws}/documents` : `/api/v1/documents/${doc}/versions`,
      token,
      source(file),
      size,
      { 'content-disposition': 'attachment; filename=big.bin' },
    ).then((r) => {
      if (r.status !== 201) throw new Error(`upload: ${r.status} ${r.text.slice(0, 300)}`);
      return (JSON.parse(r.text) as { id: string }).id;
    });
  const smallDoc = await post(undefined, small, CONC_SIZE);
  let bigDoc: string | undefined;
  const get = async (u: string, pth: string, tok: string | undefined, size: number) => {
    const r = await request(u, ca, 'GET', pth, tok);
    if (r.status !== 200 || r.bytes !== size) throw new Error(`GET ${pth}: ${r.status}, ${r.bytes} of ${size} bytes`);
  };
  const out = path.join(root, 'cli-get.bin');
  const measures: Record<string, { bytes: number; server: boolean; f: () => Promise<void> }> = {
    durableWrite: {
      bytes: SIZE,
      server: false,
      f: async () => {
        const dd = path.join(root, 'dd.bin');
        await run('dd', [`if=${big}`, `of=${dd}`, 'bs=1M', 'conv=fdatasync', 'status=none']);
        fs.rmSync(dd);
      },
    },
    plainUpload: {
      bytes: SIZE,
      server: false,
      f: async () => {
        const r = await request(p.url, ca, 'POST', '/upload', undefined, source(big), SIZE);
        if (r.status !== 201 || (JSON.parse(r.text) as { bytes: number }).bytes !== SIZE)
          throw new Error(`plain upload: ${r.status} ${r.text}`);
      },
    },
    // the first upload creates the document, the next ones add versions to it
    upload: { bytes: SIZE, server: true, f: async () => void (bigDoc = await post(bigDoc, big, SIZE)) },
    staticDownload: { bytes: SIZE, server: false, f: () => get(p.url, '/big.bin', undefined, SIZE) },
    download: { bytes: SIZE, server: true, f: () => get(url, `/api/v1/documents/${bigDoc}/content`, token, SIZE) },
    static8: {
      bytes: CONC * CONC_SIZE,
      server: false,
      f: async () =>
        void (await Promise.all(Array.from({ length: CONC }, () => get(p.url, '/small.bin', undefined, CONC_SIZE)))),
    },
    download8: {
      bytes: CONC * CONC_SIZE,
      server: true,
      f: async () =>
        void (await Promise.all(
          Array.from({ length: CONC }, () => get(url, `/api/v1/documents/${smallDoc}/content`, token, CONC_SIZE)),
        )),
    },
    cliPut: {
      bytes: SIZE,
      server: true,
      f: async () => void (await cli(['doc', 'put', '--document', bigDoc!, big, '--json'], a.env)),
    },
    cliGet: {
      bytes: SIZE,
      server: true,
      f: async () => {
        await cli(['doc', 'get', bigDoc!, '-o', out], a.env);
        if (fs.statSync(out).size !== SIZE) throw new Error('doc get: short file');
        fs.rmSync(out);
      },
    },
  };
  const results: Record<string, Measure> = Object.fromEntries(
    Object.entries(measures).map(([k, m]) => [k, { bytes: m.bytes, runs: [], serverCores: [] }]),
  );
  const loads: number[] = [];
  const peaks: Record<string, number> = {};
  const rssBefore = memory(pid).rss;
  for (let r = 0; r < REPEAT; r++) {
    loads.push(load());
    for (const [k, m] of Object.entries(measures)) {
      // the server's peak RSS per measure (the high-water mark is reset before each)
      resetPeak(pid);
      const c0 = cpuSeconds(pid);
      const t = performance.now();
      await m.f();
      const s = (performance.now() - t) / 1000;
      results[k]!.runs.push(s);
      if (m.server) results[k]!.serverCores.push(round2((cpuSeconds(pid) - c0) / s));
      peaks[k] = Math.max(peaks[k] ?? 0, memory(pid).peak);
    }
  }
  loads.push(load());
  const peak = Math.max(...Object.values(peaks));
  await stop(p.child);
  const best = (k: string) => Math.min(...results[k]!.runs);
  const mibs = (k: string) => rate(results[k]!.bytes, best(k));
  /** throughput ratio a/b: best against best, and the median of the rounds' own ratios */
  const vs = (a: string, b: string, min: number) => ({
    ...ratio(best(b) / best(a), min),
    medianOfRounds: round2(median(results[a]!.runs.map((s, i) => results[b]!.runs[i]! / s))),
  });
  return {
    bytes: SIZE,
    concurrentBytesEach: CONC_SIZE,
    rounds: REPEAT,
    load1: loads,
    MiBs: Object.fromEntries(Object.keys(results).map((k) => [k, mibs(k)])),
    runsMiBs: Object.fromEntries(Object.entries(results).map(([k, m]) => [k, m.runs.map((s) => rate(m.bytes, s))])),
    serverCoresBusy: Object.fromEntries(
      Object.entries(results)
        .filter(([, m]) => m.serverCores.length)
        .map(([k, m]) => [k, m.serverCores]),
    ),
    ratios: {
      uploadVsDurableWrite: vs('upload', 'durableWrite', 0.9),
      uploadVsPlainUpload: vs('upload', 'plainUpload', 0.95),
      downloadVsStatic: vs('download', 'staticDownload', 1.0),
      download8VsStatic8: vs('download8', 'static8', 0.9),
      cliPutVsDurableWrite: vs('cliPut', 'durableWrite', 0.8),
      cliGetVsDurableWrite: vs('cliGet', 'durableWrite', 0.8),
    },
    server: {
      rssBeforeMB: Math.round(rssBefore / 1e6),
      peakRssMB: atMost(Math.round(peak / 1e6), 256, 'MB'),
      peakRssMBByMeasure: Object.fromEntries(Object.entries(peaks).map(([k, v]) => [k, Math.round(v / 1e6)])),
    },
  };
}

async function listing(a: Appliance, children: ChildProcess[]): Promise<Record<string, unknown>> {
  await stop(a.server);
  const { dataDir, ws, ca, token } = a;
  const app = await openAppliance({
    dataDir,
    log: createLogger({ level: 'silent', destination: 'stderr' }),
    migrate: false,
  });
  let seed = { seconds: 0, writeSeconds: 0, indexBuildSeconds: 0 };
  try {
    const seeded = await seedDocuments(app.db, app.keys.fields, {
      workspaceId: ws,
      createdBy: `user:${a.userId}`,
      count: DOCS,
      at: Date.now(),
    });
    seed = seeded;
  } finally {
    await app.close();
  }
  const server = await serve(dataDir);
  children.push(server.child);
  const lpid = server.child.pid!;
  const timed = async (p: string, search?: Record<string, string>) => {
    const t = performance.now();
    const r = search
      ? await request(server.url, ca, 'POST', `${p}/search`, token, JSON.stringify(search))
      : await request(server.url, ca, 'GET', p, token);
    if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text.slice(0, 200)}`);
    return {
      ms: Math.round(performance.now() - t),
      json: JSON.parse(r.text) as { total: number | null; items: unknown[] },
    };
  };
  // cold: the first search after start (index key unwrapped by the HSM, pages read from disk)
  const cold = await timed(`/api/v1/workspaces/${ws}/documents`, { q: 'minutes' });
  const page = await timed(`/api/v1/workspaces/${ws}/documents?limit=100`);
  const queries = [
    'minutes',
    'board',
    'Board Minutes',
    'document-4242',
    'docu 777',
    'minutes 5000',
    'BOARD',
    'mînutes',
  ];
  const warm: number[] = [];
  const matches: Record<string, number | null> = {};
  for (let r = 0; r < 5; r++) {
    for (const q of queries) {
      const t = await timed(`/api/v1/workspaces/${ws}/documents`, { q });
      warm.push(t.ms);
      matches[q] = t.json.total;
    }
  }
  const tags: number[] = [];
  for (let r = 0; r < 10; r++)
    tags.push((await timed(`/api/v1/workspaces/${ws}/documents`, { tag: r % 2 ? 'legal' : 'batch-3' })).ms);
  const tag = await timed(`/api/v1/workspaces/${ws}/documents`, { tag: 'legal' });
  const pages: number[] = [];
  for (let r = 0; r < 10; r++) pages.push((await timed(`/api/v1/workspaces/${ws}/documents?limit=100`)).ms);
  const out = {
    documents: DOCS + 1,
    load1: load(),
    insertDocsPerS: Math.round(DOCS / seed.seconds),
    insertSeconds: {
      total: round2(seed.seconds),
      write: round2(seed.writeSeconds),
      indexBuild: round2(seed.indexBuildSeconds),
    },
    searchByNameColdMs: atMost(cold.ms, 1000, 'ms'),
    searchByNameWarmP50Ms: atMost(median(warm), 50, 'ms'),
    searchByNameWarmMaxMs: Math.max(...warm),
    searchMatches: matches,
    searchByTagP50Ms: atMost(median(tags), 50, 'ms'),
    tagMatches: tag.json.total,
    firstPageOf100ColdMs: atMost(page.ms, 50, 'ms'),
    firstPageOf100P50Ms: atMost(median(pages), 50, 'ms'),
    serverPeakRssMB: atMost(Math.round(memory(lpid).peak / 1e6), 256, 'MB'),
  };
  await stop(server.child);
  return out;
}

export default async function bench(): Promise<Record<string, unknown>> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-vault-'));
  const children: ChildProcess[] = [];
  const out: Record<string, unknown> = { uptime: fs.readFileSync('/proc/loadavg', 'utf8').trim() };
  try {
    const a = await appliance(root, children);
    if (PARTS.has('transfer')) out.transfer = await transfers(a, children);
    if (PARTS.has('listing')) out.listing = await listing(a, children);
  } finally {
    for (const c of children) await stop(c);
    fs.rmSync(root, { recursive: true, force: true });
  }
  return out;
}
