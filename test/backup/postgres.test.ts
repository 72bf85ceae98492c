import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openBackupEnv, randomDoc, type BackupEnv } from './support.js';
import { runCli, startServe } from '../support/cli.js';
import { createTestDatabase, startPostgres, type TestPostgres } from '../support/postgres.js';
import { dialect } from '../support/appliance.js';

/**
 * A backup restored into PostgreSQL (`coffre restore --postgres`), from a deployment of this run's
 * dialect: on PostgreSQL (project `postgres`) the backup of a PostgreSQL deployment, one snapshot
 * copied into the archive's SQLite member; on SQLite the way from one appliance's SQLite file to
 * PostgreSQL. Folders nested against the order of their ids, to show parents restored first. The
 * restore drill restores the same backup into SQLite.
 */
let e: BackupEnv;
let own: TestPostgres | undefined;
let cluster: Omit<TestPostgres, 'stop'>;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-backup-pg-'));
const cliEnv = { COFFRE_CFG_jobs__leaseTtlMs: '2000' };

beforeAll(async () => {
  e = await openBackupEnv();
  const shared = inject('postgres');
  if (shared) cluster = shared;
  else cluster = own = await startPostgres();
  const ws = e.workspace;
  const folder = async (name: string) => {
    const r = await e.env.req('POST', `/api/v1/workspaces/${ws}/folders`, { token: e.alice.token, json: { name } });
    expect(r.status, r.body.toString()).toBe(201);
    return r.json<{ id: string }>().id;
  };
  // the older folder moved under the newer one: a child whose id sorts first
  const older = await folder('Older');
  const newer = await folder('Newer');
  const moved = await e.env.req('PATCH', `/api/v1/folders/${older}`, {
    token: e.alice.token,
    json: { parentId: newer },
  });
  expect(moved.status, moved.body.toString()).toBe(200);
  await e.upload('minutes.pdf', randomDoc(700_000));
  await e.upload('note.txt', Buffer.from('the safe is in the basement'));
  await e.addTarget();
  const r = await e.service.run({ actor: 'local:test' });
  expect(r.ok, JSON.stringify(r)).toBe(true);
}, 240_000);
afterAll(async () => {
  await e?.close();
  await own?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function get(port: string, ca: Buffer, p: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    https
      .get(
        {
          host: '127.0.0.1',
          port,
          path: p,
          ca,
          servername: 'localhost',
          headers: { authorization: `Bearer ${e.alice.token}` },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        },
      )
      .on('error', reject);
  });
}

describe(`a backup of a ${dialect()} deployment restored into PostgreSQL`, { timeout: 240_000 }, () => {
  it('builds a new installation on an empty database; started, it serves the same documents and folders, and its trail verifies', async () => {
    expect(e.env.t.appliance.db.dialect).toBe(dialect());
    const db = await createTestDatabase(cluster);
    const pgFile = path.join(tmp, 'postgres.json');
    fs.writeFileSync(
      pgFile,
      JSON.stringify({
        type: 'postgres',
        host: db.host,
        port: db.port,
        database: db.database,
        user: db.user,
        ssl: false,
      }),
    );
    const keysFile = path.join(tmp, 'keys.json');
    fs.writeFileSync(keysFile, JSON.stringify(e.env.t.token.section));
    const newDir = path.join(tmp, 'restored');
    const args = [
      'restore',
      '--from',
      e.sshd.url('dr'),
      '--backup',
      'latest',
      '--data-dir',
      newDir,
      '--host-key',
      e.sshd.hostKeyLine,
      '--identity',
      e.sshd.identityFile,
      '--keys',
      keysFile,
      '--postgres',
      pgFile,
    ];
    const r = await runCli([...args, '--json'], { env: cliEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ documents: 2, blobs: 2 });
    const cfg = JSON.parse(fs.readFileSync(path.join(newDir, 'config.json'), 'utf8')) as { database: object };
    expect(cfg.database).toMatchObject({ type: 'postgres', database: db.database });
    expect(fs.existsSync(path.join(newDir, 'coffre.db'))).toBe(false);

    // a second restore into that database is refused: it holds an appliance now
    const again = await runCli([...args.slice(0, 6), path.join(tmp, 'again'), ...args.slice(7)], { env: cliEnv });
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/^DB_NOT_EMPTY/);
    expect(fs.existsSync(path.join(tmp, 'again'))).toBe(false);

    const served = await startServe(newDir, 0, cliEnv);
    try {
      const ca = fs.readFileSync(path.join(newDir, 'tls', 'cert.pem'));
      const port = new URL(served.url).port;
      for (const [id, bytes] of e.docs) {
        const got = await get(port, ca, `/api/v1/documents/${id}/content`);
        expect(got.status, got.body.toString()).toBe(200);
        expect(got.body.equals(bytes)).toBe(true);
      }
      const top = await get(port, ca, `/api/v1/workspaces/${e.workspace}/folders`);
      const folders = (JSON.parse(top.body.toString()) as { folders: { id: string; name: string }[] }).folders;
      expect(folders.map((f) => f.name)).toEqual(['Newer']);
      const under = await get(port, ca, `/api/v1/workspaces/${e.workspace}/folders?parentId=${folders[0]!.id}`);
      expect(JSON.parse(under.body.toString())).toMatchObject({ folders: [{ name: 'Older' }] });
      // new rows get ids past the restored ones (identity sequences moved on)
      const up = await new Promise<number>((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: `/api/v1/workspaces/${e.workspace}/documents`,
            ca,
            servername: 'localhost',
            headers: {
              authorization: `Bearer ${e.alice.token}`,
              'content-type': 'application/octet-stream',
              'content-disposition': 'attachment; filename="after.txt"',
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end('written after the restore');
      });
      expect(up).toBe(201);
    } finally {
      served.child.kill('SIGTERM');
      await new Promise((res) => served.child.once('exit', res));
    }
    const v = await runCli(['audit', 'verify', '--data-dir', newDir, '--json'], { env: cliEnv });
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
    await db.drop();
  });

  it('the restore drill restores the same backup (into SQLite) and decrypts samples', async () => {
    const r = await e.service.drill({ actor: 'local:test' });
    expect(r).toMatchObject({ documents: 2, blobs: 2 });
    expect('samples' in r && r.samples).toBeGreaterThan(0);
  });
});
