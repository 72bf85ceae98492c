import type { Kysely } from 'kysely';
import type { KeysSchema } from '../db/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { isAppError } from '../shared/errors.js';
import type { JobDefinition, JobProgress } from '../jobs/types.js';
import { keysErrors } from './errors.js';
import { toWrapped } from './data-keys.js';
import type { AdminKeyProvider } from './registry.js';
import type { WrappedKey, WrappedKeyHolder } from './types.js';

const DAY = 86_400_000;

export interface RotationResult {
  /** true when this run finished a rotation a crash (kill -9) interrupted */
  resumed: boolean;
  fromVersions: number[];
  toVersion: number;
  rewrapped: number;
  /** ids of wrapped keys that failed their integrity check (left under their old version) */
  failed: string[];
  retired: number[];
  destroyed: number[];
  /** retired versions due for destruction but kept, with the live keys each still wraps (counted first) */
  kept: KeptVersion[];
  seconds: number;
  keysPerSecond: number;
}

/** A KEK version rotation did not destroy, and why: the live keys it still wraps, per holder. */
export interface KeptVersion {
  version: number;
  /** e.g. { dataKeys: 0, backupKeys: 3 } */
  wrappedKeys: Record<string, number>;
}

export interface KekVersionState {
  version: number;
  label: string;
  state: 'active' | 'retired' | 'destroyed' | 'unknown';
  inHsm: boolean;
  wrappedKeys: number;
  createdAt: string | null;
  retiredAt: string | null;
  destroyAfter: string | null;
  destroyedAt: string | null;
}

/**
 * KEK rotation (`coffre keys rotate`, job `keys.rotate`): data is never re-encrypted.
 *
 * 1. A `kek_rotations` row is written first (state running, target version n+1); then KEK n+1 is
 *    generated in the HSM unless it already is (a kill -9 between the two is resumed).
 * 2. Every data key not under n+1 is re-wrapped, in batches, online: the appliance keeps serving,
 *    and new keys are wrapped under n+1 as soon as each process re-reads the KEK versions. A row
 *    is only updated if it still holds the wrapped key that was read (optimistic), so a concurrent
 *    writer never loses. Progress is counted in the rotation row.
 * 3. A run that finds a running rotation resumes it (re-wrapping is idempotent).
 * 4. Once no key is left under an older version, those versions are retired: they stay in the HSM
 *    (readable) for `keys.retiredKekGraceDays`, then `destroyDue` re-wraps any straggler and
 *    destroys them in the HSM (job `keys.destroy-retired`, daily, and at the end of each rotation).
 * A key that fails its integrity check is reported and left under its old version, and that
 * version is not retired: nothing is destroyed that a key still needs. Nor is a version that still
 * wraps a live key of another holder (a backup's session key, which stays under the version that
 * was current when the backup was taken): those are counted before anything is destroyed, and the
 * version is kept, and said so in the result (`kept`), until they are gone.
 */
export class KeyRotation {
  private readonly holders: WrappedKeyHolder[] = [];

  constructor(
    private readonly db: Kysely<KeysSchema>,
    private readonly provider: AdminKeyProvider,
    private readonly clock: Clock,
    private readonly o: {
      graceDays: number;
      batchSize?: number;
      concurrency?: number;
      log?: Logger | undefined;
      /** after a rotation re-wrapped keys or a KEK version was destroyed: every node drops its cached data keys */
      changed?: () => Promise<void>;
    },
  ) {}

  /** Another holder of wrapped keys (backups): its keys keep their KEK version from being destroyed. */
  addHolder(h: WrappedKeyHolder): void {
    this.holders.push(h);
  }

