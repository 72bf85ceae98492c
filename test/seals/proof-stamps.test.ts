import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { startTestTsa, type TestTsa } from '../support/tsa.js';
import { tempDir } from '../support/tmp.js';
import { canonicalJson } from '../../src/shared/canonical-json.js';
import { openssl } from './support.js';

/**
 * RFC 3161 timestamps on destruction certificates and integrity reports, from a real TSA on
 * loopback, checked with `openssl ts -verify` over the exact signed bytes; a TSA outage leaves them
 * pending and the retrier gets the token once it is back.
 */
let t: TestAppliance;
let tsa: TestTsa;
let work: string;
let caller: { actor: { id: string; kind: 'user'; userId: string; username: string; roles: string[] } };
let ws: string;

beforeAll(async () => {
  tsa = await startTestTsa();
  t = await createTestAppliance({
    env: {
      COFFRE_CFG_seals__tsa__urls: JSON.stringify([tsa.url]),
      COFFRE_CFG_seals__tsa__caFile: tsa.caFile,
      COFFRE_CFG_jobs__enabled: 'false',
    },
  });
  const inv = await t.appliance.identity.accounts.invite(
    { username: 'nora', email: 'nora@example.test', role: 'member' },
    'local:test',
    {},
  );
  caller = {
    actor: { id: `user:${inv.user.id}`, kind: 'user', userId: inv.user.id, username: 'nora', roles: ['member'] },
  };
  ws = (await t.appliance.identity.workspaces.create(caller.actor, { name: 'Archive' }, {})).id;
  work = tempDir('coffre-stamps-');
}, 120_000);
afterAll(async () => {
  await t?.close();
  await tsa?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const put = async (name: string, text: string) =>
  t.appliance.vault.upload(
    caller,
    { kind: 'new', workspaceId: ws, folderId: null, name },
    { stream: Readable.from([Buffer.from(text)]), mediaType: 'text/plain', finish: async () => ({}) },
  );

/** `openssl ts -verify` of a base64 TimeStampResp over `data`, with the TSA's CA alone. */
function tsVerifies(name: string, data: string, tokenB64: string): boolean {
  fs.writeFileSync(path.join(work, `${name}.json`), data);
  fs.writeFileSync(path.join(work, `${name}.tsr`), Buffer.from(tokenB64, 'base64'));
  const r = openssl([
    'ts',
    '-verify',
    '-data',
    path.join(work, `${name}.json`),
    '-in',
    path.join(work, `${name}.tsr`),
    '-CAfile',
    tsa.caFile,
    '-untrusted',
    tsa.certFile,
  ]);
  return r.status === 0 && r.out.includes('Verification: OK');
}

describe('timestamps on destruction certificates and integrity reports', () => {
  it('an integrity report carries a token over its signed bytes; openssl ts -verify accepts it, and refuses a changed report', async () => {
    const doc = await put('a.txt', 'integrity, stamped');
    const r = await t.appliance.vault.verify(caller, doc.id);
    expect(r.ok).toBe(true);
    expect(r.timestamp).toMatchObject({ state: 'granted', token: expect.any(String) });
    const { seal: _s, timestamp, ...body } = r;
    expect(tsVerifies('report', canonicalJson(body), timestamp!.token!)).toBe(true);
    expect(tsVerifies('report-bad', canonicalJson({ ...body, ok: false }), timestamp!.token!)).toBe(false);
    // kept for the records managers, with the exact signed bytes and the same timestamp
    const [kept] = await t.appliance.db.db
      .selectFrom('seal_reports')
      .select(['body', 'signature', 'ok'])
      .orderBy('created_at', 'desc')
      .execute();
    expect(kept).toMatchObject({ body: canonicalJson(body), signature: r.seal!.signature });
  });

  it('a destruction certificate is queued in the destruction and timestamped by the retrier; TSA down: pending until it is back', async () => {
    await tsa.stop();
    const doc = await put('b.txt', 'destroy me');
    await t.appliance.vault.trash(caller, doc.id);
    await t.appliance.vault.purge(caller, doc.id);
    const cert = await t.appliance.db.db
      .selectFrom('records_certificates')
      .select(['id', 'body'])
      .where('document_id', '=', doc.id)
      .executeTakeFirstOrThrow();
    const stamps = () =>
      t.appliance.db.db
        .selectFrom('seal_timestamps')
        .select(['ts_state', 'ts_token'])
        .where('kind', '=', 'destruction-certificate')
        .where('subject', '=', cert.id)
        .execute();
    expect((await stamps()).map((s) => s.ts_state)).toEqual(['pending']);
    // an integrity report made while no TSA answers says so, and waits with the certificate
    const r = await t.appliance.vault.verify(caller, (await put('c.txt', 'report later')).id);
    expect(r.timestamp).toEqual({ state: 'pending' });
    expect((await t.appliance.timestamps.tick()).pending).toBeGreaterThanOrEqual(2);
    await tsa.start();
    const tick = await t.appliance.timestamps.tick();
    expect(tick.pending).toBe(0);
    const [s] = await stamps();
    expect(s!.ts_state).toBe('granted');
    expect(tsVerifies('cert', cert.body, s!.ts_token!)).toBe(true);
    const late = await t.appliance.db.db
      .selectFrom('seal_timestamps')
      .select('ts_state')
      .where('kind', '=', 'integrity-report')
      .execute();
    expect(late.every((x) => x.ts_state === 'granted')).toBe(true);
  });
});
