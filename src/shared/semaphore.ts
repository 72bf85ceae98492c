/**
 * Bounds how many async tasks run at once; the others wait in FIFO order, in two lanes: a task
 * run with `priority` is served before every ordinary waiter (argon2: sign-ins from a device or
 * an address the user is known for go before guessers' hashes, docs/brute-force.md).
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly urgent: (() => void)[] = [];
  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error('Semaphore: max must be a positive integer');
  }
  get pending(): number {
    return this.waiting.length + this.urgent.length;
  }
  get running(): number {
    return this.active;
  }
  async run<T>(fn: () => Promise<T>, priority = false): Promise<T> {
    if (this.active >= this.max)
      await new Promise<void>((resolve) => (priority ? this.urgent : this.waiting).push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.urgent.shift() ?? this.waiting.shift();
      if (next)
        next(); // hands the slot over: `active` stays the same
      else this.active--;
    }
  }
}
