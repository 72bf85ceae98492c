/**
 * Bounds how many async tasks run at once; the others wait in FIFO order, in two lanes: a task
 * run with `priority` is served before every ordinary waiter, and `reserved` slots are kept for
 * priority tasks only, so a priority task never waits for an ordinary one to finish (argon2:
 * sign-ins from a device or an address the user is known for go before guessers' hashes and
 * always find a free slot, docs/brute-force.md).
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly urgent: (() => void)[] = [];
  constructor(
    private readonly max: number,
    private readonly reserved = 0,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new Error('Semaphore: max must be a positive integer');
    if (!Number.isInteger(reserved) || reserved < 0 || reserved >= max)
      throw new Error('Semaphore: reserved must be an integer from 0 to max - 1');
  }
  get pending(): number {
    return this.waiting.length + this.urgent.length;
  }
  get running(): number {
    return this.active;
  }
  private limit(priority: boolean): number {
    return priority ? this.max : this.max - this.reserved;
  }
  async run<T>(fn: () => Promise<T>, priority = false): Promise<T> {
    if (this.active >= this.limit(priority))
      await new Promise<void>((resolve) => (priority ? this.urgent : this.waiting).push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.dispatch();
    }
  }
  /** starts waiters while there is room: priority ones first, ordinary ones outside the reserved slots */
  private dispatch(): void {
    for (;;) {
      const next =
        this.urgent.length && this.active < this.max
          ? this.urgent.shift()
          : this.waiting.length && this.active < this.max - this.reserved
            ? this.waiting.shift()
            : undefined;
      if (!next) return;
      this.active++; // counted for the waiter it wakes
      next();
    }
  }
}
