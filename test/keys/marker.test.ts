import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files (and which encoding) in which `marker` appears. */
function findMarker(paths: string[], marker: string): string[] {
  const needles = [
    Buffer.from(marker, 'utf8'),
    Buffer.from(marker, 'utf16le'),
    Buffer.from(marker.toUpperCase(), 'utf8'),
  ];
  const hits: string[] = [];
  for (const f of paths) {
    const b = fs.readFileSync(f);
    needles.forEach((n, i) => {
      if (b.includes(n)) hits.push(`${f} (${['utf8', 'utf16le', 'upper'][i]})`);
    });
  }
  return hits;
}

describe('invariant 1 at the keys and storage level: no marker at rest', () => {
  let t: TestAppliance | undefined;
  afterAll(async () => {
    await t?.close();
  });

  it('a marker in a document body, its name and an e-mail is nowhere in the data dir, WAL, SHM, token dir or logs', async () => {
    const marker = `MRK${crypto.randomBytes(12).toString('hex')}`;
    const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-log-')), 'coffre.log');
    const log = pino({ level: 'trace' }, pino.destination({ dest: logFile, sync: true }));
    t = await createTestAppliance({ log, keep: true });
    const a = t.appliance;
    expect(t.token.tokenDir.startsWith(t.dataDir)).toBe(false); // scanned separately below

    // a document body with the marker everywhere, also straddling chunk boundaries (1 MiB chunks)
    const parts: Buffer[] = [];
    for (let i = 0; i < 3 * 1024; i++) parts.push(Buffer.from(`${marker} line ${i} `.padEnd(1024 - 1, '.') + '\n'));
    const body = Buffer.concat(parts);
    const blob = await a.blobs.put({ objectId: 'doc-1', version: 1 }, Readable.from([body]));
    // confidential columns: document name, e-mail (and its blind index), phone; stored in the database
    const name = `Contract ${marker}.pdf`;
    const email = `${marker.toLowerCase()}@example.org`;
    const rows = {
      'marker.doc.name': await a.keys.fields.encrypt('docs', name, 'doc.name:doc-1'),
      'marker.user.email': await a.keys.fields.encrypt('users', email, 'users.email:u1'),
      'marker.user.email_index': await a.keys.fields.blindIndex('email', email),
      'marker.user.phone': await a.keys.fields.encrypt('users', `+33 6 ${marker}`, 'users.phone:u1'),
      'marker.blob': blob.blobId,
    };
    await a.db.db
      .insertInto('appliance_meta')
      .values(Object.entries(rows).map(([key, value]) => ({ key, value })))
      .execute();
    // read everything back (and log at trace level meanwhile), rotate the KEK, read again
    const back: Buffer[] = [];
    for await (const c of (await a.blobs.get({
      objectId: 'doc-1',
      version: 1,
      blobId: blob.blobId,
    })) as AsyncIterable<Buffer>)
      back.push(c);
    expect(Buffer.concat(back).equals(body)).toBe(true);
    expect(await a.keys.fields.decrypt(rows['marker.doc.name'], 'doc.name:doc-1')).toBe(name);
    await a.keys.rotation.rotate({ actor: 'local:test' });
    a.keys.dataKeys.wipeCache();
    expect(await a.keys.fields.decrypt(rows['marker.user.email'], 'users.email:u1')).toBe(email);

    // scan while open (WAL and SHM present), then after close (checkpointed into the main file)
    const scan = () => [...files(t!.dataDir), ...files(t!.token.tokenDir), logFile];
    const open = scan();
    expect(open.some((f) => f.endsWith('-wal'))).toBe(true);
    expect(open.some((f) => f.endsWith('-shm'))).toBe(true);
    expect(open.some((f) => f.includes(`${path.sep}blobs${path.sep}`))).toBe(true);
    expect(fs.statSync(logFile).size).toBeGreaterThan(0);
    expect(findMarker(open, marker)).toEqual([]);
    await a.close();
    expect(findMarker(scan(), marker)).toEqual([]);
    // the scan itself can find it: the plaintext we wrote out of band is detected
    const control = path.join(t.dataDir, 'control.txt');
    fs.writeFileSync(control, `x${marker}x`);
    expect(findMarker([control], marker)).toHaveLength(1);
    fs.rmSync(path.dirname(logFile), { recursive: true, force: true });
    fs.rmSync(t.dataDir, { recursive: true, force: true });
    t = undefined;
  });
});
