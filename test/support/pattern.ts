import crypto from 'node:crypto';
import { Readable, Writable } from 'node:stream';

/**
 * Large test content generated on the fly (no fixtures on disk), cheap to produce and to check:
 * block b (1 MiB) is a seeded random block with (seed, b) stamped in its first 16 bytes, so a
 * reordered, repeated, truncated or foreign block is detected by comparing bytes, with no hash.
 */
export const BLOCK = 1 << 20;

export class Pattern {
  private readonly base: Buffer;
  constructor(readonly seed: number) {
    this.base = crypto.createHash('sha512').update(`pattern-${seed}`).digest();
    const block = Buffer.allocUnsafe(BLOCK);
    const c = crypto.createCipheriv('aes-256-ctr', this.base.subarray(0, 32), this.base.subarray(32, 48));
    c.update(Buffer.alloc(BLOCK)).copy(block);
    this.base = block;
  }

  private cachedIndex = -1;
  private cached: Buffer = Buffer.alloc(0);

  /** block `b` (a shared buffer: copy it before keeping it) */
  block(b: number): Buffer {
    if (b === this.cachedIndex) return this.cached;
    const out = Buffer.from(this.base);
    out.writeUInt32BE(this.seed >>> 0, 0);
    out.writeDoubleBE(b, 4);
    out.writeUInt32BE(0xc0ffee00, 12);
    this.cachedIndex = b;
    this.cached = out;
    return out;
  }

  /** bytes [start, start + len) */
  slice(start: number, len: number): Buffer {
    const parts: Buffer[] = [];
    let p = start;
    while (p < start + len) {
      const b = Math.floor(p / BLOCK);
      const off = p - b * BLOCK;
      const n = Math.min(BLOCK - off, start + len - p);
      parts.push(Buffer.from(this.block(b).subarray(off, off + n)));
      p += n;
    }
    return Buffer.concat(parts);
  }

  /** a stream of `size` bytes */
  stream(size: number, onBytes?: (n: number) => void): Readable {
    let pos = 0;
    const self = this;
    return new Readable({
      highWaterMark: BLOCK,
      read() {
        if (pos >= size) {
          this.push(null);
          return;
        }
        const b = Math.floor(pos / BLOCK);
        const n = Math.min(BLOCK, size - pos);
        const data = Buffer.from(self.block(b).subarray(0, n));
        pos += n;
        onBytes?.(n);
        this.push(data);
      },
    });
  }

  /** sha256 of the first `size` bytes (for small sizes) */
  sha256(size: number): string {
    const h = crypto.createHash('sha256');
    for (let p = 0; p < size; p += BLOCK) h.update(this.slice(p, Math.min(BLOCK, size - p)));
    return h.digest('hex');
  }

  /** a sink that checks every byte against the pattern from `start`; `ok()` after it finished */
  verifier(start = 0): Writable & { bytes: number; mismatchAt: number | null } {
    let pos = start;
    const self = this;
    const w = new Writable({
      highWaterMark: BLOCK,
      write(chunk: Buffer, _e, cb) {
        if (w.mismatchAt === null && !chunk.equals(self.slice(pos, chunk.length))) w.mismatchAt = pos;
        pos += chunk.length;
        w.bytes += chunk.length;
        cb();
      },
    }) as Writable & { bytes: number; mismatchAt: number | null };
    w.bytes = 0;
    w.mismatchAt = null;
    return w;
  }
}
