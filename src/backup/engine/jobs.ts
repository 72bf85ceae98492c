import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { StorageConfig } from '../../config/sections/storage.js';
import { createBlobStore } from '../../storage/index.js';
import { packArchive, type Member } from '../archive.js';
import { BLOB_PREFIX, type Manifest, type ManifestMember, type PartRecord, type Sidecar } from '../format.js';
import { uploadParts } from '../parts.js';
import { PartPool } from '../pgp/pool.js';
import { discard, readArchive, toFile } from '../reader.js';
import { openTargetRef, type TargetRef } from '../registry.js';
import { collect } from '../../runtime/index.js';

/**
 * The bulk work of a backup, run in a worker thread (./index.ts): archive + encrypt + upload, and
 * download + decrypt + unpack. Its JS heap stays small, so the garbage collector's full
 * collections, which the many transfer buffers trigger, cost little (with the appliance's heap
 * they doubled the CPU per GiB); and the HTTP server's event loop is never blocked by
 * a backup. Everything that needs the HSM, the database or the audit trail stays on the main thread.
 */

export type { TargetRef };

/** An archive member: a file, a blob of the store, or bytes. */
export interface MemberSource {
  name: string;
  size: number;
  file?: string;
  blob?: string;
  bytes?: Uint8Array;
}

export interface WriteJob {
  kind: 'write';
  target: TargetRef;
  storage: StorageConfig;
  dir: string;
  members: MemberSource[];
  manifestBase: Omit<Manifest, 'members'>;
  mtime: number;
  key: Uint8Array;
  prefix: Uint8Array;
  date: number;
  partSize: number;
  threads: number;
  maxInFlight: number;
}
export interface WriteResult {
  parts: PartRecord[];
  plainSize: number;
  archived: ManifestMember[];
}

export interface ReadJob {
  kind: 'read';
  target: TargetRef;
  dir: string;
  sidecar: Sidecar;
  key: Uint8Array;
  threads: number;
  /** member name → file to write it to (0600, must not exist) */
  files: Record<string, string>;
  /** restore: the blob store the blobs go into (the new installation's: a directory, or an S3 bucket) */
  blobStore?: StorageConfig;
}
export interface ReadResult {
  manifest: Manifest;
  blobs: number;
}

export type EngineJob = WriteJob | ReadJob;

/**
 * A young-generation collection after each part: the transfer's temporaries (SSH packets, file
 * chunks, tar slices; about 4× the data in all) are buffers outside the small JS heap, which V8
 * would otherwise let pile up to tens of MB before collecting (peak RSS). About a millisecond each.
 * (A full collection every 16 parts was tried before the buffers were detached and V8's marking
 * triggers were raised (src/runtime/memory.ts), and not kept: more memory and more CPU, see
 * bench/RESULTS.md, "Design measurements". Now mark-compacts are otherwise rare, one every 64 parts bounds what
 * survives.)
 */
let collections = 0;
/** every this many parts, a full collection: a bound on promoted garbage whatever V8's triggers (~10 ms each on this small heap) */
const MAJOR_EVERY = 64;
function collectYoung(): void {
  collect(++collections % MAJOR_EVERY === 0 ? 'major' : 'minor', { expose: true }); // src/runtime/memory.ts
}
export type Report = (bytes: number) => void;

const target = openTargetRef;

export async function runWrite(j: WriteJob, report: Report): Promise<WriteResult> {
  const t = target(j.target);
  const store = j.members.some((m) => m.blob) ? createBlobStore(j.storage) : null;
  const members = (async function* (): AsyncGenerator<Member> {
    for (const m of j.members) {
      yield {
        name: m.name,
        size: m.size,
        ownChunks: !m.bytes,
        open: async () => {
          if (m.file) return fs.createReadStream(m.file, { highWaterMark: 1 << 20 });
          if (m.blob) return store!.get(m.blob);
          return Readable.from([Buffer.from(m.bytes ?? new Uint8Array(0))]);
        },
      };
    }
  })();
  const pool = new PartPool(Buffer.from(j.key), j.prefix, j.date, j.threads);
  j.key.fill(0);
  try {
    const { stream, done } = packArchive(members, j.manifestBase, new Date(j.mtime));
    const up = await uploadParts({
      source: stream,
      target: t,
      dir: j.dir,
      partSize: j.partSize,
      prefixLength: j.prefix.length,
      pool,
      threads: j.threads,
      maxInFlight: j.maxInFlight,
      onPlainBytes: report,
      onPart: collectYoung,
    });
    return { ...up, archived: await done };
  } finally {
    await pool.close();
    await t.close();
  }
}

export async function runRead(j: ReadJob, report: Report): Promise<ReadResult> {
  const t = target(j.target);
  const store = j.blobStore ? createBlobStore(j.blobStore) : null;
  let blobs = 0;
  try {
    const manifest = await readArchive({
      target: t,
      dir: j.dir,
      sidecar: j.sidecar,
      key: j.key,
      label: j.sidecar.backupId,
      threads: j.threads,
      onCipherBytes: (n) => {
        report(n);
        collectYoung();
      },
      onMember: async (name, size, stream) => {
        const f = j.files[name];
        if (f) await toFile(stream, f);
        else if (store && name.startsWith(BLOB_PREFIX)) {
          // write-once and self-authenticating (AEAD under its data key); the manifest hash is checked when the archive ends
          await store.put(name.slice(BLOB_PREFIX.length), stream);
          blobs++;
        } else await discard(name, size, stream);
      },
    });
    return { manifest, blobs };
  } finally {
    j.key.fill(0);
    await t.close();
  }
}
