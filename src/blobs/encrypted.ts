import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobStore } from '../storage/index.js';
import { storageErrors } from '../storage/index.js';
import type { DataKeys } from '../keys/index.js';
import { DEFAULT_CHUNK, TAG_BYTES, headerLength, layout, makeHeader, parseHeader, type ObjectRef } from './format.js';
import { EncryptStream } from './encrypt.js';
import type { Sealer } from './sealer.js';
import { DecryptStream } from './decrypt.js';
import { handOver, handedOver } from '../shared/buffers.js';
import { pump } from '../shared/pump.js';

export type { ObjectRef } from './format.js';

/** Checks a whole read's plaintext digest and size; an error it returns ends the stream (DecryptOptions.verify). */
export type Verify = (got: { sha256: string; size: number }) => Error | undefined;

/**
 * Blobs of at most this many plaintext bytes are sealed and opened on the calling thread even when
 * a sealer is given: a small document costs more to hand to a worker (a chunk buffer allocated and
 * copied, three messages, a thread hop) than to encrypt here, where AES-256-GCM and SHA-256 of
 * 256 KiB take a fraction of a millisecond. Same bytes either way (EncryptStream); figures in
 * bench/RESULTS.md ("peers", small documents).
 */
export const INLINE_MAX_BYTES = 256 * 1024;

export interface StoredBlob {
  /** the store's id of the encrypted blob: record it in the row of the object version */
  blobId: string;
  /** the data key (DEK) it is encrypted under: record it too (destroying it crypto-shreds the blob) */
  keyId: string;
  /** plaintext bytes */
  size: number;
  /** bytes in the store */
  storedSize: number;
  /** SHA-256 (hex) of the plaintext, when `put` was asked for it */
  sha256?: string;
}

/**
 * Encrypted documents over any BlobStore (a wrapper: the store only sees ciphertext).
 * One fresh data key per object version, wrapped by the HSM's KEK; bodies never go through the HSM.
 * Streams run in constant memory (one chunk) whatever the size, and reads can start at any chunk.
 *
 * Order for crash safety (invariant 7): `put` returns once the blob is durable; the caller then
 * commits the row that references `blobId` and `keyId`. A crash in between leaves an orphan blob
 * (collected by `collectOrphans`) and an unused key.
 */
export class EncryptedBlobs {
  constructor(
    readonly store: BlobStore & {
      mtimeMs?(id: string): Promise<number | null>;
      collectTemp?(olderThanMs: number, nowMs?: number): Promise<number>;
    },
    private readonly keys: DataKeys,
    /** `sealer`: chunks are sealed and opened in its worker threads (the server), else on the calling thread */
    private readonly o: { chunkSize?: number; sealer?: Sealer } = {},
  ) {}

  /**
   * Encrypts `plaintext` as version `ref.version` of `ref.objectId` and stores it (write-once).
   * By default under a fresh data key (`doc:<objectId>:v<version>`) and a random blob id; a caller
   * that manages its own keys and ids passes `dek` (a key from DataKeys.create; not wiped here) and
   * `blobId`; `sha256` also hashes the plaintext on its way (in the sealing worker, if any);
   * A `plaintext` handed over (src/shared/buffers.ts) has its pieces freed once encrypted.
   * `maxBytes`: the plaintext is known to be at most this long (a request body framed by its
   * Content-Length); up to INLINE_MAX_BYTES it is sealed on the calling thread.
   * Resolves once the blob is durable; rejects, leaving no blob (and no key it created), when
   * `plaintext` errors.
   */
  async put(
    ref: ObjectRef,
    plaintext: Readable,
    opts: { dek?: { keyId: string; key: Buffer }; blobId?: string; sha256?: boolean; maxBytes?: number } = {},
  ): Promise<StoredBlob> {
    const created = opts.dek ? undefined : await this.keys.create(`doc:${ref.objectId}:v${ref.version}`);
    const { keyId, key } = opts.dek ?? created!;
    const blobId = opts.blobId ?? `b_${crypto.randomBytes(16).toString('base64url')}`;
    const header = makeHeader({ ...ref, keyId, chunkSize: this.o.chunkSize ?? DEFAULT_CHUNK });
    const small = opts.maxBytes !== undefined && opts.maxBytes <= INLINE_MAX_BYTES;
    const enc = new EncryptStream(key, header, {
      ...(this.o.sealer && !small ? { sealer: this.o.sealer } : {}),
      sha256: opts.sha256 === true,
      consumeInput: handedOver(plaintext),
    });
    if (created) key.fill(0);
    pump(plaintext, enc, () => undefined); // an error of either side destroys both; put then rejects
    try {
      const { size: storedSize } = await this.store.put(blobId, handOver(enc));
      return { blobId, keyId, size: enc.plaintextBytes, storedSize, ...(opts.sha256 ? { sha256: enc.sha256 } : {}) };
    } catch (e) {
      if (created) await this.keys.destroy(keyId).catch(() => undefined);
      throw e;
    }
  }

  /** Parses and checks the header; sizes of the stored blob. */
  async describe(
    ref: ObjectRef & { blobId: string },
  ): Promise<{ keyId: string; chunkSize: number; chunks: number; size: number; storedSize: number }> {
    const { header, storedSize } = await this.header(ref);
    const l = layout(header, storedSize);
    return { keyId: header.keyId, chunkSize: header.chunkSize, chunks: l.chunks, size: l.plaintextSize, storedSize };
  }