  /** Makes `kek_versions` list every version the HSM holds (created outside Coffre too). */
  async sync(): Promise<number[]> {
    const versions = await this.provider.kekVersions();
    const known = new Set(
      (await this.db.selectFrom('kek_versions').select('version').execute()).map((r) => Number(r.version)),
    );
    const now = this.clock.nowMs();
    const label = (await this.provider.kekAttributes(versions[versions.length - 1]!)).label.replace(/-\d+$/, '');
    for (const v of versions) {
      if (!known.has(v)) {
        await this.db
          .insertInto('kek_versions')
          .values({
            version: v,
            label: `${label}-${v}`,
            state: 'active',
            created_at: now,
            retired_at: null,
            destroy_after: null,
            destroyed_at: null,
          })
          .onConflict((oc) => oc.column('version').doNothing())
          .execute();
      }
    }
    return versions;
  }

  async rotate(o: {
    actor: string;
    progress?: (p: JobProgress) => void;
    signal?: AbortSignal;
  }): Promise<RotationResult> {
    const t0 = performance.now();
    await this.provider.ready();
    const before = await this.sync();
    const running = await this.db
      .selectFrom('kek_rotations')
      .selectAll()
      .where('state', '=', 'running')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    let target: number;
    let rotationId: number;
    if (running) {
      target = Number(running.to_version);
      rotationId = Number(running.id);
      this.o.log?.warn({ event: 'keys.rotation_resumed', toVersion: target }, 'resuming an interrupted KEK rotation');
    } else {
      target = before[before.length - 1]! + 1;
      const row = await this.db
        .insertInto('kek_rotations')
        .values({
          to_version: target,
          state: 'running',
          actor: o.actor,
          started_at: this.clock.nowMs(),
          finished_at: null,
          rewrapped: 0,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      rotationId = Number(row.id);
    }
    if (!before.includes(target)) {
      const a = await this.provider.createKekVersion(target);
      await this.db
        .insertInto('kek_versions')
        .values({
          version: target,
          label: a.label,
          state: 'active',
          created_at: this.clock.nowMs(),
          retired_at: null,
          destroy_after: null,
          destroyed_at: null,
        })
        .onConflict((oc) => oc.column('version').doNothing())
        .execute();
      this.o.log?.info({ event: 'keys.kek_version_created', version: target }, 'new KEK version created in the HSM');
    }
    const fromVersions = before.filter((v) => v !== target);

    const { rewrapped, failed } = await this.rewrapAll(target, rotationId, o.progress, o.signal);

    let retired: number[] = [];
    if (failed.length === 0) {
      const now = this.clock.nowMs();
      const active = await this.db
        .selectFrom('kek_versions')
        .select('version')
        .where('state', '=', 'active')
        .where('version', '<>', target)
        .execute();
      retired = active.map((r) => Number(r.version));
      if (retired.length) {
        await this.db
          .updateTable('kek_versions')
          .set({ state: 'retired', retired_at: now, destroy_after: now + this.o.graceDays * DAY })
          .where('state', '=', 'active')
          .where('version', '<>', target)
          .execute();
      }
      await this.db
        .updateTable('kek_rotations')
        .set({ state: 'done', finished_at: now })
        .where('id', '=', rotationId)
        .execute();
    }
    const { destroyed, kept } = failed.length === 0 ? await this.destroyDue() : { destroyed: [], kept: [] };
    await this.o.changed?.();
    const seconds = (performance.now() - t0) / 1000;
    if (failed.length) {
      throw keysErrors.integrity(
        `KEK rotation to version ${target} incomplete: ${failed.length} wrapped key(s) failed their integrity check (${failed.slice(0, 5).join(', ')}${failed.length > 5 ? ', …' : ''}); their KEK version was kept`,
      );
    }
    return {
      resumed: !!running,
      fromVersions,
      toVersion: target,
      rewrapped,
      failed,
      retired,
      destroyed,
      kept,
      seconds: Math.round(seconds * 1000) / 1000,
      keysPerSecond: seconds > 0 ? Math.round(rewrapped / seconds) : 0,
    };
  }

  /** Re-wraps every key not under `target`, in id order, batch by batch; returns counts. */
  private async rewrapAll(
    target: number,
    rotationId: number,
    progress?: (p: JobProgress) => void,
    signal?: AbortSignal,
  ): Promise<{ rewrapped: number; failed: string[] }> {
    const batch = this.o.batchSize ?? 200;
    const conc = Math.max(1, this.o.concurrency ?? 4);
    const failed: string[] = [];
    let rewrapped = 0;
    // a few passes catch keys another process wrapped under an old version while we ran
    for (let pass = 0; pass < 3; pass++) {
      const remaining = await this.countNotUnder(target);
      if (remaining - failed.length <= 0) break;
      let total = remaining;
      let after = '';
      for (;;) {
        if (signal?.aborted)
          throw keysErrors.unavailable(
            'KEK rotation interrupted (shutdown); run `coffre keys rotate` again to resume',
            'it resumes where it stopped',
          );
        const rows = await this.db
          .selectFrom('data_keys')
          .select(['id', 'kek_label', 'kek_version', 'mechanism', 'wrapped'])
          .where('kek_version', '<>', target)
          .where('id', '>', after)
          .orderBy('id')
          .limit(batch)
          .execute();
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.id;
        // re-wrap the batch in the HSM (a few at a time), then store it in ONE transaction
        const out: { id: string; old: string; w: WrappedKey }[] = [];
        let next = 0;
        const work = async () => {
          for (let i = next++; i < rows.length; i = next++) {
            const r = rows[i]!;
            if (failed.includes(r.id)) continue;
            try {
              out.push({ id: r.id, old: r.wrapped, w: await this.provider.rewrap(toWrapped(r), target) });
            } catch (e) {
              if (isAppError(e) && e.code === 'KEYS_INTEGRITY') {
                failed.push(r.id);
                this.o.log?.error(
                  { event: 'keys.rewrap_failed', keyId: r.id },
                  'wrapped key failed its integrity check',
                );
                continue;
              }
              throw e;
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(conc, rows.length) }, work));
        const now = this.clock.nowMs();
        await this.db.transaction().execute(async (trx) => {
          for (const { id, old, w } of out) {
            const u = await trx
              .updateTable('data_keys')
              .set({
                kek_label: w.kekLabel,
                kek_version: w.kekVersion,
                mechanism: w.mechanism,
                wrapped: w.wrapped.toString('base64'),
                rewrapped_at: now,
              })
              .where('id', '=', id)
              .where('wrapped', '=', old) // optimistic: a concurrent change wins
              .executeTakeFirst();
            if (Number(u.numUpdatedRows) === 1) rewrapped++;
          }
          await trx
            .updateTable('kek_rotations')
            .set({ rewrapped: (eb) => eb('rewrapped', '+', out.length) })
            .where('id', '=', rotationId)
            .execute();
        });
        total = Math.max(total, rewrapped + failed.length);
        progress?.({
          phase: 'rewrap',
          done: rewrapped + failed.length,
          total,
          percent: Math.round((100 * (rewrapped + failed.length)) / Math.max(1, total)),
          unit: 'keys',
        });
      }
    }
    return { rewrapped, failed };
  }

  private async countNotUnder(version: number): Promise<number> {
    const r = await this.db
      .selectFrom('data_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kek_version', '<>', version)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /**
   * Destroys retired KEK versions whose grace period is over: first re-wraps any key still under
   * them (a straggler written by a node that had not yet seen the new version), then destroys the
   * key inside the HSM. A version a key still needs (integrity failure, a live backup key) is
   * never destroyed: the keys under it are counted first, and it is reported in `kept`.
   */
  async destroyDue(): Promise<{ destroyed: number[]; kept: KeptVersion[] }> {
    const now = this.clock.nowMs();
    const due = await this.db
      .selectFrom('kek_versions')
      .select(['version'])
      .where('state', '=', 'retired')
      .where('destroy_after', '<=', now)
      .execute();
    const kept: KeptVersion[] = [];
    if (due.length === 0) return { destroyed: [], kept };
    const versions = await this.provider.kekVersions();
    const current = versions[versions.length - 1]!;
    const destroyed: number[] = [];
    for (const { version } of due) {
      const v = Number(version);
      if (v === current) continue;
      const left = await this.db
        .selectFrom('data_keys')
        .select(['id', 'kek_label', 'kek_version', 'mechanism', 'wrapped'])
        .where('kek_version', '=', v)
        .execute();
      let stuck = 0;
      for (const r of left) {
        try {
          const w = await this.provider.rewrap(toWrapped(r), current);
          await this.db
            .updateTable('data_keys')
            .set({
              kek_label: w.kekLabel,
              kek_version: w.kekVersion,
              mechanism: w.mechanism,
              wrapped: w.wrapped.toString('base64'),
              rewrapped_at: now,
            })
            .where('id', '=', r.id)
            .where('wrapped', '=', r.wrapped)
            .execute();
        } catch (e) {
          if (!(isAppError(e) && e.code === 'KEYS_INTEGRITY')) throw e;
          stuck++;
        }
      }
      // counted before destroying: every live key still under v, whoever holds it
      const wrappedKeys: Record<string, number> = { dataKeys: await this.countUnder(v) };
      for (const h of this.holders) wrappedKeys[h.name] = await h.countUnder(v);
      if (Object.values(wrappedKeys).some((n) => n > 0)) {
        this.o.log?.error(
          { event: 'keys.kek_not_destroyed', version: v, wrappedKeys, failedIntegrity: stuck },
          'retired KEK version kept: it still wraps live keys',
        );
        kept.push({ version: v, wrappedKeys });
        continue;
      }
      if (versions.includes(v)) await this.provider.destroyKekVersion(v);
      await this.db
        .updateTable('kek_versions')
        .set({ state: 'destroyed', destroyed_at: now })
        .where('version', '=', v)
        .execute();
      this.o.log?.info({ event: 'keys.kek_destroyed', version: v }, 'retired KEK version destroyed in the HSM');
      destroyed.push(v);
    }
    if (destroyed.length) await this.o.changed?.();
    return { destroyed, kept };
  }

  private async countUnder(version: number): Promise<number> {
    const r = await this.db
      .selectFrom('data_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kek_version', '=', version)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Every KEK version: its state here, whether the HSM holds it, and how many keys it wraps. */
  async versions(): Promise<KekVersionState[]> {
    const inHsm = new Set(await this.provider.kekVersions().catch(() => [] as number[]));
    const rows = await this.db.selectFrom('kek_versions').selectAll().execute();
    const counts = new Map(
      (
        await this.db
          .selectFrom('data_keys')
          .select(['kek_version'])
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .groupBy('kek_version')
          .execute()
      ).map((r) => [Number(r.kek_version), Number(r.n)]),
    );
    const all = new Set<number>([...inHsm, ...rows.map((r) => Number(r.version)), ...counts.keys()]);
    const iso = (n: number | null | undefined) =>
      n === null || n === undefined ? null : new Date(Number(n)).toISOString();
    return [...all]
      .sort((a, b) => a - b)
      .map((v) => {
        const r = rows.find((x) => Number(x.version) === v);
        return {
          version: v,
          label: r?.label ?? `?-${v}`,
          state: (r?.state as KekVersionState['state']) ?? 'unknown',
          inHsm: inHsm.has(v),
          wrappedKeys: counts.get(v) ?? 0,
          createdAt: iso(r?.created_at),
          retiredAt: iso(r?.retired_at),
          destroyAfter: iso(r?.destroy_after),
          destroyedAt: iso(r?.destroyed_at),
        };
      });
  }

  /** The jobs of the keys module (registered by main.ts). */
  jobs(): JobDefinition[] {
    return [
      {
        name: 'keys.rotate',
        run: (ctx) => this.rotate({ actor: ctx.actor, progress: (p) => ctx.progress(p), signal: ctx.signal }),
      },
      { name: 'keys.destroy-retired', schedule: '40 3 * * *', catchUp: true, run: async () => this.destroyDue() },
    ];
  }
}
