import type { JobDefinition } from '../jobs/index.js';
import type { VaultService } from './service.js';

/**
 * The vault's scheduled jobs (also runnable from the CLI through the same code):
 * - `vault.trash-purge`: crypto-shreds documents whose trash retention is over;
 * - `vault.collect-orphans`: removes blobs and data keys of uploads a crash left uncommitted,
 *   and any vault blob nothing references;
 * - `vault.sweep-uploads`: at start and hourly, the leftovers of interrupted uploads only (pending
 *   rows, temp files, data keys past the grace), without listing the blob store;
 * - `vault.scrub`: weekly, re-reads every blob (chunk tags, digests) at `vault.scrubBytesPerSecond`;
 * - `vault.seal-digests`: at start and daily, encrypts the SHA-256 of versions stored before
 *   digests were kept encrypted (none once done);
 * - `vault.index-names`: at start and daily, puts documents written before the name index into it
 *   (none once done; until then their workspace's searches decrypt every name).
 */
export function vaultJobs(vault: VaultService, scrubBytesPerSecond = 0): JobDefinition[] {
  return [
    {
      // weekly integrity control of the whole store at a bounded rate; an alert per failed version
      name: 'vault.scrub',
      schedule: '0 2 * * 0',
      catchUp: true,
      run: async (ctx) => {
        const r = await vault.verifyScope(
          { kind: 'all' },
          {
            bytesPerSecond: scrubBytesPerSecond,
            signal: ctx.signal,
            progress: (done, total) =>
              ctx.progress({
                phase: 'verifying',
                done,
                total,
                percent: total ? Math.round((done / total) * 100) : 100,
              }),
          },
        );
        return vault.reportVerify(ctx.actor, r);
      },
    },
    {
      name: 'vault.trash-purge',
      schedule: '30 3 * * *',
      catchUp: true,
      run: async (ctx) =>
        vault.purgeExpired(ctx.actor, ctx.signal, (done, total) =>
          ctx.progress({ phase: 'shredding', done, total, percent: total ? Math.round((done / total) * 100) : 100 }),
        ),
    },
    {
      name: 'vault.collect-orphans',
      schedule: '15 4 * * *',
      catchUp: true,
      run: async (ctx) => vault.collectOrphans(ctx.signal),
    },
    {
      name: 'vault.sweep-uploads',
      schedule: '7 * * * *',
      runAtStart: true,
      run: async () => vault.sweepUploads(),
    },
    {
      name: 'vault.seal-digests',
      schedule: '45 4 * * *',
      runAtStart: true,
      run: async () => vault.sealDigests(),
    },
    {
      name: 'vault.index-names',
      schedule: '50 4 * * *',
      runAtStart: true,
      run: async (ctx) => vault.indexNames(ctx.signal),
    },
  ];
}
