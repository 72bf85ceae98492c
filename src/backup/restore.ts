import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { CONFIG_FILE, validateConfig } from '../config/index.js';
import { migrateToLatest, openDatabase, sqliteToPostgres, type BackupSchema } from '../db/index.js';
import type { PostgresConfig } from '../config/sections/database.js';
import type { StorageConfig } from '../config/sections/storage.js';
import { makeSelfSigned } from '../http/index.js';
import { DataKeyFieldCipher, type DataKeys, type KeyProvider } from '../keys/index.js';
import { EncryptedBlobs } from '../blobs/index.js';
import { createBlobStore } from '../storage/index.js';
import { referencedBlobIds, sealedBlobs, versionDigestContext } from '../vault/index.js';
import type { Logger } from '../shared/logger.js';
import { backupErrors, BackupError } from './errors.js';
import { AUDIT_MEMBER, CONFIG_MEMBER, DB_MEMBER, isBackupId, MARKER, type Manifest } from './format.js';
import { openSidecar, readSidecar } from './reader.js';
import { runEngine, type ReadResult, type TargetRef } from './engine/index.js';
import { integrityProblems } from './snapshot.js';
import type { BackupTarget } from './targets/types.js';
import type { Progress } from './types.js';
import { writeFileAtomic } from '../shared/atomic-file.js';

export interface RestoreOptions {
  /** the target, for listing and the sidecar */
  target: BackupTarget;
  /** the same target as the backup engine's worker reaches it (bulk download) */
  targetRef: TargetRef;
  /** decryption worker threads */
  threads?: number;
  /** a backup id, or `latest` (the newest complete backup at the target) */
  backup: string;
  /** the new data directory: absent or empty */
  dataDir: string;
  /** the HSM (the same partition, or its replica at the secondary site) */
  keys: KeyProvider;
  /** the `keys` section written into the restored config.json (how the new appliance reaches that HSM) */
  keysSection: Record<string, unknown>;
  /** refuse a backup of another appliance */
  applianceId?: string;
  log: Logger;
  progress?: Progress;
  /** stops the download (the data directory is cleaned up as on any failure) */
  signal?: AbortSignal;
  /**
   * restore into this PostgreSQL database (new and empty) rather than a SQLite file in the data
   * directory: the archive's database, checked, is copied into it in one transaction
   */
  postgres?: PostgresConfig;
  /** the new installation's blob store (an S3 bucket, its paths absolute); default: `blobs/` in the data directory */
  storage?: StorageConfig;
}

export interface RestoreReport {
  backupId: string;
  applianceId: string;
  createdAt: string;
  dataDir: string;
  members: number;
  blobs: number;
  documents: number;
  versions: number;
  plainSize: number;
  durationMs: number;
  schemaVersion: string;
  /** what the backup recorded at snapshot time */
  expected: Manifest['counts'];
  nextSteps: string[];
}

/**
 * Builds a working installation from a backup (`coffre restore`, the restore drill). Everything
 * is staged and checked before it is put in place: every part against the sidecar, every member
 * against the manifest, `PRAGMA integrity_check`, every blob the database references present.
 * `config.json` is written last (its presence means "an appliance is here"); on any failure
 * everything created in the data directory is removed.
 */
