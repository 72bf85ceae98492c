import crypto from 'node:crypto';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackupEnv, randomDoc, type BackupEnv } from '../backup/support.js';
import { collect, engineGcTriggers, memoryTuning } from '../../src/runtime/index.js';

/**
 * The memory tuning (src/runtime/memory.ts) changes how soon memory is given back, never what is
 * computed: with `COFFRE_MEMORY_TUNING=off` (this file's process only), nothing is tuned, and an
 * upload, a download, a backup (engine and sealing workers) and its verification still come out right.
 */
process.env.COFFRE_MEMORY_TUNING = 'off';

let e: BackupEnv;
beforeAll(async () => {
  e = await openBackupEnv();
});
afterAll(async () => {
  await e?.close();
});

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('memory tuning switched off', () => {
  it('tunes nothing: no gc exposed, no V8 flag changed', () => {
    expect(memoryTuning()).toBe(false);
    collect('minor', { expose: true });
    engineGcTriggers.started();
    engineGcTriggers.ended();
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });

  it('documents and a backup round-trip unchanged', async () => {
    const doc = randomDoc(2_500_000); // several chunks and several 1 MiB backup parts
    const id = await e.upload('tuning-off.bin', doc);
    const r = await e.env.req('GET', `/api/v1/documents/${id}/content`, { token: e.alice.token });
    expect(r.status).toBe(200);
    expect(sha(r.body)).toBe(sha(doc));
    await e.addTarget();
    const run = await e.service.run({ actor: 'job:backup' });
    expect(run.ok, JSON.stringify(run)).toBe(true);
    expect(run.targets[0]!.parts).toBeGreaterThan(2);
    const v = await e.service.verify('latest', { actor: 'local:test' });
    expect(v).toMatchObject({ id: run.targets[0]!.backupId, ok: true });
  }, 120_000);
});
