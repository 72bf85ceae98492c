import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LYON, openBackupEnv, randomDoc, type BackupEnv } from './support.js';

/**
 * backup.bandwidthLimitKiBps paces the backup engine (the parts upload in its worker thread, the
 * read-back, and the restore drill's download), not only the small main-thread operations: the
 * measured throughput of each stays within 20 % of the limit. A mounted path target, so the
 * target itself is never the bottleneck.
 */
const LIMIT_KIB = 1024;
let e: BackupEnv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bw-'));
beforeAll(async () => {
  e = await openBackupEnv({ COFFRE_CFG_backup__bandwidthLimitKiBps: String(LIMIT_KIB) });
  await e.upload('scan.tiff', randomDoc(8 * 1024 * 1024));
  fs.mkdirSync(path.join(tmp, 'dr'));
  await e.service.addTarget({ name: 'dr', type: 'path', url: `file://${path.join(tmp, 'dr')}`, ...LYON }, 'local:test');
});
afterAll(async () => {
  await e?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ratio = (bytes: number, ms: number) => bytes / (ms / 1000) / (LIMIT_KIB * 1024);

describe('the bandwidth limit applies to the backup engine', { timeout: 180_000 }, () => {
  it('upload, read-back and restore drill each run at the limit, within 20 %', async () => {
    // the upload's rate as the target sees it: bytes under .tmp-<id>/ sampled while it grows
    // (the engine thread's start-up, longer when tests run the TypeScript sources, is not transfer)
    const dir = path.join(tmp, 'dr');
    const samples: { at: number; bytes: number }[] = [];
    const sample = setInterval(() => {
      const t = fs.readdirSync(dir).find((n) => n.startsWith('.tmp-'));
      if (!t) return;
      const bytes = fs
        .readdirSync(path.join(dir, t))
        .reduce((sum, f) => sum + (fs.statSync(path.join(dir, t, f), { throwIfNoEntry: false })?.size ?? 0), 0);
      samples.push({ at: performance.now(), bytes });
    }, 100);
    const r = await e.service.run({ actor: 'job:backup' }).finally(() => clearInterval(sample));
    const rt = r.targets[0]!;
    expect(rt.size).toBeGreaterThan(8 * 1024 * 1024);
    const moving = samples.filter((x) => x.bytes > 0 && x.bytes < rt.size!);
    const first = moving[0]!;
    const last = moving.at(-1)!;
    expect(last.at - first.at).toBeGreaterThan(4000);
    const up = ratio(last.bytes - first.bytes, last.at - first.at);
    const back = ratio(rt.size!, rt.verifyMs!);
    const t0 = performance.now();
    const d = await e.service.drill({ actor: 'job:backup.drill' });
    const drill = ratio(rt.size!, performance.now() - t0);
    expect('backupId' in d).toBe(true);
    console.log(
      `engine throughput / limit: upload ${up.toFixed(2)}, read-back ${back.toFixed(2)}, drill ${drill.toFixed(2)}`,
    );
    for (const x of [up, back]) {
      expect(x).toBeGreaterThan(0.8);
      expect(x).toBeLessThan(1.2);
    }
    // the drill also restores and checks the database and samples: paced download plus that work
    expect(drill).toBeLessThan(1.2);
  });
});
