import type { Command } from 'commander';
import { Option } from 'commander';
import { serve } from '../main.js';
import { processEnv, resolveDataDir } from '../config/index.js';
import { createLogger } from '../shared/logger.js';
import { action, dataDirOption, parseNumber, type Io } from './output.js';

/**
 * V8 flags of the server process. A young generation capped at 2 × 2 MiB (V8 lets it grow to
 * 2 × 64 MiB under a high allocation rate, which streaming produces) and `gc` exposed, so the
 * vault's streams can ask for a young-generation collection every few MiB (src/vault/streams.ts:
 * the buffers a transfer drops are freed at once instead of piling up to V8's 64 MiB external
 * memory trigger), keep the server's resident memory flat while it streams documents. They must be
 * set when the process starts, so `serve` re-executes itself once with them (same PID, so systemd
 * and signals are unaffected).
 */
export const SERVE_V8_FLAGS = ['--max-semi-space-size=2', '--expose-gc'];

/**
 * glibc malloc settings of the server process (each applies only when not already set). Buffers
 * of a transfer are also allocated by the thread pool (file reads, WebCrypto), and glibc gives
 * every thread its own arena (up to 8 per core), each keeping what was freed in it: two arenas.
 * (A fixed mmap threshold, which unmaps every big buffer when freed, saved ~5 MB of peak RSS but
 * cost ~40% more CPU per GiB streamed in page faults: not kept.)
 */
export const SERVE_MALLOC_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

function reexecWithServerFlags(): void {
  const missing = SERVE_V8_FLAGS.filter((f) => !process.execArgv.includes(f));
  const env = Object.entries(SERVE_MALLOC_ENV).filter(([k]) => processEnv()[k] === undefined);
  if ((missing.length === 0 && env.length === 0) || typeof process.execve !== 'function') return;
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)], { ...processEnv(), ...Object.fromEntries(env) } as Record<string, string>);
}

export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('run the appliance in the foreground (HTTPS + scheduler); JSON logs on stdout')
    .addOption(dataDirOption())
    .addOption(new Option('--port <n>', 'HTTPS port (overrides http.port)').argParser(parseNumber('--port', 0, 65535, true)))
    .option('--host <addr>', 'address to listen on (overrides http.host)')
    .action(
      action(io, async (opts: { dataDir?: string; port?: number; host?: string }) => {
        reexecWithServerFlags();
        const log = createLogger({ destination: 'stdout' });
        const running = await serve({ dataDir: resolveDataDir(opts.dataDir), log, ...(opts.port !== undefined ? { port: opts.port } : {}), ...(opts.host ? { host: opts.host } : {}) });
        await new Promise<void>((resolve) => {
          const onSignal = (sig: NodeJS.Signals) => {
            void running.stop(sig).then(resolve, (e: unknown) => {
              log.error({ err: e }, 'unclean stop');
              process.exitCode = 1;
              resolve();
            });
          };
          process.once('SIGTERM', onSignal);
          process.once('SIGINT', onSignal);
        });
      }),
    );
}
