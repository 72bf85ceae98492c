import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { startTestTsa, type TestTsa } from '../support/tsa.js';
import { tempDir } from '../support/tmp.js';
import { FakeClock } from '../../src/shared/clock.js';
import type { SealResult } from '../../src/audit/index.js';
import { cli, openssl } from './support.js';

const DAY = 86_400_000;
let t: TestAppliance;
let tsa: TestTsa;
let clock: FakeClock;
let work: string;
beforeAll(async () => {
  tsa = await startTestTsa();
  clock = new FakeClock(Date.UTC(2026, 10, 2, 9, 0, 0));
  t = await createTestAppliance({
    clock,
    env: {
      COFFRE_CFG_seals__tsa__urls: JSON.stringify([tsa.url]),
      COFFRE_CFG_seals__tsa__caFile: tsa.caFile,
      COFFRE_CFG_seals__tsa__alertAfterMs: '600000',
      COFFRE_CFG_jobs__enabled: 'false',
    },
  });
  work = tempDir('coffre-ts-');
});
afterAll(async () => {
  await t?.close();
  await tsa?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const seal = async () =>
  (await t.appliance.scheduler.run<SealResult>('audit.seal', { trigger: 'cli', actor: 'local:test' })).result;
const states = async () =>
  (await t.appliance.db.db.selectFrom('audit_seals').select(['day', 'ts_state']).orderBy('day').execute()).map((r) => [
    r.day,
    r.ts_state,
  ]);
const alerts = async () =>
  (
    await t.appliance.db.db.selectFrom('audit_events').select('targets').where('action', '=', 'alert.raised').execute()
  ).map((r) => (JSON.parse(r.targets ?? '[]') as [string, string][]).find(([k]) => k === 'kind')?.[1]);

describe('RFC 3161 timestamps on the daily seals', () => {
  it('TSA down: the seal is made and left pending, retried, alerted after the delay; TSA back: granted, and openssl ts -verify accepts it', async () => {
    await t.appliance.audit.recordNow({ action: 'doc.read', actor: 'user:u1', outcome: 'success' });
    clock.advance(DAY);
    await tsa.stop();
    expect((await seal()).sealed).toEqual(['2026-11-02']);
    expect(await states()).toEqual([['2026-11-02', 'pending']]);
    expect(await t.appliance.timestamps.tick()).toEqual({ granted: 0, pending: 1 });
    expect(await alerts()).not.toContain('seals.timestamp_pending');
    clock.advance(11 * 60_000);
    expect(await t.appliance.timestamps.tick()).toEqual({ granted: 0, pending: 1 });
    expect(await alerts()).toContain('seals.timestamp_pending');
    await tsa.start();
    expect(await t.appliance.timestamps.tick()).toEqual({ granted: 1, pending: 0 });
    expect(await states()).toEqual([['2026-11-02', 'granted']]);
    expect(await alerts()).toContain('seals.timestamp_ok');
    // a seal made while the TSA answers is timestamped at once
    clock.advance(DAY);
    expect((await seal()).sealed).toEqual(['2026-11-03']);
    expect(await states()).toEqual([
      ['2026-11-02', 'granted'],
      ['2026-11-03', 'granted'],
    ]);
    const dir = path.join(work, 'export');
    const ex = await cli(['audit', 'seals', 'export', dir, '--data-dir', t.dataDir, '--json']);
    expect(ex.code, ex.err).toBe(0);
    expect(JSON.parse(ex.out)).toMatchObject({ seals: 2, timestamped: 2 });
    for (const d of ['2026-11-02', '2026-11-03']) {
      const v = openssl([
        'ts',
        '-verify',
        '-data',
        path.join(dir, `seal-${d}.json`),
        '-in',
        path.join(dir, `seal-${d}.json.tsr`),
        '-CAfile',
        tsa.caFile,
        '-untrusted',
        tsa.certFile,
      ]);
      expect(v.out, d).toMatch(/Verification: OK/);
    }
    // a token moved to the other day's seal is refused
    expect(
      openssl([
        'ts',
        '-verify',
        '-data',
        path.join(dir, 'seal-2026-11-03.json'),
        '-in',
        path.join(dir, 'seal-2026-11-02.json.tsr'),
        '-CAfile',
        tsa.caFile,
        '-untrusted',
        tsa.certFile,
      ]).out,
    ).toMatch(/Verification: FAILED/);
    expect(fs.readFileSync(path.join(dir, 'README.txt'), 'utf8')).toContain(
      'openssl ts -verify -data seal-2026-11-03.json -in seal-2026-11-03.json.tsr',
    );
  });
});
