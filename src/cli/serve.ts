import type { Command } from 'commander';
import { Option } from 'commander';
import { serve } from '../main.js';
import { resolveDataDir } from '../config/index.js';
import { reexecForTransfers } from '../runtime/index.js';
import { createLogger } from '../shared/logger.js';
import { action, dataDirOption, parseNumber, type Io } from './output.js';

export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('run the appliance in the foreground (HTTPS + scheduler); JSON logs on stdout')
    .addOption(dataDirOption())
    .addOption(
      new Option('--port <n>', 'HTTPS port (overrides http.port)').argParser(parseNumber('--port', 0, 65535, true)),
    )
    .option('--host <addr>', 'address to listen on (overrides http.host)')
    .action(
      action(io, async (opts: { dataDir?: string; port?: number; host?: string }) => {
        reexecForTransfers(); // memory tuning (src/runtime/memory.ts), same PID
        const log = createLogger({ destination: 'stdout' });
        const running = await serve({
          dataDir: resolveDataDir(opts.dataDir),
          log,
          ...(opts.port !== undefined ? { port: opts.port } : {}),
          ...(opts.host ? { host: opts.host } : {}),
        });
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
