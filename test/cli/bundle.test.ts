import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

/**
 * `coffre` runs the bundle (scripts/build-bundle.mjs, docs/architecture.md "Build and layouts"):
 * a command must load its code from dist/bundle, and from node_modules only the native addons and
 * the few packages loaded through createRequire. A module imported in a way the bundler cannot
 * follow would load tsc's output or a package's ~250 files again, unseen by any other test.
 */
const dir = tempDir('coffre-bundle-');
const fresh = () => fs.mkdtempSync(path.join(dir, 'run-'));

/** a module hook that records every module the process loads (ESM and require) into $LOADED_OUT */
const RECORDER = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
import fs from 'node:fs';
const seen = new Set();
registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
process.on('exit', () => fs.writeFileSync(process.env.LOADED_OUT, [...seen].join('\\n')));
`)}`;

/** packages the bundle leaves in node_modules on purpose (native addons and their loaders, createRequire) */
const EXTERNAL = /\/node_modules\/(better-sqlite3|bindings|file-uri-to-path|pkcs11js|@node-rs\/[^/]+)\//;

/** runs `node <script> …args` with the recorder: its exit code and every file it loaded */
async function loaded(args: string[], script = CLI): Promise<{ code: number | null; stderr: string; files: string[] }> {
  const out = path.join(fresh(), 'loaded.txt');
  const r = await promisify(execFile)(process.execPath, [script, ...args], {
    env: { ...process.env, NODE_OPTIONS: `--import=${RECORDER}`, LOADED_OUT: out },
    cwd: ROOT,
  }).then(
    (x) => ({ code: 0, stderr: x.stderr }),
    (e: { code?: number; stderr?: string }) => ({ code: e.code ?? null, stderr: e.stderr ?? '' }),
  );
  const files = fs
    .readFileSync(out, 'utf8')
    .split('\n')
    .filter((u) => u.startsWith('file:'))
    .map((u) => decodeURIComponent(new URL(u).pathname));
  return { ...r, files };
}

describe('the coffre bundle', () => {
  it('init and a local command load only the bundle, the native addons and nothing else', async () => {
    expect(CLI).toBe(path.join(ROOT, 'dist/bundle/coffre.mjs'));
    const data = path.join(fresh(), 'data');
    const init = await loaded(['init', '--data-dir', data, '--admin', 'Admin', '--admin-email', 'admin@example.test']);
    expect(init.code, init.stderr).toBe(0);
    const list = await loaded(['user', 'list', '--data-dir', data]);
    expect(list.code, list.stderr).toBe(0);
    for (const { files } of [init, list]) {
      const bundle = files.filter((f) => f.startsWith(path.join(ROOT, 'dist/bundle/')));
      expect(bundle).toContain(CLI);
      // the migrations came from the bundle's own entry, sharing kysely with the rest
      expect(bundle).toContain(path.join(ROOT, 'dist/bundle/migrations.mjs'));
      const outside = files.filter((f) => !f.startsWith(path.join(ROOT, 'dist/bundle/')) && !EXTERNAL.test(f));
      expect(outside).toEqual([]);
      expect(files.length).toBeLessThan(120);
    }
  });

  it('the same check sees what the unbundled build loads (so it can fail)', async () => {
    const plain = await loaded(['--version'], path.join(ROOT, 'dist/src/cli/main.js'));
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.files.filter((f) => f.includes('/dist/src/')).length).toBeGreaterThan(100);
    expect(plain.files.filter((f) => f.includes('/node_modules/kysely/')).length).toBeGreaterThan(100);
  });
});
