import type { Command } from 'commander';
import { loadConfig, resolveDataDir } from '../config/index.js';
import { migrateToLatest, openDatabase, pendingMigrations } from '../db/index.js';
import { action, dataDirOption, emit, jsonOption, type Io } from './output.js';

export function registerDb(program: Command, io: Io): void {
  const db = program.command('db').description('database maintenance');
  db.command('migrate')
    .description('apply pending migrations (also done at every start)')
    .addOption(dataDirOption())
    .option('--dry-run', 'only list pending migrations')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; dryRun?: boolean; json?: boolean }) => {
        const config = loadConfig(resolveDataDir(opts.dataDir));
        const h = openDatabase(config.database, { mustExist: true });
        try {
          if (opts.dryRun) {
            const pending = await pendingMigrations(h.db);
            emit(
              io,
              opts.json,
              { pending },
              pending.length ? `pending:\n  ${pending.join('\n  ')}` : 'no pending migration',
            );
            return;
          }
          const r = await migrateToLatest(h.db);
          emit(
            io,
            opts.json,
            { applied: r.applied },
            r.applied.length ? `applied:\n  ${r.applied.join('\n  ')}` : 'database is up to date',
          );
        } finally {
          await h.close();
        }
      }),
    );
}
