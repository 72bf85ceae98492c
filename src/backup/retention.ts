/**
 * Retention by weekday slot (docs/disaster-recovery.md): seven slots, Monday..Sunday in the appliance's time zone.
 * A new backup replaces the one that held its slot, only once the new one is verified; anything
 * older than seven days plus a grace period is destroyed even when newer runs failed, because
 * data is never kept past its promised life. Pure functions: the caller acts on the plan.
 */

export const DAY_MS = 86_400_000;
export const RETENTION_DAYS = 7;
export const SLOT_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

const weekdayFormats = new Map<string, Intl.DateTimeFormat>();

/** ISO weekday 1 (Monday) .. 7 (Sunday) of `atMs` in `timeZone`. */
export function weekdaySlot(atMs: number, timeZone: string): number {
  let f = weekdayFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short' });
    weekdayFormats.set(timeZone, f);
  }
  const name = f.format(new Date(atMs)) as (typeof SLOT_NAMES)[number];
  const i = SLOT_NAMES.indexOf(name);
  if (i < 0) throw new Error(`unexpected weekday ${name}`);
  return i + 1;
}

export const slotName = (slot: number): string => SLOT_NAMES[slot - 1] ?? `slot ${slot}`;

/** A complete backup at a target (renamed into place). */
export interface HeldBackup {
  id: string;
  createdAt: number;
  slot: number;
}

export interface RetentionInput {
  held: readonly HeldBackup[];
  /** the backup this run uploaded and verified; null when the run failed */
  verifiedNew: HeldBackup | null;
  now: number;
  graceMs: number;
}

export interface Deletion {
  id: string;
  reason: 'replaced' | 'expired';
  /** expired although no newer backup verified in its slot: worth an alert */
  unreplaced: boolean;
}

/** The longest a backup may live: seven days plus the grace period. */
export const maxAgeMs = (graceMs: number) => RETENTION_DAYS * DAY_MS + graceMs;

/**
 * What to destroy now. Never the freshly verified backup; a slot's older holder only when the
 * new backup of that slot is verified; and every backup past its maximum age.
 */
export function planRetention(i: RetentionInput): Deletion[] {
  const out = new Map<string, Deletion>();
  const limit = maxAgeMs(i.graceMs);
  for (const b of i.held) {
    if (b.id === i.verifiedNew?.id) continue;
    if (i.verifiedNew && b.slot === i.verifiedNew.slot && b.createdAt < i.verifiedNew.createdAt) {
      out.set(b.id, { id: b.id, reason: 'replaced', unreplaced: false });
    } else if (i.now - b.createdAt > limit) {
      const replaced = i.held.some(
        (o) => o.slot === b.slot && o.createdAt > b.createdAt && i.now - o.createdAt <= limit,
      );
      out.set(b.id, { id: b.id, reason: 'expired', unreplaced: !replaced });
    }
  }
  return [...out.values()];
}
