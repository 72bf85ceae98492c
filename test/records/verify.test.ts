import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { Pattern } from '../support/pattern.js';
import { canonicalJson } from '../../src/shared/canonical-json.js';
import { openVaultEnv, upload, type User, type VaultEnv } from '../vault/support.js';
import { opensslVerifies } from './openssl.js';

/**
 * Integrity control: one flipped byte in one blob file on disk is found by the API, the CLI and
 * the weekly scrub job, reported (naming the version) and alerted; the others still pass.
 */
let env: VaultEnv;
let owner: User;
let viewer: User;
let outsider: User;
let admin: User;
let ws: string;
let good: { id: string; sha256: string };
let bad: { id: string; sha256: string };

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  owner = await env.user('olga');
  viewer = await env.user('vera');
  outsider = await env.user('otto');
  admin = await env.user('adam', 'admin');
  ws = await env.workspace(owner, 'Ledger');
  await env.addMember(owner, ws, viewer, 'viewer');
  good = await upload(env, owner, ws, 'good.bin', new Pattern(1).slice(0, 3 * 1024 * 1024 + 17));
  bad = await upload(env, owner, ws, 'bad.bin', new Pattern(2).slice(0, 2 * 1024 * 1024 + 5));
}, 120_000);
afterAll(async () => env?.close());

const db = () => env.t.appliance.db.db;
const verify = (u: User, id: string) => env.req('POST', `/api/v1/documents/${id}/verify`, { token: u.token, json: {} });
async function blobFile(documentId: string): Promise<string> {
  const v = await db()
    .selectFrom('vault_versions')
    .select('blob_id')
    .where('document_id', '=', documentId)
    .executeTakeFirstOrThrow();
  return path.join(env.t.appliance.config.storage.dir, v.blob_id.slice(0, 2), v.blob_id);
}

describe('integrity control', () => {
  it('passes on intact blobs; members only (others get the 404 of a missing document)', async () => {
    const r = await verify(viewer, good.id);
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json()).toMatchObject({
      type: 'coffre.integrity-report',
      ok: true,
      versions: 1,
      bytes: 3 * 1024 * 1024 + 17,
      failures: [],
    });
    // the scrub's bound: 4 MiB/s over 3 MiB takes at least ~0.75 s
    const t0 = Date.now();
    const paced = await env.t.appliance.vault.verifyScope(
      { kind: 'document', id: good.id },
      { bytesPerSecond: 4 * 1024 * 1024 },
    );
    expect(paced.ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    for (const u of [outsider, admin]) {
      const x = await verify(u, good.id);
      expect(x.status).toBe(404);
      expect(x.json().error.code).toBe('DOCUMENT_NOT_FOUND');
    }
  });

  it('one flipped byte in a blob file is found, reported and alerted; by the API, the CLI and the scrub job', async () => {
    const file = await blobFile(bad.id);
    const bytes = fs.readFileSync(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    fs.writeFileSync(file, bytes);

    const r = await verify(owner, bad.id);
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ ok: false, failures: [{ documentId: bad.id, version: 1, problem: 'INTEGRITY' }] });
    // signed: checked offline with openssl and the sealing certificate alone; a tampered report is refused
    const { seal, ...report } = r.json();
    const cert = await env.t.appliance.seals.certificate();
    expect(seal).toMatchObject({ algorithm: 'ECDSA-P256-SHA256', certificateFingerprint: cert.fingerprint });
    expect(opensslVerifies(Buffer.from(canonicalJson(report)), seal.signature, cert.pem)).toBe(true);
    expect(
      opensslVerifies(Buffer.from(canonicalJson({ ...report, ok: true, failures: [] })), seal.signature, cert.pem),
    ).toBe(false);
    const alerts = await db()
      .selectFrom('alerts')
      .select(['kind', 'severity', 'targets'])
      .where('kind', '=', 'vault.integrity')
      .execute();
    expect(alerts.some((a) => a.severity === 'critical' && a.targets?.includes(bad.id))).toBe(true);
    expect(alerts.some((a) => a.targets?.includes(good.id))).toBe(false);
    const audited = await db()
      .selectFrom('audit_events')
      .select(['outcome', 'reason'])
      .where('action', '=', 'vault.verify')
      .execute();
    expect(audited.some((a) => a.outcome === 'failure' && a.reason === 'INTEGRITY')).toBe(true);

    // the scrub job over the whole store, through the scheduler
    const job = await env.t.appliance.scheduler.run<{
      ok: boolean;
      versions: number;
      failures: { documentId: string }[];
    }>('vault.scrub', { trigger: 'cli', actor: 'local:test' });
    expect(job.result.ok).toBe(false);
    expect(job.result.versions).toBe(2);
    expect(job.result.failures.map((f) => f.documentId)).toEqual([bad.id]);

    // the CLI on the data directory: exit 7, the failing version named
    const cli = await runCli(['vault', 'verify', '--all', '--json', '--data-dir', env.t.dataDir]);
    expect(cli.code, cli.stderr).toBe(7);
    const rep = JSON.parse(cli.stdout) as { ok: boolean; failures: { documentId: string; problem: string }[] };
    expect(rep.failures).toEqual([expect.objectContaining({ documentId: bad.id, problem: 'INTEGRITY' })]);
    expect(cli.stderr).toContain('VAULT_INTEGRITY');
    const one = await runCli(['vault', 'verify', '--document', good.id, '--data-dir', env.t.dataDir]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain('integrity verified');
    const usage = await runCli(['vault', 'verify', '--document', good.id, '--all', '--data-dir', env.t.dataDir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^USAGE/m);
  });

  it('a truncated or missing blob is reported too', async () => {
    const file = await blobFile(good.id);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    const r = await verify(owner, good.id);
    expect(r.json()).toMatchObject({ ok: false, failures: [{ documentId: good.id, problem: 'INTEGRITY' }] });
    fs.rmSync(file);
    const m = await verify(owner, good.id);
    expect(m.json().ok).toBe(false);
    expect(['MISSING', 'INTEGRITY']).toContain(m.json().failures[0].problem);
  });
});
