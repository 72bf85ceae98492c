import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { downloadMany, uploadMany, type Server } from './_peers-client.js';
import type { BenchAppliance } from './_peers-appliance.js';
import * as here from './_peers-appliance.js';
import { cpuSeconds, load, median, randomFile, round2, stop } from './_vault-lib.js';

/**
 * `PAIR_BENCH_BASE=<checkout> npm run bench -- pair`: this build against another one, side by
 * side, for changes smaller than the drift between runs made one after the other. `<checkout>` is
 * another clone of the repository at the commit to compare against, built (`npm run build`); each
 * build serves from its own data directory with its own `coffre serve`, both up at once. Each
 * round uploads PAIR_BENCH_DOCS (500) documents of 100 KiB of CSPRNG output with 16 clients and
 * downloads them, to one server then the other, the order alternating; PAIR_BENCH_ROUNDS (16)
 * rounds. Reported: each build's server CPU per document (CPU seconds of its process over the
 * documents) per round, the medians, and the median of the rounds' differences with how many
 * rounds the change cost less. The per-user and per-address transfer budgets are lifted as in
 * bench/peers.ts; the rounds are paced to stay under the global per-address request budget.
 */
const BASE = process.env.PAIR_BENCH_BASE;
const DOCS = Number(process.env.PAIR_BENCH_DOCS ?? 500);
const ROUNDS = Number(process.env.PAIR_BENCH_ROUNDS ?? 16);
const SIZE = 100 * 1024;
const CLIENTS = 16;
const BULK = { COFFRE_CFG_monitoring__budgets__transfer: '{"perAddress":0,"perUser":0}' };
/** the global budget is 1,200 requests a minute per address: 2 × DOCS / CLIENTS per round */
const PAUSE_MS = Math.ceil(((2 * DOCS) / CLIENTS / 1000) * 60_000);

interface Side {
  name: string;
  a: BenchAppliance;
  server: Server;
  upload: number[];
  download: number[];
}

export default async function bench(): Promise<Record<string, unknown>> {
  if (!BASE)
    return { skipped: 'PAIR_BENCH_BASE is not set: the path of a built checkout to compare this build against' };
  const baseModule = path.resolve(BASE, 'dist/bench/_peers-appliance.js');
  if (!fs.existsSync(baseModule)) throw new Error(`${baseModule} is missing: run npm run build in ${BASE}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-pair-'));
  const sides: Side[] = [];
  try {
    const big = path.join(root, 'docs.bin');
    randomFile(big, DOCS * SIZE);
    const builds: [string, typeof here][] = [
      ['base', (await import(pathToFileURL(baseModule).href)) as typeof here],
      ['this', here],
    ];
    for (const [name, m] of builds) {
      const a = await m.startBenchAppliance(path.join(root, name), BULK);
      const ws = await m.newWorkspace(a, 'pair');
      sides.push({
        name,
        a,
        upload: [],
        download: [],
        server: {
          name,
          url: a.url,
          ca: a.ca,
          auth: { authorization: `Bearer ${a.token}` },
          store: (n) => ({
            method: 'POST',
            path: `/api/v1/workspaces/${ws}/documents`,
            headers: { 'content-disposition': `attachment; filename="${n}"` },
          }),
          readPath: (_n, reply) => `/api/v1/documents/${(JSON.parse(reply) as { id: string }).id}/content`,
        },
      });
    }
    for (let r = 0; r < ROUNDS; r++) {
      const started = Date.now();
      for (const s of r % 2 ? [...sides].reverse() : sides) {
        const pid = s.a.child.pid!;
        let c0 = cpuSeconds(pid);
        const up = await uploadMany(s.server, {
          clients: CLIENTS,
          count: DOCS,
          size: SIZE,
          source: big,
          prefix: `r${r}-`,
        });
        s.upload.push(round2(((cpuSeconds(pid) - c0) / DOCS) * 1000));
        c0 = cpuSeconds(pid);
        const down = await downloadMany(s.server, { clients: CLIENTS, paths: up.paths, size: SIZE });
        s.download.push(round2(((cpuSeconds(pid) - c0) / DOCS) * 1000));
        if (up.batch.errors || down.errors)
          throw new Error(
            `${s.name}: ${up.batch.errors + down.errors} failed requests (${up.batch.firstError ?? down.firstError})`,
          );
        process.stderr.write(
          `pair: round ${r} ${s.name} upload ${s.upload.at(-1)} ms, download ${s.download.at(-1)} ms of server CPU a document, load ${load()}\n`,
        );
      }
      const wait = started + PAUSE_MS - Date.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  } finally {
    for (const s of sides) await stop(s.a.child);
    fs.rmSync(root, { recursive: true, force: true });
  }
  const [base, self] = sides as [Side, Side];
  const compare = (k: 'upload' | 'download') => {
    const diffs = self[k].map((v, i) => round2(v - base[k][i]!));
    return {
      baseMsPerDoc: base[k],
      thisMsPerDoc: self[k],
      baseMedian: round2(median(base[k])),
      thisMedian: round2(median(self[k])),
      medianDifference: round2(median(diffs)),
      roundsThisCostLess: diffs.filter((d) => d < 0).length,
    };
  };
  return {
    base: BASE,
    documents: DOCS,
    documentBytes: SIZE,
    rounds: ROUNDS,
    upload: compare('upload'),
    download: compare('download'),
  };
}
