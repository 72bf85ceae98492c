import cron from 'node-cron';
import { CronExpressionParser } from 'cron-parser';

/**
 * Cron, behind an injected adapter (STYLE.md #6): tests drive the scheduler by hand.
 */
export interface CronAdapter {
  /** calls `fn` at every fire time of `expr` in time zone `tz` until stopped */
  schedule(expr: string, tz: string, fn: () => void): { stop(): void };
}

export const nodeCronAdapter: CronAdapter = {
  schedule(expr, tz, fn) {
    const task = cron.schedule(expr, fn, { timezone: tz, noOverlap: true });
    return { stop: () => void task.stop() };
  },
};

/** Throws a readable error when the expression is invalid. */
export function validateCron(expr: string): void {
  CronExpressionParser.parse(expr, { tz: 'UTC' });
}

/** The last fire time at or before `at` (ms epoch), or null. */
export function previousFire(expr: string, tz: string, at: number): number | null {
  const it = CronExpressionParser.parse(expr, { tz, currentDate: new Date(at + 1) });
  try {
    return it.prev().getTime();
  } catch {
    return null;
  }
}

/** The next fire time strictly after `at` (ms epoch). */
export function nextFire(expr: string, tz: string, at: number): number {
  return CronExpressionParser.parse(expr, { tz, currentDate: new Date(at) }).next().getTime();
}
