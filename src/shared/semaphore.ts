/**
 * Bounds how many async tasks run at once; the others wait in FIFO order. Used to cap concurrent
 * argon2 hashes so a login storm cannot take every core.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error('Semaphore: max must be a positive integer');
  }
  get pending(): number {
    return this.waiting.length;
  }
  get running(): number {
    return this.active;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // hands the slot over: `active` stays the same
      else this.active--;
    }
  }
}