  /**
   * Plaintext of the blob, or of bytes [start, end) of it: only the chunks covering the range are
   * read and decrypted (a whole read is the range of everything, after the header). The stream errors with KEYS_INTEGRITY at the first chunk that fails, before
   * any byte of that chunk is released. `verify` (whole reads): the plaintext's SHA-256 and size
   * are computed on the way and handed to it before the last piece is released; an error it
   * returns ends the stream instead (DecryptOptions.verify).
   */
  async get(
    ref: ObjectRef & { blobId: string; keyId?: string },
    range?: { start: number; end: number },
    o: { verify?: Verify } = {},
  ): Promise<Readable> {
    if (range) return this.open(ref, range);
    try {
      return await this.open(ref, undefined, o.verify);
    } catch (e) {
      // a whole read reports a bad blob (header, size) as its stream's error, like a bad chunk
      if ((e as { code?: string }).code !== 'KEYS_INTEGRITY') throw e;
      return new Readable({
        read() {
          this.destroy(e as Error);
        },
      });
    }
  }

  private async open(
    ref: ObjectRef & { blobId: string; keyId?: string },
    range?: { start: number; end: number },
    verify?: Verify,
  ): Promise<Readable> {
    const getKey = (id: string) => this.keys.get(id);
    const expect = { objectId: ref.objectId, version: ref.version };
    const { header, storedSize, whole } = await this.header(ref);
    const { chunks, plaintextSize } = layout(header, storedSize);
    const { start, end } = range ?? { start: 0, end: plaintextSize };
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= plaintextSize)) {
      throw storageErrors.badRange(`range [${start}, ${end}) is outside the document (${plaintextSize} bytes)`);
    }
    if (start === end && range) return Readable.from([]);
    const C = header.chunkSize;
    const F = C + TAG_BYTES;
    const H = header.bytes.length;
    const first = start === end ? 0 : Math.floor(start / C);
    const last = start === end ? -1 : Math.floor((end - 1) / C);
    // a range that reaches the last data chunk also reads the end chunk, which vouches that it is
    // last (and so does a whole read, even of an empty blob)
    const toEnd = !range || last === chunks - 1;
    // pieces of one chunk each (ciphertext ‖ tag): DecryptStream opens them without a copy
    const from = H + first * F;
    const to = toEnd ? storedSize : H + (last + 1) * F;
    const src = whole
      ? Readable.from(
          Array.from({ length: Math.ceil((to - from) / F) }, (_, i) =>
            whole.subarray(from + i * F, Math.min(to, from + (i + 1) * F)),
          ),
        )
      : await this.store.get(ref.blobId, { start: from, end: to }, { readSize: F });
    const dec = new DecryptStream({
      expect,
      getKey,
      ...(ref.keyId ? { keyId: ref.keyId } : {}),
      range: { header, firstChunk: first, toEnd, skip: start - first * C, take: end - start },
      consumeInput: true,
      ...(this.o.sealer && end - start > INLINE_MAX_BYTES ? { sealer: this.o.sealer } : {}),
      ...(verify ? { verify } : {}),
    });
    return pump(src, dec, () => undefined);
  }

  /** Deletes the blob; with `keyId`, also destroys its data key (crypto-shredding). */
  async delete(blobId: string, keyId?: string): Promise<void> {
    await this.store.delete(blobId);
    if (keyId) await this.keys.destroy(keyId);
  }

  /**
   * Orphan collection hook: deletes blobs no row references (`isReferenced` asks the owner's
   * database), sparing blobs younger than `graceMs` (their row may still be committing), and
   * temp files of interrupted writes.
   */
  async collectOrphans(
    isReferenced: (blobId: string) => Promise<boolean>,
    graceMs: number,
    nowMs = Date.now(),
  ): Promise<{ deleted: string[]; temp: number }> {
    const deleted: string[] = [];
    for await (const id of this.store.list()) {
      if (await isReferenced(id)) continue;
      const mtime = this.store.mtimeMs ? await this.store.mtimeMs(id) : null;
      if (mtime !== null && nowMs - mtime < graceMs) continue;
      await this.store.delete(id);
      deleted.push(id);
    }
    const temp = this.store.collectTemp ? await this.store.collectTemp(graceMs, nowMs) : 0;
    return { deleted, temp };
  }

  /**
   * The blob's header and stored size. A blob of at most INLINE_MAX_BYTES stored is read whole in
   * the same read (`whole`): its chunks then come from memory instead of a second open of the file.
   */
  private async header(ref: ObjectRef & { blobId: string }) {
    // one read: a small blob whole, else its first bytes (a header is at most MAX_HEADER, src/blobs/format.ts)
    const p = await this.store.prefix(ref.blobId, INLINE_MAX_BYTES);
    if (!p) throw storageErrors.notFound(ref.blobId);
    headerLength(p.bytes);
    return {
      header: parseHeader(p.bytes, ref),
      storedSize: p.size,
      whole: p.size <= INLINE_MAX_BYTES ? p.bytes : undefined,
    };
  }
}
