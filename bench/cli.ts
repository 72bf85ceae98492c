import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench -- cli`: what one `coffre` command costs to start, the bundle that `coffre` runs
 * (dist/bundle/coffre.mjs) against tsc's output (dist/src/cli/main.js), with and without V8's
 * compile cache: `--version` (the whole command tree) and `user list` on a data directory (opens
 * the database, runs the migration check). CPU seconds of the process (all its threads, from
 * process.cpuUsage() at exit) and wall seconds, median of interleaved rounds.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const BUNDLE = path.join(ROOT, 'dist/bundle/coffre.mjs');
const PLAIN = path.join(ROOT, 'dist/src/cli/main.js');
const ROUNDS = Number(process.env.CLI_BENCH_ROUNDS ?? 7);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** writes `<cpu s> <wall s>` of the process to $CLI_BENCH_OUT as it exits */
const PROBE = `data:text/javascript,${encodeURIComponent(`
import fs from 'node:fs';
process.on('exit', () => { const c = process.cpuUsage(); fs.writeFileSync(process.env.CLI_BENCH_OUT, ((c.user + c.system) / 1e6) + ' ' + (performance.now() / 1000)); });
`)}`;

async function once(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ cpuS: number; wallS: number }> {
  const out = path.join(os.tmpdir(), `coffre-cli-bench-${process.pid}.txt`);
  await promisify(execFile)(process.execPath, [script, ...args], {
    env: { ...process.env, ...env, NODE_OPTIONS: `--import=${PROBE}`, CLI_BENCH_OUT: out },
  });
  const [cpuS, wallS] = fs.readFileSync(out, 'utf8').split(' ').map(Number) as [number, number];
  fs.rmSync(out, { force: true });
  return { cpuS, wallS };
}

export default async function (): Promise<Record<string, unknown>> {
  for (const f of [BUNDLE, PLAIN]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: npm run build`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-cli-bench-'));
  try {
    const data = path.join(dir, 'data');
    await promisify(execFile)(process.execPath, [
      BUNDLE,
      'init',
      '--data-dir',
      data,
      '--admin',
      'Admin',
      '--admin-email',
      'a@example.test',
    ]);
    const cache = path.join(dir, 'compile-cache');
    const commands: Record<string, string[]> = {
      version: ['--version'],
      userList: ['user', 'list', '--data-dir', data],
    };
    const variants: Record<string, [string, NodeJS.ProcessEnv]> = {
      bundle: [BUNDLE, { NODE_COMPILE_CACHE: undefined }],
      tsc: [PLAIN, { NODE_COMPILE_CACHE: undefined }],
      bundleCached: [BUNDLE, { NODE_COMPILE_CACHE: path.join(cache, 'bundle') }],
      tscCached: [PLAIN, { NODE_COMPILE_CACHE: path.join(cache, 'tsc') }],
    };
    const out: Record<string, unknown> = { rounds: ROUNDS };
    for (const [cmd, args] of Object.entries(commands)) {
      const samples: Record<string, { cpuS: number[]; wallS: number[] }> = {};
      for (const v of Object.keys(variants)) samples[v] = { cpuS: [], wallS: [] };
      // one warm-up each (fills the compile caches and the page cache), then interleaved rounds
      for (const [script, env] of Object.values(variants)) await once(script, args, env);
      for (let r = 0; r < ROUNDS; r++)
        for (const [v, [script, env]] of Object.entries(variants)) {
          const s = await once(script, args, env);
          samples[v]!.cpuS.push(s.cpuS);
          samples[v]!.wallS.push(s.wallS);
        }
      const m = Object.fromEntries(
        Object.entries(samples).map(([v, s]) => [
          v,
          { cpuS: +median(s.cpuS).toFixed(3), wallS: +median(s.wallS).toFixed(3) },
        ]),
      ) as Record<string, { cpuS: number; wallS: number }>;
      out[cmd] = {
        ...m,
        bundleOverTscCpu: { ratio: +(m.bundle!.cpuS / m.tsc!.cpuS).toFixed(2), target: '<= 0.6' },
        cachedBundleOverTscCpu: { ratio: +(m.bundleCached!.cpuS / m.tscCached!.cpuS).toFixed(2), target: '<= 0.6' },
      };
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
