// Bundles tsc's output (dist/src) into dist/bundle: the `coffre` entry and the entries of its
// worker threads, with the code they share in chunks beside them. Node then reads a handful of
// files where it resolved and compiled about 1,500 modules, and a command starts in about half the
// CPU time (bench/RESULTS.md). Native addons and the packages loaded through createRequire stay
// in node_modules. src/runtime/layout.ts finds the worker entries. Run by `npm run build`.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'dist/src');
const out = path.join(root, 'dist/bundle');
const tmp = `${out}.tmp-${process.pid}`;

/** entry name (src/runtime/layout.ts workerEntry's `bundled`) → compiled module */
const entries = {
  coffre: 'cli/main.js',
  'seal-worker': 'blobs/seal-worker.js',
  seipd: 'backup/pgp/seipd.js',
  'engine-worker': 'backup/engine/worker.js',
  'pkcs11-worker': 'keys/pkcs11/worker.js',
};

/**
 * The `migrations` entry: every compiled migration (src/db/migrate.ts's file names) as
 * `{ name: module }`, in the order of their names, so that they share kysely with the rest.
 */
const MIGRATION = /^(\d{4}-\d{2}-\d{2}T\d{4}-[a-z0-9-]+)\.js$/;
const migrationsDir = path.join(root, 'dist/migrations');
const migrations = {
  name: 'coffre-migrations',
  setup(b) {
    b.onResolve({ filter: /^coffre:migrations$/ }, () => ({ path: 'migrations', namespace: 'coffre' }));
    b.onLoad({ filter: /.*/, namespace: 'coffre' }, () => {
      const names = fs
        .readdirSync(migrationsDir)
        .filter((f) => MIGRATION.test(f))
        .sort();
      if (!names.length) throw new Error(`no compiled migration in ${migrationsDir}`);
      const lines = names.map((f, i) => `import * as m${i} from './${f}';`);
      const table = names.map((f, i) => `  ${JSON.stringify(f.replace(/\.js$/, ''))}: m${i},`);
      return {
        contents: `${lines.join('\n')}\nexport const migrations = {\n${table.join('\n')}\n};\n`,
        resolveDir: migrationsDir,
        loader: 'js',
      };
    });
  },
};

fs.rmSync(tmp, { recursive: true, force: true });
try {
  await build({
    entryPoints: {
      ...Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, path.join(src, v)])),
      migrations: 'coffre:migrations',
    },
    plugins: [migrations],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    splitting: true,
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    // native addons, and what they load beside them
    external: ['better-sqlite3', 'pkcs11js', 'ssh2', 'cpu-features', 'pg-native', '@node-rs/*'],
    define: { COFFRE_BUNDLE: 'true' },
    // CommonJS packages in an ES module bundle call require() for Node's built-ins
    banner: {
      js: "import { createRequire as __coffreRequire } from 'node:module'; const require = __coffreRequire(import.meta.url);",
    },
    legalComments: 'none',
    logLevel: 'warning',
  });
  fs.rmSync(out, { recursive: true, force: true });
  fs.renameSync(tmp, out);
} catch (e) {
  fs.rmSync(tmp, { recursive: true, force: true });
  throw e;
}
