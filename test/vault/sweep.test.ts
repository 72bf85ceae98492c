/**
 * Leftovers of a killed upload (temp file, blob, data key, pending row) are swept at start and
 * every hour, with the daily collection's safety rules: nothing younger than
 * `vault.pendingUploadGraceMs`, nothing referenced.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { CronAdapter } from '../../src/jobs/index.js';
import { FakeClock } from '../../src/shared/clock.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { serveAppliance, type Served } from './served.js';
import { eventually } from './support.js';

const GRACE = 1500;

describe('a killed upload', () => {
  let s: Served | undefined;
  afterAll(async () => s?.close());

  it(
    'leaves nothing once the appliance starts again past the grace (not only at the daily collection)',
    { timeout: 120_000 },
    async () => {
      s = await serveAppliance({ COFFRE_CFG_vault__pendingUploadGraceMs: String(GRACE) });
      const srv = s;
      const cfg = loadConfig(srv.dataDir);
      const tmpDir = path.join(cfg.storage.dir, '.tmp');
      // an upload that sends 24 MiB and then waits: its temp file, pending row and data key exist
      const url = new URL(`/api/v1/workspaces/${srv.workspace}/documents`, srv.url);
      const req = https.request(url, {
        method: 'POST',
        ca: srv.ca,
        headers: {
          'content-disposition': 'attachment; filename=doomed.bin',
          authorization: `Bearer ${srv.token}`,
          'content-type': 'application/octet-stream',
        },
      });
      req.on('error', () => undefined);
      const chunk = Buffer.alloc(1024 * 1024, 9);
      for (let i = 0; i < 24; i++) req.write(chunk);
      const peek = () => {
        const db = new SQLite((cfg.database as { file: string }).file, { readonly: true });
        try {
          return {
            uploads: db.prepare('select blob_id, key_id from vault_uploads').all() as {
              blob_id: string;
              key_id: string;
            }[],
            keys: (db.prepare('select id from data_keys').all() as { id: string }[]).map((r) => r.id),
            referenced: (db.prepare('select blob_id from vault_versions').all() as { blob_id: string }[]).map(
              (r) => r.blob_id,
            ),
          };
        } finally {
          db.close();
        }
      };
      await eventually(
        async () =>
          peek().uploads.length === 1 &&
          fs.readdirSync(tmpDir).some((f) => fs.statSync(path.join(tmpDir, f)).size > 8 * 1024 * 1024),
        60_000,
      );
      const pending = peek().uploads[0]!;
      await srv.kill('SIGKILL');
      req.destroy();
      await new Promise((r) => setTimeout(r, GRACE + 1500));

      await srv.start();
      await eventually(async () => peek().uploads.length === 0 && fs.readdirSync(tmpDir).length === 0, 20_000);
      const after = peek();
      expect(after.keys).not.toContain(pending.key_id);
      const stored: string[] = [];
      for (const shard of fs.readdirSync(cfg.storage.dir))
        if (shard !== '.tmp') stored.push(...fs.readdirSync(path.join(cfg.storage.dir, shard)));
      expect(stored).not.toContain(pending.blob_id);
      await eventually(async () => srv.logs().includes('"event":"vault.uploads_swept"'));
    },
  );
});

/** Cron triggers fired by the test. */
class ManualCron implements CronAdapter {
  tasks: { expr: string; fn: () => void }[] = [];
  schedule(expr: string, _tz: string, fn: () => void) {
    const t = { expr, fn };
    this.tasks.push(t);
    return { stop: () => (this.tasks = this.tasks.filter((x) => x !== t)) };
  }
}

describe('the hourly sweep', () => {
  let t: TestAppliance | undefined;
  afterAll(async () => t?.close());

  it('removes leftovers past the grace every hour, keeps young and referenced ones', async () => {
    const clock = new FakeClock(Date.now());
    const cron = new ManualCron();
    t = await createTestAppliance({
      clock,
      cron,
      env: { COFFRE_CFG_vault__pendingUploadGraceMs: String(15 * 60_000) },
    });
    const a = t.appliance;
    const db = a.db.db;
    const store = a.blobs.store;
    const tmpDir = path.join(a.config.storage.dir, '.tmp');
    await a.scheduler.start();
    expect(a.scheduler.list()).toContainEqual({ name: 'vault.sweep-uploads', schedule: '7 * * * *' });
    // minute 7 of every hour (other jobs may share it: all of them fire, as they would)
    const hourly = cron.tasks.filter((x) => x.expr === '7 * * * *');

    // what a process killed mid-upload leaves: pending row + key + blob + temp file, and a key
    // created just before its pending row could commit
    const leftovers = async () => {
      const doc = crypto.randomUUID();
      const blobId = `${crypto.randomBytes(16).toString('hex')}_doc`;
      const k = await a.keys.dataKeys.create(`doc:${doc}:${blobId}`);
      await db
        .insertInto('vault_uploads')
        .values({
          blob_id: blobId,
          key_id: k.keyId,
          workspace_id: crypto.randomUUID(),
          started_at: clock.nowMs(),
          expires_at: clock.nowMs() + 15 * 60_000,
        })
        .execute();
      await store.put(blobId, Readable.from([Buffer.alloc(4096, 1)]));
      const tmp = path.join(tmpDir, `${blobId}.dead`);
      fs.writeFileSync(tmp, 'partial');
      fs.utimesSync(tmp, new Date(clock.nowMs()), new Date(clock.nowMs()));
      const lone = await a.keys.dataKeys.create(
        `doc:${crypto.randomUUID()}:${crypto.randomBytes(16).toString('hex')}_doc`,
      );
      return { blobId, keyId: k.keyId, tmp, loneKey: lone.keyId };
    };
    const keyExists = async (id: string) =>
      (await db.selectFrom('data_keys').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
    const named = await a.keys.dataKeys.named('test:named');
    const foreign = (await a.keys.dataKeys.create(`doc:${crypto.randomUUID()}:v1`)).keyId;
    const old = await leftovers();
    clock.advance(16 * 60_000);
    const young = await leftovers();
    const runs = async () =>
      (await a.scheduler.runs('vault.sweep-uploads')).filter((r) => r.outcome === 'succeeded').length;
    const before = await runs();
    for (const t of hourly) t.fn();
    await eventually(async () => (await runs()) > before);

    expect(await db.selectFrom('vault_uploads').select('blob_id').execute()).toEqual([{ blob_id: young.blobId }]);
    expect(await store.stat(old.blobId)).toBeNull();
    expect(fs.existsSync(old.tmp)).toBe(false);
    expect(await keyExists(old.keyId)).toBe(false);
    expect(await keyExists(old.loneKey)).toBe(false);
    // younger than the grace: kept
    expect(await store.stat(young.blobId)).not.toBeNull();
    expect(fs.existsSync(young.tmp)).toBe(true);
    expect(await keyExists(young.keyId)).toBe(true);
    expect(await keyExists(young.loneKey)).toBe(true);
    // named keys (field encryption) and keys of other scopes are never touched
    expect(await keyExists(named)).toBe(true);
    expect(await keyExists(foreign)).toBe(true);
  });
});
