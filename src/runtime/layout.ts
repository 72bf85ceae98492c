/**
 * Where the running code sits. Three layouts run the same modules: the TypeScript sources (the
 * tests, through Node's type stripping in worker threads), tsc's output in dist/src, and the
 * bundle in dist/bundle (scripts/build-bundle.mjs), which is what `coffre` runs: a few dozen
 * files instead of about 1,500 modules make a command start in about half the CPU time.
 */

/** replaced by `true` in the bundle (esbuild's `define`); undeclared in the sources and in dist/src */
declare const COFFRE_BUNDLE: boolean | undefined;

export const BUNDLED: boolean = typeof COFFRE_BUNDLE !== 'undefined' && COFFRE_BUNDLE;

/**
 * The entry module of a worker thread spawned from the module at `from` (its import.meta.url):
 * `<rel>.ts` or `<rel>.js` next to it, or in the bundle the entry `<bundled>.mjs` that
 * scripts/build-bundle.mjs writes beside every other bundled file.
 */
export function workerEntry(from: string, rel: string, bundled: string): URL {
  if (BUNDLED) return new URL(`./${bundled}.mjs`, from);
  return new URL(`${rel}.${from.endsWith('.ts') ? 'ts' : 'js'}`, from);
}

/** whether `script` (a process's argv[1]) is the `coffre` CLI: tsc's output or the bundle's entry */
export function isCliEntry(script: string | undefined): boolean {
  return !!script && (script.endsWith('/cli/main.js') || (BUNDLED && script.endsWith('/coffre.mjs')));
}
