/**
 * Decrypted names and tags of documents, for listing and search, bounded (least recently used
 * entries go first). An entry is keyed by document id and only used while the row still holds the
 * same ciphertext, so a rename or re-tag can never serve a stale value. Creating a field cipher
 * context costs ~10-100 µs, which at 100,000 documents is seconds per search: this cache makes
 * searches after the first (and any document written since start) cost a map lookup.
 *
 * Plaintext names live only in this process's memory (as they do while a listing is built); the
 * cache is per process and empty at start.
 */
export class NameCache {
  private readonly m = new Map<string, { enc: string; value: string }>();
  constructor(private readonly max: number) {}

  get(id: string, enc: string): string | undefined {
    const e = this.m.get(id);
    if (!e) return undefined;
    if (e.enc !== enc) {
      this.m.delete(id);
      return undefined;
    }
    this.m.delete(id);
    this.m.set(id, e);
    return e.value;
  }

  set(id: string, enc: string, value: string): void {
    if (this.max <= 0) return;
    this.m.delete(id);
    this.m.set(id, { enc, value });
    while (this.m.size > this.max) this.m.delete(this.m.keys().next().value as string);
  }

  delete(id: string): void {
    this.m.delete(id);
  }

  get size(): number {
    return this.m.size;
  }
}
