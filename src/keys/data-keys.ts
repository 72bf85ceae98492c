import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { KeysSchema } from '../db/index.js';
import { scrubDeleted, type ChangeBus } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import { keysErrors } from './errors.js';
import type { DekCache } from './dek-cache.js';
import type { DataKeys, KeyProvider, WrappedKey } from './types.js';

const KEY_ID = /^dk_[A-Za-z0-9_-]{22}$/;
export const isDataKeyId = (s: string): boolean => KEY_ID.test(s);

type Row = KeysSchema['data_keys'];

/** the bus channel of destroyed data keys (src/db/notify.ts) */
const DATA_KEYS_CHANNEL = 'coffre_data_keys';

export const toWrapped = (r: Pick<Row, 'kek_label' | 'kek_version' | 'mechanism' | 'wrapped'>): WrappedKey => ({
  kekLabel: r.kek_label,
  kekVersion: Number(r.kek_version),
  mechanism: r.mechanism,
  wrapped: Buffer.from(r.wrapped, 'base64'),
});

/**
 * Envelope encryption over the `data_keys` table: a fresh AES-256 DEK per call of `create`,
 * wrapped by the current KEK inside the HSM; unwrapped DEKs live in the bounded DekCache, so a
 * hot key costs no HSM call. Every returned key is a copy the caller owns.
 */
export class DbDataKeys implements DataKeys {
  private readonly pending = new Map<string, Promise<Buffer>>();
  private readonly names = new Map<string, string>();

  constructor(
    private readonly db: Kysely<KeysSchema>,
    private readonly provider: KeyProvider,
    private readonly cache: DekCache,
    private readonly clock: Clock,
    private readonly bus?: ChangeBus,
  ) {}

  /**
   * Drops what other nodes destroyed from this node's caches (the plaintext key and the name →
   * id entry), as they announce it on the bus; `*` drops everything (after a rotation, or a
   * gap in the messages). Returns the unsubscribe.
   */
  follow(): () => void {
    return (
      this.bus?.subscribe(DATA_KEYS_CHANNEL, (payload) => {
        if (payload === '*') return this.wipeCache();
        const ids = new Set(payload.split(','));
        for (const id of ids) this.cache.delete(id);
        for (const [name, id] of this.names) if (ids.has(id)) this.names.delete(name);
      }) ?? (() => undefined)
    );
  }

  /** Tells every node to drop its cached data keys (a rotation, a destroyed KEK version). */
  async announceAll(): Promise<void> {
    this.wipeCache();
    await this.bus?.publish(DATA_KEYS_CHANNEL, '*');
  }

  async create(scope: string, name?: string): Promise<{ keyId: string; key: Buffer }> {
    if (!scope || scope.length > 200) throw keysErrors.usage('a data key scope is 1 to 200 characters');
    const key = crypto.randomBytes(32);
    const w = await this.provider.wrap(key);
    const keyId = `dk_${crypto.randomBytes(16).toString('base64url')}`;
    await this.db
      .insertInto('data_keys')
      .values({
        id: keyId,
        name: name ?? null,
        scope,
        kek_label: w.kekLabel,
        kek_version: w.kekVersion,
        mechanism: w.mechanism,
        wrapped: w.wrapped.toString('base64'),
        created_at: this.clock.nowMs(),
        rewrapped_at: null,
      })
      .execute();
    this.cache.set(keyId, key);
    return { keyId, key };
  }

  async get(keyId: string): Promise<Buffer> {
    // not quoted: the value comes from the database, which may be damaged
    if (!isDataKeyId(keyId))
      throw keysErrors.integrity(`a data key id read from the database is malformed (${keyId.length} characters)`);
    const hit = this.cache.get(keyId);
    if (hit) return hit;
    // single flight: concurrent readers of one cold key cost one unwrap
    let p = this.pending.get(keyId);
    if (!p) {
      p = (async () => {
        const row = await this.db
          .selectFrom('data_keys')
          .select(['kek_label', 'kek_version', 'mechanism', 'wrapped'])
          .where('id', '=', keyId)
          .executeTakeFirst();
        if (!row) throw keysErrors.dataKeyGone(keyId);
        const key = await this.provider.unwrap(toWrapped(row));
        this.cache.set(keyId, key);
        // every waiter copies it in a microtask; wipe the shared buffer after they all have
        setImmediate(() => key.fill(0));
        return key;
      })().finally(() => this.pending.delete(keyId));
      this.pending.set(keyId, p);
    }
    return Buffer.from(await p);
  }

  /**
   * Crypto-shredding: deletes the wrapped keys, drops them from the cache, then scrubs the
   * database files (zeroed pages, truncated write-ahead log) so the wrapped bytes are nowhere on
   * disk. Resolves with `scrubbed: false` when a reader kept the log busy: the next destroy (or
   * closing the database) finishes it.
   */
  async destroy(keyIds: string | readonly string[]): Promise<{ scrubbed: boolean }> {
    const ids = typeof keyIds === 'string' ? [keyIds] : [...keyIds];
    for (let i = 0; i < ids.length; i += 500)
      await this.db
        .deleteFrom('data_keys')
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    for (const id of ids) this.cache.delete(id);
    // every other node drops them too (a NOTIFY's payload is at most 8000 bytes: 200 ids of 25 characters)
    for (let i = 0; i < ids.length; i += 200)
      await this.bus?.publish(DATA_KEYS_CHANNEL, ids.slice(i, i + 200).join(','));
    return { scrubbed: (await scrubDeleted(this.db)).done };
  }

  /**
   * The long-lived key called `name` (e.g. `field:users`, `blind:email`), created on first use.
   * Concurrent first uses (even from two nodes) agree on one key thanks to the unique name.
   */
  async named(name: string, scope = name): Promise<string> {
    const known = this.names.get(name);
    if (known) return known;
    const find = () => this.db.selectFrom('data_keys').select('id').where('name', '=', name).executeTakeFirst();
    let row = await find();
    if (!row) {
      try {
        const { keyId, key } = await this.create(scope, name);
        key.fill(0);
        row = { id: keyId };
      } catch (e) {
        row = await find(); // lost the race to another writer: use its key
        if (!row) throw e;
      }
    }
    this.names.set(name, row.id);
    return row.id;
  }

  /**
   * Crypto-shreds the long-lived key called `name` (e.g. a person's `field:user.<id>`): what it
   * encrypted becomes unreadable everywhere. False when there was no such key.
   */
  async destroyNamed(name: string): Promise<{ destroyed: boolean; scrubbed: boolean }> {
    const row = await this.db.selectFrom('data_keys').select('id').where('name', '=', name).executeTakeFirst();
    this.names.delete(name);
    if (!row) return { destroyed: false, scrubbed: (await scrubDeleted(this.db)).done };
    const r = await this.destroy(row.id);
    return { destroyed: true, scrubbed: r.scrubbed };
  }

  /** Wrapped keys per KEK version (status, rotation). */
  async countByVersion(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('data_keys')
      .select(['kek_version'])
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .groupBy('kek_version')
      .execute();
    return Object.fromEntries(rows.map((r) => [String(r.kek_version), Number(r.n)]));
  }

  /** Forget every cached key (wiped). */
  wipeCache(): void {
    this.cache.clear();
    this.names.clear();
  }
}
