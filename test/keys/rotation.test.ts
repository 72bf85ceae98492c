import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { createTestToken } from '../support/softhsm.js';
import { CLI, runCli } from '../support/cli.js';
import type { Appliance } from '../../src/main.js';

async function text(r: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

interface Doc {
  ref: { objectId: string; version: number; blobId: string };
  body: string;
  name: string;
  nameCt: string;
}

/** Everything stays readable, with a cold cache (every key through the HSM). */
async function expectReadable(a: Appliance, docs: Doc[], keys: { keyId: string; key: Buffer }[]): Promise<void> {
  a.keys.dataKeys.wipeCache();
  for (const d of docs) {
    expect(await text(await a.blobs.get(d.ref))).toBe(d.body);
    expect(await a.keys.fields.decrypt(d.nameCt, `doc.name:${d.ref.objectId}`)).toBe(d.name);
  }
  const sample = keys.filter((_, i) => i % 97 === 0);
  for (const k of sample) expect((await a.keys.dataKeys.get(k.keyId)).equals(k.key)).toBe(true);
}

async function versionsOf(a: Appliance): Promise<Record<string, number>> {
  return a.keys.dataKeys.countByVersion();
}

// real CLI processes (and a kill -9) on a busy 2-core machine: generous timeouts
describe('KEK rotation', { timeout: 240_000 }, () => {
  let t: TestAppliance;
  const docs: Doc[] = [];
  const keys: { keyId: string; key: Buffer }[] = [];
  beforeAll(async () => {
    t = await createTestAppliance();
    const a = t.appliance;
    for (let i = 0; i < 5; i++) {
      const body = `document ${i} ${crypto.randomBytes(8).toString('hex')}`.repeat(100);
      const b = await a.blobs.put({ objectId: `d${i}`, version: 1 }, Readable.from([Buffer.from(body)]));
      const name = `name ${i}`;
      docs.push({
        ref: { objectId: `d${i}`, version: 1, blobId: b.blobId },
        body,
        name,
        nameCt: await a.keys.fields.encrypt('docs', name, `doc.name:d${i}`),
      });
    }
    // enough keys for a rotation that lasts long enough to be interrupted
    const created = await Promise.all(Array.from({ length: 800 }, (_, i) => a.keys.dataKeys.create(`doc:bulk:v${i}`)));
    keys.push(...created.map((k) => ({ keyId: k.keyId, key: Buffer.from(k.key) })));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('status reports module, slot, token, KEK attributes read back from the HSM, keys per version, latency', async () => {
    const r = await runCli(['keys', 'status', '--data-dir', t.dataDir, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({
      up: true,
      module: '/usr/lib/softhsm/libsofthsm2.so',
      token: { label: t.token.label, serial: t.token.serial, manufacturer: 'SoftHSM project' },
      kek: { labelPrefix: 'coffre-kek', currentVersion: 1, currentLabel: 'coffre-kek-1' },
    });
    expect(typeof s.slot).toBe('number');
    expect(s.latencyMs).toBeGreaterThanOrEqual(0);
    expect(s.versions).toHaveLength(1);
    expect(s.versions[0]).toMatchObject({ version: 1, state: 'active', inHsm: true, wrappedKeys: 800 + 5 + 1 });
    expect(s.versions[0].attributes).toMatchObject({
      extractable: false,
      sensitive: true,
      neverExtractable: true,
      alwaysSensitive: true,
      local: true,
      wrap: true,
      unwrap: true,
      encrypt: false,
      decrypt: false,
    });
    const human = await runCli(['keys', 'status', '--data-dir', t.dataDir]);
    expect(human.stdout).toMatch(/KEK: +coffre-kek-1 \(current\)/);
    expect(human.stdout).toMatch(/extractable=false sensitive=true/);
  });

  it('rotation keeps everything readable before, during (kill -9, then resumed) and after', async () => {
    const a = t.appliance;
    await expectReadable(a, docs, keys); // before
    const env = { COFFRE_CFG_keys__rotationBatchSize: '2', COFFRE_CFG_jobs__leaseTtlMs: '1500' };
    const child = spawn(process.execPath, [CLI, 'keys', 'rotate', '--data-dir', t.dataDir, '--json'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // wait until it is well into re-wrapping, then kill -9
    const until = Date.now() + 30_000;
    let counts: Record<string, number> = {};
    for (;;) {
      counts = await versionsOf(a);
      if ((counts['2'] ?? 0) >= 50) break;
      if (Date.now() > until || child.exitCode !== null) throw new Error(`rotation did not progress: ${err}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    counts = await versionsOf(a);
    expect(counts['1']).toBeGreaterThan(0); // interrupted half-way
    expect(counts['2']).toBeGreaterThan(0);
    const rot = await a.db.db.selectFrom('kek_rotations').selectAll().execute();
    expect(rot).toMatchObject([{ to_version: 2, state: 'running' }]);
    expect(await a.keys.provider.kekVersions()).toEqual([1, 2]);
    await expectReadable(a, docs, keys); // during: keys under both versions

    // resumed: waits for the dead run's lease to expire, then finishes the same rotation
    let r = await runCli(['keys', 'rotate', '--data-dir', t.dataDir, '--json']);
    for (let i = 0; i < 20 && r.code !== 0 && /JOB_BUSY/.test(r.stderr); i++) {
      await new Promise((res) => setTimeout(res, 250));
      r = await runCli(['keys', 'rotate', '--data-dir', t.dataDir, '--json']);
    }
    expect(r.stderr).toMatch(/re-wrapping data keys: \d+\/\d+/);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res).toMatchObject({ resumed: true, toVersion: 2, failed: [], retired: [1], destroyed: [], kept: [] });
    expect(res.rewrapped).toBe(counts['1']);
    expect(await versionsOf(a)).toEqual({ '2': 806 });
    // v1's grace period is over (a grace shorter than the backup retention is refused at start)
    await a.db.db.updateTable('kek_versions').set({ destroy_after: 0 }).where('version', '=', 1).execute();
    expect(await a.keys.rotation.destroyDue()).toEqual({ destroyed: [1], kept: [] });
    expect(await a.keys.provider.kekVersions()).toEqual([2]); // v1 destroyed in the HSM
    await expectReadable(a, docs, keys); // after, with v1 gone

    // a second rotation from a clean state, no kill; the old version is kept for the grace period
    const r2 = await runCli(['keys', 'rotate', '--data-dir', t.dataDir, '--json']);
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({
      resumed: false,
      fromVersions: [2],
      toVersion: 3,
      rewrapped: 806,
      retired: [2],
      destroyed: [],
    });
    await expectReadable(a, docs, keys);
    const s = JSON.parse((await runCli(['keys', 'status', '--data-dir', t.dataDir, '--json'])).stdout);
    expect(
      s.versions.map((v: { version: number; state: string; inHsm: boolean; wrappedKeys: number }) => [
        v.version,
        v.state,
        v.inHsm,
        v.wrappedKeys,
      ]),
    ).toEqual([
      [1, 'destroyed', false, 0],
      [2, 'retired', true, 0],
      [3, 'active', true, 806],
    ]);
    expect(s.versions[1].destroyAfter).toMatch(/^\d{4}-/);
    // new keys go under the new version (this process re-reads the KEK versions)
    const fresh = await a.keys.provider.rewrap(await a.keys.provider.wrap(crypto.randomBytes(32)), 3);
    expect(fresh.kekLabel).toBe('coffre-kek-3');
    // every rotation is in the audit trail with the local actor
    const audits = await a.db.db
      .selectFrom('audit_events')
      .select(['action', 'actor', 'outcome'])
      .where('action', '=', 'keys.rotate')
      .execute();
    expect(audits.filter((x) => x.outcome === 'success').length).toBe(2);
    expect(audits[0]!.actor).toMatch(/^local:/);
  });
});

describe('keys CLI fails closed', { timeout: 240_000 }, () => {
  let t: TestAppliance;
  beforeAll(async () => {
    t = await createTestAppliance();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a wrong PIN: exit 6 (unreachable), one line with the CKR code and the config key, the PIN nowhere', async () => {
    const wrong = path.join(t.dataDir, 'wrong-pin');
    const wrongPin = `bad-${crypto.randomBytes(8).toString('hex')}`;
    fs.writeFileSync(wrong, wrongPin + '\n', { mode: 0o600 });
    const goodPin = fs.readFileSync(t.token.pinFile, 'utf8').trim();
    for (const args of [
      ['keys', 'status'],
      ['keys', 'rotate', '--json'],
    ]) {
      const r = await runCli([...args, '--data-dir', t.dataDir], {
        env: { COFFRE_CFG_keys__pinFile: JSON.stringify(wrong) },
      });
      expect(r.code).toBe(6);
      // --json: one object on stdout, the failure included; without it, nothing on stdout
      if (args.includes('--json'))
        expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, code: 'KEYS_UNAVAILABLE', exitCode: 6 });
      else expect(r.stdout).toBe('');
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('KEYS_UNAVAILABLE'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^KEYS_UNAVAILABLE: the HSM refused the PIN for token ".+" \(CKR_PIN_INCORRECT\) — check keys\.pinFile \(a refused PIN is not tried again until that file changes: retries would lock the token\)$/,
      );
      expect(r.stderr + r.stdout).not.toContain(wrongPin);
      expect(r.stderr + r.stdout).not.toContain(goodPin);
    }
    // and a missing token names its config key
    const r = await runCli(['keys', 'status', '--data-dir', t.dataDir], {
      env: { COFFRE_CFG_keys__tokenLabel: 'gone' },
    });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(
      /KEYS_UNAVAILABLE: no token labelled "gone" \(CKR_TOKEN_NOT_PRESENT\) — check keys.tokenLabel/,
    );
  });

  it('coffre init --hsm-*: an appliance born on a customer HSM token (here SoftHSM2 through its own SOFTHSM2_CONF)', async () => {
    const token = createTestToken();
    const dir = path.join(t.dataDir, 'born-on-hsm');
    const env = { SOFTHSM2_CONF: token.conf };
    const r = await runCli(
      [
        'init',
        '--data-dir',
        dir,
        '--hsm-module',
        token.module,
        '--hsm-token',
        token.label,
        '--hsm-pin-file',
        token.pinFile,
        '--kek-label',
        'acme-kek',
        '--json',
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.keys).toEqual({
      type: 'pkcs11',
      module: token.module,
      pinFile: token.pinFile,
      kekLabel: 'acme-kek',
      tokenLabel: token.label,
    });
    expect(fs.existsSync(path.join(dir, 'softhsm'))).toBe(false); // no default token was made
    const s = await runCli(['keys', 'status', '--data-dir', dir, '--json'], { env });
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ token: { label: token.label }, kek: { currentLabel: 'acme-kek-1' } });
    const bad = await runCli(['init', '--data-dir', path.join(t.dataDir, 'bad-flags'), '--hsm-token', token.label]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^USAGE: .*need --hsm-module/m);
  });

  it('keys init finds the existing KEK (customer HSM path) and reports its attributes', async () => {
    const r = await runCli(['keys', 'init', '--data-dir', t.dataDir, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      token: { label: t.token.label },
      kek: { label: 'coffre-kek-1', extractable: false, sensitive: true },
    });
    // a new label on the same token: created inside the HSM
    const r2 = await runCli(['keys', 'init', '--data-dir', t.dataDir, '--json'], {
      env: { COFFRE_CFG_keys__kekLabel: 'acme-kek' },
    });
    expect(r2.code).toBe(0);
    expect(JSON.parse(r2.stdout).kek).toMatchObject({
      label: 'acme-kek-1',
      extractable: false,
      sensitive: true,
      local: true,
    });
  });
});
