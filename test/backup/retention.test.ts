import { describe, expect, it } from 'vitest';
import { DAY_MS, planRetention, weekdaySlot, type HeldBackup } from '../../src/backup/retention.js';
import { FakeClock } from '../../src/shared/clock.js';

const H = 3_600_000;

describe('weekday slots', () => {
  it('follows the appliance time zone, not UTC', () => {
    // Monday 2026-11-02 23:30 UTC is already Tuesday in Paris (UTC+1) and still Monday in New York
    const t = Date.UTC(2026, 10, 2, 23, 30);
    expect(weekdaySlot(t, 'UTC')).toBe(1);
    expect(weekdaySlot(t, 'Europe/Paris')).toBe(2);
    expect(weekdaySlot(t, 'America/New_York')).toBe(1);
    expect(weekdaySlot(Date.UTC(2026, 10, 8, 12), 'UTC')).toBe(7);
  });
});

describe('planRetention', () => {
  const grace = 12 * H;
  /** a daily run at 02:30 UTC on a fake clock, each verified: the catalogue after each */
  function dailyRuns(n: number, failed: Set<number> = new Set()) {
    const clock = new FakeClock(Date.UTC(2026, 10, 2, 2, 30)); // a Monday
    let held: HeldBackup[] = [];
    const log: { day: number; deleted: string[] }[] = [];
    for (let day = 1; day <= n; day++) {
      const now = clock.nowMs();
      const nb = failed.has(day) ? null : { id: `b${day}`, createdAt: now, slot: weekdaySlot(now, 'UTC') };
      if (nb) held.push(nb);
      const del = planRetention({ held, verifiedNew: nb, now, graceMs: grace });
      held = held.filter((b) => !del.some((d) => d.id === b.id));
      log.push({ day, deleted: del.map((d) => `${d.id}:${d.reason}${d.unreplaced ? ':unreplaced' : ''}`) });
      clock.advance(DAY_MS);
    }
    return { held, log };
  }

  it('eight daily runs leave exactly seven slots; day 8 replaces day 1', () => {
    const { held, log } = dailyRuns(8);
    expect(held.map((b) => b.id)).toEqual(['b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8']);
    expect(new Set(held.map((b) => b.slot)).size).toBe(7);
    expect(log.slice(0, 7).every((l) => l.deleted.length === 0)).toBe(true);
    expect(log[7]!.deleted).toEqual(['b1:replaced']);
  });

  it('a failed run keeps the old holder of its slot until its promised life ends, then destroys it anyway', () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 2, 2, 30));
    const b1 = { id: 'b1', createdAt: clock.nowMs(), slot: 1 };
    // day 8's run failed: b1 is not replaced …
    expect(planRetention({ held: [b1], verifiedNew: null, now: b1.createdAt + 7 * DAY_MS, graceMs: grace })).toEqual(
      [],
    );
    // … but within the grace it is kept, past it it goes, flagged as unreplaced
    expect(
      planRetention({ held: [b1], verifiedNew: null, now: b1.createdAt + 7 * DAY_MS + grace, graceMs: grace }),
    ).toEqual([]);
    expect(
      planRetention({ held: [b1], verifiedNew: null, now: b1.createdAt + 7 * DAY_MS + grace + 1, graceMs: grace }),
    ).toEqual([{ id: 'b1', reason: 'expired', unreplaced: true }]);
  });

  it('never deletes a slot holder before a newer backup of that slot is verified', () => {
    const { held, log } = dailyRuns(9, new Set([8]));
    // b1 survived day 8 (failed run), then expired on day 9 since nothing replaced it
    expect(log[7]!.deleted).toEqual([]);
    expect(log[8]!.deleted).toEqual(['b1:expired:unreplaced', 'b2:replaced']);
    expect(held.map((b) => b.id)).toEqual(['b3', 'b4', 'b5', 'b6', 'b7', 'b9']);
  });

  it('two backups on the same day: the newer verified one replaces the older', () => {
    const t = Date.UTC(2026, 10, 2, 2, 30);
    const a = { id: 'a', createdAt: t, slot: 1 };
    const b = { id: 'b', createdAt: t + 8 * H, slot: 1 };
    expect(planRetention({ held: [a, b], verifiedNew: b, now: b.createdAt, graceMs: grace })).toEqual([
      { id: 'a', reason: 'replaced', unreplaced: false },
    ]);
    // the fresh backup itself is never planned for deletion, even with a stale clock
    expect(planRetention({ held: [a, b], verifiedNew: a, now: t, graceMs: grace })).toEqual([]);
  });

  it('after a long outage every backup past its life goes, the unreplaced ones flagged', () => {
    const t = Date.UTC(2026, 10, 2, 2, 30);
    const held = [1, 2, 3].map((d) => ({ id: `b${d}`, createdAt: t + (d - 1) * DAY_MS, slot: d }));
    const del = planRetention({ held, verifiedNew: null, now: t + 30 * DAY_MS, graceMs: grace });
    expect(del.map((d) => d.id).sort()).toEqual(['b1', 'b2', 'b3']);
    expect(del.every((d) => d.reason === 'expired' && d.unreplaced)).toBe(true);
  });
});
