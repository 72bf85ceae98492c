import type { Command } from 'commander';
import { withAppliance } from './local.js';
import { AppError } from '../shared/errors.js';
import type { VerifyReport, VerifyScope } from '../vault/index.js';
import { EXIT } from './exit-codes.js';
import { action, dataDirOption, emit, jsonOption, localActor, type Io } from './output.js';

function human(r: VerifyReport): string {
  const what = `${r.versions} version(s) of ${r.documents} document(s), ${r.bytes} bytes`;
  if (r.ok) return `integrity verified: ${what}; every chunk's tag, size and SHA-256 matched`;
  return [
    `integrity FAILED: ${r.failures.length} of ${what}`,
    ...r.failures.map(
      (f) =>
        `  ${f.problem}: document ${f.documentId} version ${f.version} (workspace ${f.workspaceId}, blob ${f.blobId})`,
    ),
  ].join('\n');
}

export function registerVault(program: Command, io: Io): void {
  const vault = program.command('vault').description('the document vault on this appliance');
  vault
    .command('verify')
    .description(
      "integrity control: re-read blobs, check every chunk's tag, size and SHA-256; exit 7 naming what failed (and an alert)",
    )
    .option('--document <id>', 'one document (every version)')
    .option('--workspace <id>', 'every document of a workspace')
    .option('--all', 'the whole store')
    .option('--rate <bytesPerSecond>', 'at most this many plaintext bytes per second (default: unbounded)')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (opts: {
          document?: string;
          workspace?: string;
          all?: boolean;
          rate?: string;
          dataDir?: string;
          json?: boolean;
        }) => {
          const given = [opts.document !== undefined, opts.workspace !== undefined, opts.all === true].filter(
            Boolean,
          ).length;
          if (given !== 1)
            throw new AppError('USAGE', 'give exactly one of --document ID, --workspace ID, --all', { exitCode: 2 });
          const rate = opts.rate === undefined ? 0 : Number(opts.rate);
          if (!Number.isSafeInteger(rate) || rate < 0)
            throw new AppError('USAGE', '--rate must be a whole number of bytes per second', { exitCode: 2 });
          const scope: VerifyScope =
            opts.document !== undefined
              ? { kind: 'document', id: opts.document }
              : opts.workspace !== undefined
                ? { kind: 'workspace', id: opts.workspace }
                : { kind: 'all' };
          return withAppliance(
            opts.dataDir,
            async (a) => {
              const unsigned = await a.vault.verifyScope(scope, { bytesPerSecond: rate });
              if (scope.kind !== 'all' && unsigned.versions === 0)
                throw new AppError(
                  scope.kind === 'document' ? 'DOCUMENT_NOT_FOUND' : 'WORKSPACE_NOT_FOUND',
                  `no stored version for this ${scope.kind}`,
                  { exitCode: 2 },
                );
              const r = await a.vault.reportVerify(localActor(), unsigned);
              emit(io, opts.json, { ...r }, () => human(r));
              if (!r.ok) {
                io.err(
                  `VAULT_INTEGRITY: ${r.failures.length} version(s) failed their integrity check — an alert was raised; restore them from a backup`,
                );
                process.exitCode = EXIT.integrity;
              }
            },
            { migrate: false },
          );
        },
      ),
    );
}
