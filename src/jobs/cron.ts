import { CronExpressionParser } from 'cron-parser';
import type { Clock } from '../shared/clock.js';

/**
 * Cron, behind an injected adapter: tests drive the scheduler by hand, or through
 * the injected clock.
 */
export interface CronAdapter {
  /** calls `fn` with the slot (ms epoch) at every fire time of `expr` in time zone `tz` until stopped */
  schedule(expr: string, tz: string, fn: (slot?: number) => void): { stop(): void };
}

/**
 * Fire times are local wall-clock times (the appliance's time zone), mapped to instants so that a
 * daylight-saving change neither skips nor repeats a slot:
 * - a time in a spring-forward gap (02:30 on the last Sunday of March in Europe/Paris) fires at
 *   the next valid minute (03:00), once, however many slots fall in the gap;
 * - a time in a repeated hour (02:30 on the last Sunday of October) fires once, at its first
 *   occurrence;
 * - every slot belongs to the local date it names.
 * (node-cron, used before, skipped the gap slot: a backup at the default 02:30 was missed every spring.)
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const formats = new Map<string, Intl.DateTimeFormat>();

/** the local wall-clock time at instant `t` in `tz`, as ms since the epoch of that wall time read as UTC */
function wall(t: number, tz: string): number {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formats.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const x of f.formatToParts(new Date(t))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) + (((t % 1000) + 1000) % 1000);
}

/** The instant of wall time `w` in `tz`: its first occurrence, or the end of the gap it falls in. */
function instantOf(w: number, tz: string): number {
  const offsets = new Set([
    wall(w - 36 * HOUR, tz) - (w - 36 * HOUR),
    wall(w + 36 * HOUR, tz) - (w + 36 * HOUR),
    wall(w, tz) - w,
  ]);
  const valid = [...offsets].map((o) => w - o).filter((i) => wall(i, tz) === w);
  if (valid.length) return Math.min(...valid);
  // in a gap: the first minute whose wall time is past w (local time only moves forward around a gap)
  let lo = w - 26 * HOUR;
  let hi = w + 26 * HOUR;
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
    if (wall(mid, tz) > w) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Throws a readable error when the expression is invalid. */
export function validateCron(expr: string): void {
  CronExpressionParser.parse(expr, { tz: 'UTC' });
}

/** wall times of `expr` (read as UTC) from `from`, forwards or backwards */
function* wallTimes(expr: string, from: number, back: boolean): Generator<number> {
  const it = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: new Date(from) });
  for (let i = 0; i < 100_000; i++) {
    try {
      yield (back ? it.prev() : it.next()).getTime();
    } catch {
      return;
    }
  }
}

/**
 * The UTC offset of `tz` at `at` when it is the same 36 hours either side (no change of offset
 * near `at`): fire times in that span map to instants by that one offset. Null near a change.
 */
function steadyOffset(at: number, tz: string): number | null {
  const o = wall(at, tz) - at;
  const same = (t: number) => wall(t, tz) - t === o;
  return same(at - 36 * HOUR) && same(at + 36 * HOUR) ? o : null;
}

/** The last fire time at or before `at` (ms epoch), or null. */
export function previousFire(expr: string, tz: string, at: number): number | null {
  const o = steadyOffset(at, tz);
  if (o !== null) {
    const w = wallTimes(expr, wall(at, tz) + 1, true).next();
    if (w.done) return null;
    if (w.value - o >= at - 36 * HOUR) return w.value - o;
  }
  // near a change of offset (or further back than the steady span): every wall time, from 3 hours on
  for (const w of wallTimes(expr, wall(at, tz) + 3 * HOUR + 1, true)) {
    const i = instantOf(w, tz);
    if (i <= at) return i;
  }
  return null;
}

/** The next fire time strictly after `at` (ms epoch). */
export function nextFire(expr: string, tz: string, at: number): number {
  const o = steadyOffset(at, tz);
  if (o !== null) {
    const w = wallTimes(expr, wall(at, tz), false).next();
    if (!w.done && w.value - o <= at + 36 * HOUR) return w.value - o;
  }
  for (const w of wallTimes(expr, wall(at, tz) - 3 * HOUR, false)) {
    const i = instantOf(w, tz);
    if (i > at) return i;
  }
  throw new Error(`cron expression "${expr}" never fires after ${new Date(at).toISOString()}`);
}

/**
 * Fires at the times `nextFire` computes, read from `clock`: a timer sleeps until the next fire
 * time, at most `maxSleepMs` at once, and checks the clock again (so a clock that jumps, as the
 * injected one in tests or a resumed VM's, is followed). When it wakes past one or more fire
 * times it fires once, for the latest of them (the scheduler's catch-up covers a longer outage).
 */
export function clockCron(clock: Clock, o: { maxSleepMs?: number } = {}): CronAdapter {
  const maxSleep = o.maxSleepMs ?? MINUTE;
  return {
    schedule(expr, tz, fn) {
      let next = nextFire(expr, tz, clock.nowMs());
      let timer: NodeJS.Timeout | null = null;
      const tick = () => {
        const now = clock.nowMs();
        if (now >= next) {
          const slot = previousFire(expr, tz, now) ?? next;
          next = nextFire(expr, tz, now);
          fn(slot);
        }
        if (timer) arm();
      };
      const arm = () => {
        timer = setTimeout(tick, Math.max(0, Math.min(next - clock.nowMs(), maxSleep)));
        timer.unref();
      };
      arm();
      return {
        stop: () => {
          if (timer) clearTimeout(timer);
          timer = null;
        },
      };
    },
  };
}
