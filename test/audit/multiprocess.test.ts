import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyTrail } from '../../src/audit/index.js';
import { openTrail, rmrf, type TestTrail } from './support.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
let t: TestTrail | undefined;
afterAll(async () => {
  if (t) rmrf(t.dir);
});

describe('several processes writing one trail', () => {
  it('keeps the chain linear: contiguous sequence numbers, every record verifies', async () => {
    t = await openTrail();
    await t.close();
    const bundle = path.join(t.dir, 'writer.mjs');
    await build({
      entryPoints: [path.join(here, 'fixtures/writer.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outfile: bundle,
      absWorkingDir: path.resolve(here, '../..'),
      logLevel: 'silent',
    });
    // resolve the external packages from the project's node_modules
    const linked = path.join(path.resolve(here, '../..'), 'node_modules');
    fs.symlinkSync(linked, path.join(t.dir, 'node_modules'));
    const per = 400;
    const outs = await Promise.all(
      ['p1', 'p2', 'p3'].map((who) => run(process.execPath, [bundle, t!.file, who, String(per)], { timeout: 60_000 })),
    );
    for (const o of outs) expect(o.stdout).toBe('done\n');
    const again = await openTrail(t.dir);
    try {
      const seqs = (await again.h.db.selectFrom('audit_events').select('seq').orderBy('seq').execute()).map((r) =>
        Number(r.seq),
      );
      expect(seqs).toEqual(Array.from({ length: 3 * per }, (_, i) => i + 1));
      const changes = await again.h.db.selectFrom('appliance_meta').select('key').where('key', 'like', 'p%').execute();
      expect(changes).toHaveLength(3 * (per / 10));
      expect(await verifyTrail({ db: again.h.db, applianceId: 'x'.repeat(8) })).toMatchObject({
        ok: true,
        records: 3 * per,
      });
    } finally {
      await again.close();
    }
  });
});
