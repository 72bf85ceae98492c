import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKeys, type Keys } from '../../src/keys/index.js';
import { DekCache } from '../../src/keys/dek-cache.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createTestToken } from '../support/softhsm.js';
import { createTestDb } from '../support/db.js';
import { dialect } from '../support/appliance.js';
import { DbDataKeys } from '../../src/keys/data-keys.js';
import { openDatabase } from '../../src/db/index.js';

describe('DekCache', () => {
  it('is bounded by size and TTL, LRU, returns copies and wipes what leaves it', () => {
    const clock = new FakeClock();
    const c = new DekCache(2, 1000, clock);
    const inner = (id: string) => (c as unknown as { m: Map<string, { key: Buffer }> }).m.get(id)?.key;
    const a = crypto.randomBytes(32);
    c.set('a', a);
    const innerA = inner('a')!;
    const got = c.get('a')!;
    expect(got.equals(a)).toBe(true);
    got.fill(0); // the caller wiping its copy does not touch the cache
    expect(c.get('a')!.equals(a)).toBe(true);
    c.set('b', crypto.randomBytes(32));
    c.get('a'); // a is now most recently used
    c.set('c', crypto.randomBytes(32)); // evicts b
    expect(c.get('b')).toBeUndefined();
    expect(c.size).toBe(2);
    clock.advance(1000);
    expect(c.get('a')).toBeUndefined(); // expired
    expect(innerA.equals(Buffer.alloc(32))).toBe(true); // and wiped
    const innerC = inner('c')!;
    c.clear();
    expect(innerC.equals(Buffer.alloc(32))).toBe(true);
    const off = new DekCache(0, 1000, clock);
    off.set('x', a);
    expect(off.get('x')).toBeUndefined();
  });
});

