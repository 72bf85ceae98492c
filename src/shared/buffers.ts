/**
 * Frees a buffer's memory at once instead of at V8's next collection, when the buffer is the
 * whole of its ArrayBuffer (a piece read or received for one stream alone) and at least a page:
 * detaching hands the memory back now, so a transfer's garbage never piles up as external memory
 * (which V8 collects only with full mark-compacts). A view into shared memory is left alone. The
 * caller must be the buffer's last user: afterwards it reads as empty.
 */
export function release(b: Buffer): void {
  const ab = b.buffer as ArrayBuffer & { transfer?: (n: number) => ArrayBuffer };
  if (b.byteOffset === 0 && ab.byteLength === b.length && b.length >= 4096 && typeof ab.transfer === 'function') ab.transfer(0);
}