export async function restoreInto(o: RestoreOptions): Promise<RestoreReport> {
  const t0 = performance.now();
  const dir = path.resolve(o.dataDir);
  let created = false;
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw backupErrors.usage(`${dir} is not a directory`);
    if (fs.readdirSync(dir).length)
      throw new BackupError('DATA_DIR_NOT_EMPTY', `${dir} is not empty; nothing was changed`, {
        exitCode: 2,
        hint: 'restore into an empty or absent directory',
      });
  } else {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    created = true;
  }
  const cleanup = () => {
    if (created) fs.rmSync(dir, { recursive: true, force: true });
    else for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  };
  try {
    const id = await pickBackup(o.target, o.backup);
    const { sidecar } = await readSidecar(o.target, id, id);
    const key = await openSidecar(
      o.keys,
      sidecar,
      { backupId: id, ...(o.applianceId ? { applianceId: o.applianceId } : {}) },
      id,
    );
    const stage = path.join(dir, '.restore');
    fs.mkdirSync(stage, { mode: 0o700 });
    // the new installation's blob store: a directory in it, or the store the operator configured (S3)
    const storeCfg: StorageConfig = o.storage ?? { type: 'fs', dir: path.join(dir, 'blobs') };
    const store = createBlobStore(storeCfg);
    const total = sidecar.parts.reduce((s, p) => s + p.size, 0);
    let read: ReadResult;
    try {
      // download, decrypt, unpack and check in the backup engine's worker thread
      read = await runEngine(
        {
          kind: 'read',
          target: o.targetRef,
          dir: id,
          sidecar,
          key: new Uint8Array(key),
          threads: o.threads ?? 1,
          files: {
            [DB_MEMBER]: path.join(stage, 'coffre.db'),
            [CONFIG_MEMBER]: path.join(stage, 'config.json'),
            [AUDIT_MEMBER]: path.join(stage, 'audit-checkpoints.json'),
          },
          blobStore: storeCfg,
        },
        (n) =>
          o.progress?.({
            phase: 'download',
            done: n,
            total,
            percent: total ? Math.round((n / total) * 1000) / 10 : 100,
            unit: 'bytes',
          }),
        o.signal,
      );
    } finally {
      key.fill(0);
    }
    const { manifest, blobs } = read;
    o.progress?.({ phase: 'finish', percent: 0 });
    for (const need of ['coffre.db', 'config.json']) {
      if (!fs.existsSync(path.join(stage, need))) throw backupErrors.integrity(`${id}: the archive has no ${need}`);
    }
    // the database, checked, then completed with this code's migrations
    const dbFile = path.join(dir, 'coffre.db');
    fs.renameSync(path.join(stage, 'coffre.db'), dbFile);
    const h = openDatabase({ type: 'sqlite', file: dbFile, busyTimeoutMs: 5000 }, { mustExist: true });
    let documents = 0;
    let versions = 0;
    try {
      const problems = await integrityProblems(h.db);
      if (problems.length)
        throw backupErrors.integrity(
          `${id}: the restored database fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`,
        );
      await migrateToLatest(h.db);
      for await (const b of referencedBlobIds(h.db)) {
        if (!(await store.stat(b)))
          throw backupErrors.integrity(`${id}: the restored database references blob ${b}, absent from the backup`);
      }
      documents = Number(
        (
          await h.db
            .selectFrom('vault_documents')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      versions = Number(
        (
          await h.db
            .selectFrom('vault_versions')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      if (o.postgres) await loadIntoPostgres(h.db, o.postgres);
    } finally {
      await h.close();
    }
    if (o.postgres) fs.rmSync(dbFile);
    // the configuration: as backed up, with this site's HSM, local paths and a fresh certificate
    const archived = JSON.parse(fs.readFileSync(path.join(stage, 'config.json'), 'utf8')) as Record<string, unknown>;
    if (archived.applianceId !== sidecar.applianceId)
      throw backupErrors.integrity(`${id}: the archived configuration is of another appliance`);
    const http = (archived.http ?? {}) as { hostnames?: string[] };
    // backups stay off until the operator has declared this site and a target far from it
    const raw = {
      ...archived,
      keys: o.keysSection,
      database: o.postgres ?? { type: 'sqlite', file: 'coffre.db' },
      storage: o.storage ?? { type: 'fs', dir: 'blobs' },
      tls: {},
      backup: { ...((archived.backup as object) ?? {}), enabled: false },
    };
    const cert = await makeSelfSigned(http.hostnames ?? []);
    fs.mkdirSync(path.join(dir, 'tls'), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'tls', 'cert.pem'), cert.certPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'tls', 'key.pem'), cert.keyPem, { mode: 0o600 });
    validateConfig(raw, dir, {}, 'restored configuration');
    fs.mkdirSync(path.join(dir, 'restore'), { mode: 0o700 });
    if (fs.existsSync(path.join(stage, 'audit-checkpoints.json')))
      fs.renameSync(path.join(stage, 'audit-checkpoints.json'), path.join(dir, 'restore', 'audit-checkpoints.json'));
    fs.writeFileSync(
      path.join(dir, 'restore', 'manifest.json'),
      JSON.stringify({ ...manifest, members: manifest.members.length }, null, 1) + '\n',
      { mode: 0o600 },
    );
    fs.rmSync(stage, { recursive: true, force: true });
    writeFileAtomic(path.join(dir, CONFIG_FILE), JSON.stringify(raw, null, 2) + '\n');
    o.progress?.({ phase: 'finish', percent: 100 });
    return {
      backupId: id,
      applianceId: sidecar.applianceId,
      createdAt: sidecar.createdAt,
      dataDir: dir,
      members: manifest.members.length,
      blobs,
      documents,
      versions,
      plainSize: sidecar.plainSize,
      durationMs: Math.round(performance.now() - t0),
      schemaVersion: manifest.schemaVersion,
      expected: manifest.counts,
      nextSteps: [
        `start it: coffre serve --data-dir ${dir}`,
        `it presents a new self-signed certificate (${path.join(dir, 'tls', 'cert.pem')}, SHA-256 ${cert.fingerprint256}); install the organisation's certificate in tls/ if it has one`,
        'switch the DNS name users reach (http.publicUrl) to this machine, or move the address',
        'backups are OFF on this copy: set site (lat, lon) in config.json to where this machine stands, register a target far enough from it (coffre backup target add), then set backup.enabled to true',
        'stop the old appliance for good if it still runs: two appliances must never serve the same data',
      ],
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}

/** The checked, migrated SQLite database of a backup into a new PostgreSQL database (src/db/copy.ts). */
async function loadIntoPostgres(from: Kysely<BackupSchema>, cfg: PostgresConfig): Promise<void> {
  const pg = openDatabase(cfg);
  try {
    await migrateToLatest(pg.db);
    await sqliteToPostgres(from, pg.db);
  } finally {
    await pg.close();
  }
}

/** `latest` → the newest complete backup at the target (renamed into place: never a `.tmp-`). */
export async function pickBackup(t: BackupTarget, wanted: string): Promise<string> {
  // the marker is not required: a copy of the backups (cp without dot files) restores too
  const entries = await t.list('');
  const ids = entries
    .filter((e) => e.type === 'dir' && isBackupId(e.name))
    .map((e) => e.name)
    .sort();
  if (!ids.length && !entries.some((e) => e.name === MARKER))
    throw backupErrors.usage(
      `${t.display} is not a Coffre backup target (no ${MARKER}, no backup)`,
      'check the URL: it names the directory that holds <id>/ directories',
    );
  if (wanted === 'latest') {
    const id = ids[ids.length - 1];
    if (!id) throw backupErrors.notFoundBackup(`latest (${t.display} holds no complete backup)`);
    return id;
  }
  if (!isBackupId(wanted))
    throw backupErrors.usage(
      `not a backup id: ${JSON.stringify(wanted)}`,
      'ids look like 20261102T023000Z-1a2b3c; `latest` takes the newest',
    );
  if (!ids.includes(wanted)) throw backupErrors.notFoundBackup(`${wanted} at ${t.display}`);
  return wanted;
}

/** Read-only data keys over a restored database, unwrapped by the HSM (restore drill). */
class RestoredDataKeys implements DataKeys {
  constructor(
    private readonly db: Kysely<BackupSchema>,
    private readonly keys: KeyProvider,
  ) {}
  async create(): Promise<never> {
    throw new Error('read-only data keys');
  }
  async destroy(): Promise<never> {
    throw new Error('read-only data keys');
  }
  async get(keyId: string): Promise<Buffer> {
    const r = await this.db
      .selectFrom('data_keys')
      .select(['kek_label', 'kek_version', 'mechanism', 'wrapped'])
      .where('id', '=', keyId)
      .executeTakeFirst();
    if (!r) throw backupErrors.integrity(`data key ${keyId} is absent from the restored database`);
    return this.keys.unwrap({
      kekLabel: r.kek_label,
      kekVersion: Number(r.kek_version),
      mechanism: r.mechanism,
      wrapped: Buffer.from(r.wrapped, 'base64'),
    });
  }
}

/**
 * The restore drill's document check: decrypts `samples` random document versions of the
 * restored installation with the HSM and compares their SHA-256 with the recorded one.
 */
export async function sampleDocuments(
  dataDir: string,
  keys: KeyProvider,
  samples: number,
): Promise<{ checked: number; documents: number; versions: number }> {
  const h = openDatabase(
    { type: 'sqlite', file: path.join(dataDir, 'coffre.db'), busyTimeoutMs: 5000 },
    { mustExist: true },
  );
  try {
    const dataKeys = new RestoredDataKeys(h.db, keys);
    const blobs = sealedBlobs(
      new EncryptedBlobs(createBlobStore({ type: 'fs', dir: path.join(dataDir, 'blobs') }), dataKeys),
    );
    // recorded digests are field ciphertexts (older rows: hex in clear until sealed)
    const fields = new DataKeyFieldCipher({ get: (id) => dataKeys.get(id), named: () => dataKeys.create() });
    const documents = Number(
      (
        await h.db
          .selectFrom('vault_documents')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    const versions = Number(
      (
        await h.db
          .selectFrom('vault_versions')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    const ids = await h.db
      .selectFrom('vault_versions')
      .select(['id', 'blob_id', 'key_id', 'sha256', 'sha256_enc', 'size'])
      .orderBy(sql`random()`)
      .limit(samples)
      .execute();
    for (const v of ids) {
      const hash = crypto.createHash('sha256');
      let n = 0;
      for await (const c of (await blobs.read(v.blob_id, v.key_id)) as AsyncIterable<Buffer>) {
        hash.update(c);
        n += c.length;
      }
      const recorded =
        v.sha256_enc !== null ? await fields.decrypt(v.sha256_enc, versionDigestContext(v.id)) : v.sha256;
      if (n !== Number(v.size) || hash.digest('hex') !== recorded)
        throw backupErrors.integrity(`restored document blob ${v.blob_id} does not decrypt to its recorded SHA-256`);
    }
    return { checked: ids.length, documents, versions };
  } finally {
    await h.close();
  }
}