describe(`DataKeys and FieldCipher over a real SoftHSM2 token and ${dialect()}`, () => {
  let keys: Keys;
  let db: Awaited<ReturnType<typeof createTestDb>>;
  const clock = new FakeClock();
  beforeAll(async () => {
    const token = createTestToken();
    db = await createTestDb();
    await (await import('../../src/keys/bootstrap.js')).ensureKek(token.config());
    keys = await openKeys({
      config: token.config({ dekCacheSize: 100, dekCacheTtlMs: 60_000 }),
      db: db.db,
      clock,
      bus: db.bus,
    });
  });
  afterAll(async () => {
    await keys.close();
    await db.destroy();
  });

  it('creates a fresh wrapped DEK per call, stored wrapped with its KEK label, version and mechanism', async () => {
    const a = await keys.dataKeys.create('doc:1:v1');
    const b = await keys.dataKeys.create('doc:1:v2');
    expect(a.keyId).toMatch(/^dk_[A-Za-z0-9_-]{22}$/);
    expect(a.key.equals(b.key)).toBe(false);
    const row = await db.db.selectFrom('data_keys').selectAll().where('id', '=', a.keyId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      scope: 'doc:1:v1',
      kek_label: 'coffre-kek-1',
      kek_version: 1,
      mechanism: 'CKM_AES_KEY_WRAP_PAD',
      name: null,
    });
    expect(Buffer.from(row.wrapped, 'base64').includes(a.key)).toBe(false);
    expect((await keys.dataKeys.get(a.keyId)).equals(a.key)).toBe(true);
  });

  // several nodes share one PostgreSQL database (LISTEN/NOTIFY); a SQLite appliance is one node
  it.runIf(dialect() === 'postgres')(
    "another node's cache drops a key destroyed here at once, and every key after a rotation",
    async () => {
      const other = openDatabase(db.config);
      const node2 = new DbDataKeys(other.db, keys.provider, new DekCache(100, 60_000, clock), clock, other.bus);
      const unfollow = node2.follow();
      try {
        await new Promise((r) => setTimeout(r, 300)); // its LISTEN is in place
        const a = await keys.dataKeys.create('doc:bus:1');
        const b = await keys.dataKeys.create('doc:bus:2');
        expect((await node2.get(a.keyId)).equals(a.key)).toBe(true);
        expect((await node2.get(b.keyId)).equals(b.key)).toBe(true);
        const ops = () => keys.provider.health().operations;
        const before = ops();
        await node2.get(a.keyId); // from its cache: no HSM call
        expect(ops()).toBe(before);
        await keys.dataKeys.destroy(a.keyId);
        // without the message, node 2 would serve it from its cache for its whole TTL (60 s)
        const deadline = Date.now() + 5_000;
        let refused: unknown;
        while (!refused && Date.now() < deadline) {
          refused = await node2.get(a.keyId).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (!refused) await new Promise((r) => setTimeout(r, 50));
        }
        expect(refused).toMatchObject({ code: 'DATA_KEY_NOT_FOUND' });
        // a rotation: every node drops every cached key (the next use unwraps again)
        await keys.dataKeys.announceAll();
        await new Promise((r) => setTimeout(r, 300));
        const b0 = ops();
        expect((await node2.get(b.keyId)).equals(b.key)).toBe(true);
        expect(ops() - b0).toBe(1);
      } finally {
        unfollow();
        await other.close();
      }
    },
  );

  it('serves a hot key from the cache with zero HSM calls; a cold one costs exactly one unwrap', async () => {
    const { keyId, key } = await keys.dataKeys.create('doc:2:v1');
    const ops = () => keys.provider.health().operations;
    let before = ops();
    for (let i = 0; i < 50; i++) expect((await keys.dataKeys.get(keyId)).equals(key)).toBe(true);
    expect(ops() - before).toBe(0);
    keys.dataKeys.wipeCache();
    before = ops();
    const all = await Promise.all(Array.from({ length: 20 }, () => keys.dataKeys.get(keyId)));
    all.forEach((k) => expect(k.equals(key)).toBe(true));
    expect(ops() - before).toBe(1);
    // expiry (fake clock) sends it back to the HSM
    clock.advance(60_000);
    before = ops();
    await keys.dataKeys.get(keyId);
    expect(ops() - before).toBe(1);
  });

  it('destroy crypto-shreds: the key is gone from the table and the cache', async () => {
    const { keyId } = await keys.dataKeys.create('doc:3:v1');
    await keys.dataKeys.destroy(keyId);
    await expect(keys.dataKeys.get(keyId)).rejects.toMatchObject({ code: 'DATA_KEY_NOT_FOUND', httpStatus: 410 });
    await expect(keys.dataKeys.get('not-a-key')).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
  });

  it('a wrapped key altered in the database is detected, nothing is released', async () => {
    const { keyId } = await keys.dataKeys.create('doc:4:v1');
    keys.dataKeys.wipeCache();
    const row = await db.db.selectFrom('data_keys').select('wrapped').where('id', '=', keyId).executeTakeFirstOrThrow();
    const w = Buffer.from(row.wrapped, 'base64');
    w[10]! ^= 4;
    await db.db
      .updateTable('data_keys')
      .set({ wrapped: w.toString('base64') })
      .where('id', '=', keyId)
      .execute();
    await expect(keys.dataKeys.get(keyId)).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    // a key row pointing at another KEK family
    await db.db.updateTable('data_keys').set({ kek_label: 'evil-1' }).where('id', '=', keyId).execute();
    await expect(keys.dataKeys.get(keyId)).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
  });

  it('encrypts fields into self-describing strings bound to their context', async () => {
    const email = `alice.${crypto.randomBytes(4).toString('hex')}@example.org`;
    const ct = await keys.fields.encrypt('users', email, 'users.email:u1');
    expect(ct).toMatch(/^cf1\.dk_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(ct).not.toContain(email);
    expect(await keys.fields.encrypt('users', email, 'users.email:u1')).not.toBe(ct); // random nonce
    expect(await keys.fields.decrypt(ct, 'users.email:u1')).toBe(email);
    // moved to another row or column: refused
    await expect(keys.fields.decrypt(ct, 'users.email:u2')).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    await expect(keys.fields.decrypt(ct, 'users.phone:u1')).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    // altered
    const parts = ct.split('.');
    const raw = Buffer.from(parts[2]!, 'base64url');
    raw[14]! ^= 1;
    await expect(
      keys.fields.decrypt(`${parts[0]}.${parts[1]}.${raw.toString('base64url')}`, 'users.email:u1'),
    ).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    await expect(keys.fields.decrypt('plain text', 'users.email:u1')).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
    // unicode round trip, empty string
    expect(
      await keys.fields.decrypt(
        await keys.fields.encrypt('folders', 'Dossier « été » 📁', 'folders.name:f1'),
        'folders.name:f1',
      ),
    ).toBe('Dossier « été » 📁');
    expect(
      await keys.fields.decrypt(await keys.fields.encrypt('folders', '', 'folders.name:f2'), 'folders.name:f2'),
    ).toBe('');
  });

  it('one long-lived key per field scope, even under concurrent first use', async () => {
    const cts = await Promise.all(
      Array.from({ length: 10 }, (_, i) => keys.fields.encrypt('phones', `+33 6 ${i}`, `users.phone:${i}`)),
    );
    const ids = new Set(cts.map((c) => c.split('.')[1]));
    expect(ids.size).toBe(1);
    const rows = await db.db
      .selectFrom('data_keys')
      .select(['name', 'scope'])
      .where('name', '=', 'field:phones')
      .execute();
    expect(rows).toEqual([{ name: 'field:phones', scope: 'field:phones' }]);
  });

  it('blind indexes are deterministic per purpose, keyed by an HSM-wrapped key', async () => {
    const a = await keys.fields.blindIndex('email', 'alice@example.org');
    expect(a).toMatch(/^bi1\.[A-Za-z0-9_-]{43}$/);
    expect(await keys.fields.blindIndex('email', 'alice@example.org')).toBe(a);
    expect(await keys.fields.blindIndex('email', 'bob@example.org')).not.toBe(a);
    expect(await keys.fields.blindIndex('phone', 'alice@example.org')).not.toBe(a);
    // not a bare hash of the value
    expect(a).not.toContain(crypto.createHash('sha256').update('alice@example.org').digest('base64url'));
    const row = await db.db
      .selectFrom('data_keys')
      .select('kek_label')
      .where('name', '=', 'blind:email')
      .executeTakeFirstOrThrow();
    expect(row.kek_label).toBe('coffre-kek-1');
  });
});
