/**
 * Disk full, on a small tmpfs holding the whole data directory: an upload that does not fit and a
 * database write that does not fit are both refused with 507 STORAGE_FULL naming the directory and
 * its free space, nothing half-written stays, `storage.full` is raised, and the appliance resumes
 * by itself once there is room (no restart).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../vault/support.js';
import { openFaultEnv, type FaultEnv } from './support.js';

const MNT = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-tmpfs-'));
let env: FaultEnv | undefined;
let mounted = false;
beforeAll(async () => {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', MNT]);
  mounted = true;
  // the appliance's data directory (database, blobs) is created on the tmpfs
  const tmp = process.env.TMPDIR;
  process.env.TMPDIR = MNT;
  try {
    env = await openFaultEnv();
  } finally {
    if (tmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmp;
  }
});
afterAll(async () => {
  await env?.close();
  if (mounted) execFileSync('umount', ['-l', MNT]);
  fs.rmSync(MNT, { recursive: true, force: true });
});

const free = () => {
  const s = fs.statfsSync(MNT);
  return s.bavail * s.bsize;
};
/** Fills the file system until `leave` bytes are free (0: until it refuses). */
function fill(name: string, leave: number): string {
  const file = path.join(MNT, name);
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    while (free() > leave) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(4096, free() - leave)));
    if (leave === 0) for (;;) fs.writeSync(fd, chunk, 0, 4096);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

describe('disk full', () => {
  it('an upload that does not fit: 507 STORAGE_FULL with the path and free space, nothing kept, storage.full raised', async () => {
    const e = env!;
    const a = e.t.appliance;
    const blobsDir = a.config.storage.dir;
    expect(blobsDir.startsWith(MNT)).toBe(true);
    const filler = fill('filler-1', 6 * 1024 * 1024);
    const body = Buffer.alloc(10 * 1024 * 1024, 7);
    const r = await e.req('POST', `/api/v1/workspaces/${e.workspace}/documents`, {
      headers: {
        'content-disposition': 'attachment; filename=big.bin',
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
      },
      body,
    });
    expect(r.status, r.text).toBe(507);
    const err = JSON.parse(r.text).error;
    expect(err.code).toBe('STORAGE_FULL');
    expect(err.message).toContain(blobsDir);
    expect(err.message).toMatch(/\d+ bytes free/);
    expect(err.details).toMatchObject({ store: 'blobs', path: blobsDir, freeBytes: expect.any(Number) });
    // nothing half-written
    const db = a.db.db;
    expect(await db.selectFrom('vault_uploads').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('vault_versions').selectAll().execute()).toEqual([]);
    expect(fs.readdirSync(path.join(blobsDir, '.tmp'))).toEqual([]);
    await eventually(
      async () =>
        (await db.selectFrom('alerts').select('kind').where('kind', '=', 'storage.full').execute()).length === 1,
    );

    // room again: the same upload goes through, no restart
    fs.rmSync(filler);
    const ok = await e.req('POST', `/api/v1/workspaces/${e.workspace}/documents`, {
      headers: {
        'content-disposition': 'attachment; filename=big.bin',
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
      },
      body,
    });
    expect(ok.status, ok.text).toBe(201);
  });

  it('a database write that does not fit: 507 STORAGE_FULL (not INTERNAL or AUDIT_UNAVAILABLE), storage.full logged, resumes', async () => {
    const e = env!;
    const a = e.t.appliance;
    const json = { 'content-type': 'application/json' };
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(a.db.db);
    const filler = fill('filler-2', 0);
    let r = await e.req('POST', `/api/v1/workspaces/${e.workspace}/folders`, {
      headers: json,
      body: JSON.stringify({ name: 'f0' }),
    });
    for (let i = 1; r.status === 201 && i < 200; i++)
      r = await e.req('POST', `/api/v1/workspaces/${e.workspace}/folders`, {
        headers: json,
        body: JSON.stringify({ name: `f${i}` }),
      });
    expect(r.status, r.text).toBe(507);
    const err = JSON.parse(r.text).error;
    expect(err.code).toBe('STORAGE_FULL');
    expect(err.message).toContain(path.dirname((a.config.database as { file: string }).file));
    expect(err.details).toMatchObject({ store: 'database' });
    await eventually(async () => e.logs.some((l) => l.includes('ALERT storage.full')));

    fs.rmSync(filler);
    const ok = await e.req('POST', `/api/v1/workspaces/${e.workspace}/folders`, {
      headers: json,
      body: JSON.stringify({ name: 'after' }),
    });
    expect(ok.status, ok.text).toBe(201);
  });
});
