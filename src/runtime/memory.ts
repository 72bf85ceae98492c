import v8 from 'node:v8';
import vm from 'node:vm';
import { processEnv } from '../config/index.js';
import { isCliEntry } from './layout.js';

/**
 * Memory tuning of the processes that stream documents and backups, in one place and behind one
 * switch: `COFFRE_MEMORY_TUNING=off` turns every piece below into nothing (V8's and glibc's own
 * defaults), and the correctness suites pass either way (test/runtime/tuning-off.test.ts). Tuning
 * changes how soon memory is given back, never what is computed.
 *
 * - V8 flags set when the process starts: a young generation capped at 2 × 2 MiB (V8 lets it grow
 *   to 2 × 64 MiB under a high allocation rate, which streaming produces) and `gc` exposed, so
 *   streams can ask for a young-generation collection every few MiB: the buffers a transfer drops
 *   are freed at once instead of piling up to V8's 64 MiB external-memory trigger.
 * - glibc malloc: two arenas instead of up to 8 per core. Transfer buffers are also allocated by
 *   the thread pool (file reads, WebCrypto) and every arena keeps what was freed in it. (A fixed
 *   mmap threshold saved a little peak RSS for much more CPU per GiB streamed: not kept; figures
 *   in bench/RESULTS.md, "Design measurements".)
 * - Incremental-marking triggers raised while a backup engine runs (`engineGcTriggers`).
 */
export const TRANSFER_V8_FLAGS = ['--max-semi-space-size=2', '--expose-gc'];
export const TRANSFER_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The one switch: on unless `COFFRE_MEMORY_TUNING=off`. */
export function memoryTuning(): boolean {
  return processEnv().COFFRE_MEMORY_TUNING !== 'off';
}

/**
 * Re-executes this process once (same PID: systemd and signals are unaffected) with the transfer
 * flags and malloc settings, when they are missing. `cliEntryOnly`: only when the process is the
 * real `coffre` CLI, never when a test calls the CLI's `main()` in its own process.
 */
export function reexecForTransfers(o: { cliEntryOnly?: boolean } = {}): void {
  if (!memoryTuning() || typeof process.execve !== 'function') return;
  if (o.cliEntryOnly && !isCliEntry(process.argv[1])) return;
  const env = processEnv();
  const missing = TRANSFER_V8_FLAGS.filter((f) => !process.execArgv.includes(f));
  const unset = Object.entries(TRANSFER_MALLOC_ENV).filter(([k]) => env[k] === undefined);
  if (missing.length === 0 && unset.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], {
    ...env,
    ...Object.fromEntries(unset),
  } as Record<string, string>);
}

type Gc = (o?: { type: 'minor' | 'major' }) => void;
let exposedGc: Gc | undefined;

/**
 * A collection asked for by code that just dropped transfer buffers (about a millisecond for a
 * young one). `expose`: make `gc` available in this thread if the process did not start with it
 * (worker threads of the backup engine); otherwise only when the process exposes it (`coffre
 * serve` does). Nothing when tuning is off.
 */
export function collect(type: 'minor' | 'major', o: { expose?: boolean } = {}): void {
  if (!memoryTuning()) return;
  if (!exposedGc) {
    const g = (globalThis as { gc?: Gc }).gc;
    if (g) exposedGc = g;
    else if (o.expose) {
      v8.setFlagsFromString('--expose-gc');
      exposedGc = vm.runInNewContext('gc') as Gc;
    } else return;
  }
  exposedGc({ type });
}

/**
 * V8's incremental-marking triggers while a backup engine runs. The engine's heap is small (~10 MB)
 * and V8 started a mark-compact as soon as it grew by a fraction of a MB, again and again; started
 * only once the old generation reaches 80 % (in a task) or 90 % (at once) of its limit, there are a
 * handful per GiB and the upload phase is faster (figures: bench/RESULTS.md, "Design measurements"). V8 flags are
 * process-wide: they are set while at least one engine runs and put back after (0: V8's own
 * heuristics).
 */
const GC_TRIGGERS = {
  on: ['--incremental-marking-soft-trigger=80', '--incremental-marking-hard-trigger=90'],
  off: ['--incremental-marking-soft-trigger=0', '--incremental-marking-hard-trigger=0'],
};
let engines = 0;
export const engineGcTriggers = {
  started(): void {
    if (engines++ === 0 && memoryTuning()) for (const f of GC_TRIGGERS.on) v8.setFlagsFromString(f);
  },
  ended(): void {
    if (--engines === 0 && memoryTuning()) for (const f of GC_TRIGGERS.off) v8.setFlagsFromString(f);
  },
};
