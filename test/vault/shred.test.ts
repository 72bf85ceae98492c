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
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}
/** Files of the data dir that hold any of `needles`. */
const holders = (needles: Buffer[]) => files(env.t.dataDir).filter((f) => needles.some((n) => fs.readFileSync(f).includes(n)));

describe('crypto-shredding leaves no copy of the wrapped key on disk', () => {
  it('after a purge, the wrapped data key bytes are in no file of the data dir (database, WAL, anything else)', async () => {
    const db = env.t.appliance.db.db;
    const docs = [];
    for (let i = 0; i < 3; i++) docs.push(await upload(env, owner, ws, `shred-${i}.txt`, Buffer.from(`content ${i}`)));
    const doomed = docs[1]!;
    const rows = await db.selectFrom('vault_versions').innerJoin('data_keys', 'data_keys.id', 'vault_versions.key_id').select(['data_keys.id', 'data_keys.wrapped']).where('vault_versions.document_id', '=', doomed.id).execute();
    expect(rows).toHaveLength(1);
    // stored as base64 text; look for that, and for the raw bytes
    const needles = rows.flatMap((r) => [Buffer.from(r.wrapped, 'utf8'), Buffer.from(r.wrapped, 'base64')]);
    // the scan finds them while the key is alive (the WAL holds them at least)
    expect(holders(needles).length).toBeGreaterThan(0);

    expect((await env.req('DELETE', `/api/v1/documents/${doomed.id}`, { token: owner.token })).status).toBe(200);
    const p = await env.req('POST', `/api/v1/documents/${doomed.id}/purge`, { token: owner.token });
    expect(p.status, p.body.toString()).toBe(200);
    expect(await db.selectFrom('data_keys').select('id').where('id', '=', rows[0]!.id).executeTakeFirst()).toBeUndefined();
    // while the appliance is running (WAL open), not only after a clean close
    expect(holders(needles)).toEqual([]);
    // the other documents are untouched
    for (const d of [docs[0]!, docs[2]!]) expect((await env.req('GET', `/api/v1/documents/${d.id}/content`, { token: owner.token })).status).toBe(200);
  });
});
