import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVaultEnv, upload, type User, type VaultEnv } from './support.js';

let env: VaultEnv;
let owner: User;
let ws: string;

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  owner = await env.user('shreda');
  ws = await env.workspace(owner, 'Shredding');
});
afterAll(async () => env?.close());

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}
/** Files of the data dir that hold any of `needles`. */
const holders = (needles: Buffer[]) =>
  files(env.t.dataDir).filter((f) => needles.some((n) => fs.readFileSync(f).includes(n)));

describe('crypto-shredding leaves no copy of the wrapped key on disk', () => {
  it('after a purge, the wrapped data key bytes are in no file of the data dir (database, WAL, anything else)', async () => {
    const db = env.t.appliance.db.db;
    const docs = [];
    for (let i = 0; i < 3; i++) docs.push(await upload(env, owner, ws, `shred-${i}.txt`, Buffer.from(`content ${i}`)));
    const doomed = docs[1]!;
    const rows = await db
      .selectFrom('vault_versions')
      .innerJoin('data_keys', 'data_keys.id', 'vault_versions.key_id')
      .select(['data_keys.id', 'data_keys.wrapped'])
      .where('vault_versions.document_id', '=', doomed.id)
      .execute();
    expect(rows).toHaveLength(1);
    // stored as base64 text; look for that, and for the raw bytes
    const needles = rows.flatMap((r) => [Buffer.from(r.wrapped, 'utf8'), Buffer.from(r.wrapped, 'base64')]);
    // the scan finds them while the key is alive (the WAL holds them at least)
    expect(holders(needles).length).toBeGreaterThan(0);

    expect((await env.req('DELETE', `/api/v1/documents/${doomed.id}`, { token: owner.token })).status).toBe(200);
    const p = await env.req('POST', `/api/v1/documents/${doomed.id}/purge`, { token: owner.token });
    expect(p.status, p.body.toString()).toBe(200);
    expect(
      await db.selectFrom('data_keys').select('id').where('id', '=', rows[0]!.id).executeTakeFirst(),
    ).toBeUndefined();
    // while the appliance is running (WAL open), not only after a clean close
    expect(holders(needles)).toEqual([]);
    // the other documents are untouched
    for (const d of [docs[0]!, docs[2]!])
      expect((await env.req('GET', `/api/v1/documents/${d.id}/content`, { token: owner.token })).status).toBe(200);
  });
});

describe("a version's SHA-256 is stored encrypted", () => {
  it('the digest of the content is in no file of the data dir; members still see it and downloads are checked against it', async () => {
    const db = env.t.appliance.db.db;
    const content = crypto.randomBytes(4096);
    const hex = crypto.createHash('sha256').update(content).digest('hex');
    const digestNeedles = () => [
      Buffer.from(hex),
      Buffer.from(hex, 'hex'),
      Buffer.from(Buffer.from(hex, 'hex').toString('base64')),
    ];
    const doc = await upload(env, owner, ws, 'guessable.pdf', content);
    expect(doc.sha256).toBe(hex);
    const row = await db
      .selectFrom('vault_versions')
      .selectAll()
      .where('document_id', '=', doc.id)
      .executeTakeFirstOrThrow();
    expect(row.sha256).toBe('');
    expect(row.sha256_enc).toMatch(/^cf1\./);
    expect(holders(digestNeedles())).toEqual([]);
    // members see it; the download carries it and is verified against it
    const info = (await env.req('GET', `/api/v1/documents/${doc.id}`, { token: owner.token })).json();
    expect(info.versions[0].sha256).toBe(hex);
    const got = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: owner.token });
    expect(got.status).toBe(200);
    expect(got.body.equals(content)).toBe(true);
    expect(got.headers['repr-digest']).toBe(`sha-256=:${Buffer.from(hex, 'hex').toString('base64')}:`);
    // the ciphertext is bound to its row: copied onto another version, it fails (500 INTEGRITY), never passes
    const other = await upload(env, owner, ws, 'other.pdf', Buffer.from('other'));
    const otherRow = await db
      .selectFrom('vault_versions')
      .select('id')
      .where('document_id', '=', other.id)
      .executeTakeFirstOrThrow();
    await db.updateTable('vault_versions').set({ sha256_enc: row.sha256_enc }).where('id', '=', otherRow.id).execute();
    expect((await env.req('GET', `/api/v1/documents/${other.id}/content`, { token: owner.token })).status).toBe(500);
  });

  it('rows written before the change keep working and are sealed at start (vault.seal-digests), leaving no clear copy', async () => {
    const db = env.t.appliance.db.db;
    const content = crypto.randomBytes(2048);
    const hex = crypto.createHash('sha256').update(content).digest('hex');
    const doc = await upload(env, owner, ws, 'legacy.pdf', content);
    // as a row written before the migration: the digest in clear, no ciphertext
    await db
      .updateTable('vault_versions')
      .set({ sha256: hex, sha256_enc: null })
      .where('document_id', '=', doc.id)
      .execute();
    expect(
      (await env.req('GET', `/api/v1/documents/${doc.id}`, { token: owner.token })).json().versions[0].sha256,
    ).toBe(hex);
    expect(holders([Buffer.from(hex)]).length).toBeGreaterThan(0);
    const run = await env.t.appliance.scheduler.run<{ sealed: number }>('vault.seal-digests', {
      trigger: 'cli',
      actor: 'local:test',
    });
    expect(run.result).toEqual({ sealed: 1 });
    const row = await db
      .selectFrom('vault_versions')
      .selectAll()
      .where('document_id', '=', doc.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ sha256: '', sha256_enc: expect.stringMatching(/^cf1\./) });
    expect(holders([Buffer.from(hex)])).toEqual([]);
    const got = await env.req('GET', `/api/v1/documents/${doc.id}/content`, { token: owner.token });
    expect(got.body.equals(content)).toBe(true);
    expect(
      (
        await env.t.appliance.scheduler.run<{ sealed: number }>('vault.seal-digests', {
          trigger: 'cli',
          actor: 'local:test',
        })
      ).result,
    ).toEqual({ sealed: 0 });
  });
});
