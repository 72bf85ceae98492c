import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type RunningAppliance } from '../console/appliance.js';
import type { PersonExport } from '../../src/privacy/index.js';

/**
 * `coffre user …` personal-data verbs as real processes against a served appliance (real HSM,
 * SQLite, audit trail): export to a zip (written whole or not at all, audited).
 */
let s: RunningAppliance;
let dir: string;
const marker = `mrk${crypto.randomBytes(8).toString('hex')}`;
const email = `carol.${marker}@example.test`;
const phone = '+33 6 12 34 56 78';

beforeAll(async () => {
  s = await startAppliance({ username: 'alice', email: 'alice@example.test' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-privacy-cli-'));
  const inv = await s.cli(['user', 'invite', 'carol', '--email', email, '--phone', phone, '--role', 'member', '--json']);
  expect(inv.code, inv.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await s?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const unzipJson = (f: string) => JSON.parse(execFileSync('unzip', ['-p', f, 'person.json'], { encoding: 'utf8' })) as PersonExport;

describe('coffre user export', () => {
  it('writes the zip, audited as the local operator', async () => {
    const out = path.join(dir, 'carol.zip');
    const r = await s.cli(['user', 'export', 'carol', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { id: string; out: string; bytes: number };
    expect(j.out).toBe(out);
    expect(fs.statSync(out).size).toBe(j.bytes);
    expect((fs.statSync(out).mode & 0o777).toString(8)).toBe('600');
    const p = unzipJson(out);
    expect(p.profile).toMatchObject({ id: j.id, username: 'carol', email, phone: '+33612345678', state: 'invited' });
    expect(p.audit.map((e) => e.action)).toContain('user.invite');
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
    const again = await s.cli(['user', 'export', '--id', j.id, '--out', path.join(dir, 'by-id.zip'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    // the first export is itself in the person's audit records now
    expect(unzipJson(path.join(dir, 'by-id.zip')).audit.filter((e) => e.action === 'user.export').map((e) => e.actor)).toEqual([expect.stringMatching(/^local:/)]);
  });

  it('refuses an existing file, a missing directory and an unknown user (exit 2), writing nothing', async () => {
    const existing = path.join(dir, 'carol.zip');
    const before = fs.readFileSync(existing);
    const r1 = await s.cli(['user', 'export', 'carol', '--out', existing]);
    expect(r1.code).toBe(2);
    expect(fs.readFileSync(existing).equals(before)).toBe(true);
    const r2 = await s.cli(['user', 'export', 'carol', '--out', path.join(dir, 'nope', 'x.zip')]);
    expect(r2.code).toBe(2);
    const r3 = await s.cli(['user', 'export', 'nobody', '--out', path.join(dir, 'nobody.zip')]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/^NOT_FOUND/);
    expect(fs.existsSync(path.join(dir, 'nobody.zip'))).toBe(false);
  });
});
