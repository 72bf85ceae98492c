/**
 * Frees a buffer's memory at once instead of at V8's next collection, when the buffer is the
 * whole of its ArrayBuffer (a piece read or received for one stream alone) and at least a page:
 * detaching hands the memory back now, so a transfer's garbage never piles up as external memory
 * (which V8 collects only with full mark-compacts). A view into shared memory is left alone. The
 * caller must be the buffer's last user: afterwards it reads as empty.
 */
export function release(b: Buffer): void {
  const ab = b.buffer as ArrayBuffer & { transfer?: (n: number) => ArrayBuffer };
  if (b.byteOffset === 0 && ab.byteLength === b.length && b.length >= 4096 && typeof ab.transfer === 'function')
    ab.transfer(0);
}

/**
 * Ownership of a stream's pieces, carried by the stream instead of a flag in every interface it
 * crosses. `handOver(s)` says: every buffer `s` yields is a piece of its own that nothing else will
 * read, so its last user may `release` it (a raw request body, a cipher stream's output).
 * `handedOver(s)` is how a consumer (a blob store, the encrypting stream) learns it may free what it
 * has written. A stream not handed over is only read.
 */
const handedOverStreams = new WeakSet<object>();
export function handOver<T extends object>(s: T): T {
  handedOverStreams.add(s);
  return s;
}
export const handedOver = (s: object): boolean => handedOverStreams.has(s);
