import { sql, type Kysely } from 'kysely';
import type { MonitoringSchema } from '../db/index.js';

export const MINUTE = 60_000;
export const COARSE = 15 * MINUTE;

export interface Sample {
  /** snake_case, without the `coffre_` prefix Prometheus sees */
  name: string;
  labels?: Record<string, string>;
  value: number;
}

export interface Series {
  name: string;
  labels: Record<string, string>;
  /** [bucket start ms, mean, max] */
  points: [number, number, number][];
}

/** canonical label JSON (sorted keys) */
export const labelKey = (labels: Record<string, string> | undefined): string =>
  JSON.stringify(Object.fromEntries(Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))));

/**
 * Metric points in the database: every sample is merged into its 1-minute bucket (running mean
 * and maximum); `compact` turns 1-minute points older than `fullResolutionMs` into 15-minute points
 * and deletes what is older than the retention. Runs on SQLite and PostgreSQL.
 */
export class MetricStore {
  constructor(private readonly db: Kysely<MonitoringSchema>) {}

  async write(samples: readonly Sample[], at: number): Promise<void> {
    const bucket = Math.floor(at / MINUTE) * MINUTE;
    const finite = samples.filter((s) => Number.isFinite(s.value));
    if (!finite.length) return;
    await this.db.transaction().execute(async (trx) => {
      for (const s of finite) {
        await trx
          .insertInto('metric_samples')
          .values({
            name: s.name,
            labels: labelKey(s.labels),
            res: MINUTE,
            at: bucket,
            value: s.value,
            max: s.value,
            n: 1,
          })
          .onConflict((oc) =>
            oc.columns(['name', 'labels', 'res', 'at']).doUpdateSet((eb) => ({
              value: sql<number>`(metric_samples.value * metric_samples.n + ${s.value}) / (metric_samples.n + 1)`,
              max: eb
                .case()
                .when('metric_samples.max', '<', s.value)
                .then(s.value)
                .else(eb.ref('metric_samples.max'))
                .end(),
              n: eb(eb.ref('metric_samples.n'), '+', 1),
            })),
          )
          .execute();
      }
    });
  }

  /** Downsamples and prunes; returns how many 1-minute points were folded and how many old points deleted. */
  async compact(
    now: number,
    fullResolutionMs: number,
    retentionMs: number,
  ): Promise<{ folded: number; deleted: number }> {
    const cutoff = Math.floor((now - fullResolutionMs) / COARSE) * COARSE;
    return this.db.transaction().execute(async (trx) => {
      const old = await trx
        .selectFrom('metric_samples')
        .selectAll()
        .where('res', '=', MINUTE)
        .where('at', '<', cutoff)
        .execute();
      const agg = new Map<string, { name: string; labels: string; at: number; sum: number; max: number; n: number }>();
      for (const r of old) {
        const at = Math.floor(Number(r.at) / COARSE) * COARSE;
        const k = `${r.name}\u0000${r.labels}\u0000${at}`;
        const a = agg.get(k) ?? { name: r.name, labels: r.labels, at, sum: 0, max: -Infinity, n: 0 };
        a.sum += Number(r.value) * Number(r.n);
        a.max = Math.max(a.max, Number(r.max));
        a.n += Number(r.n);
        agg.set(k, a);
      }
      for (const a of agg.values()) {
        const prev = await trx
          .selectFrom('metric_samples')
          .selectAll()
          .where('name', '=', a.name)
          .where('labels', '=', a.labels)
          .where('res', '=', COARSE)
          .where('at', '=', a.at)
          .executeTakeFirst();
        if (prev) {
          const n = Number(prev.n) + a.n;
          await trx
            .updateTable('metric_samples')
            .set({
              value: (Number(prev.value) * Number(prev.n) + a.sum) / n,
              max: Math.max(Number(prev.max), a.max),
              n,
            })
            .where('name', '=', a.name)
            .where('labels', '=', a.labels)
            .where('res', '=', COARSE)
            .where('at', '=', a.at)
            .execute();
        } else {
          await trx
            .insertInto('metric_samples')
            .values({ name: a.name, labels: a.labels, res: COARSE, at: a.at, value: a.sum / a.n, max: a.max, n: a.n })
            .execute();
        }
      }
      await trx.deleteFrom('metric_samples').where('res', '=', MINUTE).where('at', '<', cutoff).execute();
      const del = await trx
        .deleteFrom('metric_samples')
        .where('at', '<', now - retentionMs)
        .executeTakeFirst();
      return { folded: old.length, deleted: Number(del.numDeletedRows) };
    });
  }

  /**
   * Points of the named metrics since `from`: 1-minute points, or 15-minute points when `coarse`
   * (1-minute points of the last day are folded into 15-minute buckets on the fly).
   */
  async query(names: readonly string[], from: number, coarse: boolean): Promise<Series[]> {
    if (!names.length) return [];
    const rows = await this.db
      .selectFrom('metric_samples')
      .selectAll()
      .where('name', 'in', [...names])
      .where('at', '>=', from)
      .where('res', 'in', coarse ? [MINUTE, COARSE] : [MINUTE])
      .orderBy('at')
      .execute();
    const series = new Map<
      string,
      { name: string; labels: string; buckets: Map<number, { sum: number; n: number; max: number }> }
    >();
    for (const r of rows) {
      const k = `${r.name}\u0000${r.labels}`;
      const s = series.get(k) ?? { name: r.name, labels: r.labels, buckets: new Map() };
      const at = coarse ? Math.floor(Number(r.at) / COARSE) * COARSE : Number(r.at);
      const b = s.buckets.get(at) ?? { sum: 0, n: 0, max: -Infinity };
      b.sum += Number(r.value) * Number(r.n);
      b.n += Number(r.n);
      b.max = Math.max(b.max, Number(r.max));
      s.buckets.set(at, b);
      series.set(k, s);
    }
    return [...series.values()].map((s) => ({
      name: s.name,
      labels: JSON.parse(s.labels) as Record<string, string>,
      points: [...s.buckets]
        .sort(([a], [b]) => a - b)
        .map(([at, b]) => [at, round(b.sum / b.n), round(b.max)] as [number, number, number]),
    }));
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;
