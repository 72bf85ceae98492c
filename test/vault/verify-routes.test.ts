import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pattern } from '../support/pattern.js';
import { canonicalJson } from '../../src/shared/canonical-json.js';
import { opensslVerifies } from '../records/openssl.js';
import { openVaultEnv, upload, type User, type VaultEnv } from './support.js';

/**
 * The whole store's integrity control on demand over HTTPS (the console's "verify the documents
 * now"): an auditor starts it, follows the run and reads its signed report, which names the one
 * version whose blob file lost a bit and no other; admins, operators and members are refused.
 */
let env: VaultEnv;
let owner: User;
let auditor: User;
let admin: User;
let operator: User;
let good: { id: string };
let bad: { id: string };

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]' });
  owner = await env.user('olga');
  auditor = await env.user('aude', 'auditor');
  admin = await env.user('adam', 'admin');
  operator = await env.user('otis', 'backup-operator');
  const ws = await env.workspace(owner, 'Ledger');
  good = await upload(env, owner, ws, 'good.bin', new Pattern(3).slice(0, 1024 * 1024 + 3));
  bad = await upload(env, owner, ws, 'bad.bin', new Pattern(4).slice(0, 1024 * 1024 + 9));
  const v = await env.t.appliance.db.db
    .selectFrom('vault_versions')
    .select('blob_id')
    .where('document_id', '=', bad.id)
    .executeTakeFirstOrThrow();
  const file = path.join(env.t.appliance.config.storage.dir, v.blob_id.slice(0, 2), v.blob_id);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x01;
  fs.writeFileSync(file, bytes);
}, 120_000);
afterAll(async () => env?.close());

interface Run {
  id: number;
  trigger: string;
  actor: string;
  outcome: string;
  report: {
    ok: boolean;
    versions: number;
    failures: { documentId: string; problem: string }[];
    seal?: { signature: string; certificateFingerprint: string };
  } | null;
}

describe('integrity control of the whole store on demand', () => {
  it('an auditor starts it, follows it and gets the signed report naming the damaged version only', async () => {
    const start = await env.req('POST', '/api/v1/vault/verify', { token: auditor.token });
    expect(start.status, start.body.toString()).toBe(202);
    const { runId } = start.json() as { runId: number };
    let run: Run | undefined;
    for (let i = 0; i < 200; i++) {
      const r = await env.req('GET', `/api/v1/vault/verify/runs/${runId}`, { token: auditor.token });
      expect(r.status).toBe(200);
      run = r.json() as Run;
      if (run.outcome !== 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    // the actor is the auditor's API token (a console session shows as user:<id>)
    expect(run).toMatchObject({ outcome: 'succeeded', trigger: 'api', actor: expect.stringMatching(/^token:/) });
    expect(run!.report).toMatchObject({ ok: false, versions: 2 });
    expect(run!.report!.failures).toEqual([expect.objectContaining({ documentId: bad.id, problem: 'INTEGRITY' })]);
    expect(JSON.stringify(run!.report)).not.toContain(good.id);
    // signed by the sealing key: checked offline with openssl and the certificate alone
    const { seal, ...body } = run!.report!;
    const cert = await env.t.appliance.seals.certificate();
    expect(seal!.certificateFingerprint).toBe(cert.fingerprint);
    expect(opensslVerifies(Buffer.from(canonicalJson(body)), seal!.signature, cert.pem)).toBe(true);
    // listed with the others, newest first; audited under the auditor's token
    const list = await env.req('GET', '/api/v1/vault/verify/runs?limit=5', { token: auditor.token });
    expect((list.json() as { runs: Run[] }).runs[0]).toMatchObject({ id: runId, report: { ok: false } });
    const audited = await env.t.appliance.db.db
      .selectFrom('audit_events')
      .select(['actor', 'outcome', 'reason'])
      .where('action', '=', 'vault.verify')
      .execute();
    expect(audited).toContainEqual({ actor: run!.actor, outcome: 'failure', reason: 'INTEGRITY' });
  });

  it('admins, backup operators and members are refused; a run of another job is not found', async () => {
    for (const u of [admin, operator, owner]) {
      expect((await env.req('POST', '/api/v1/vault/verify', { token: u.token })).status).toBe(403);
      expect((await env.req('GET', '/api/v1/vault/verify/runs', { token: u.token })).status).toBe(403);
    }
    const other = await env.t.appliance.scheduler.run('monitoring.compact', { trigger: 'cli', actor: 'local:test' });
    const r = await env.req('GET', `/api/v1/vault/verify/runs/${other.runId}`, { token: auditor.token });
    expect(r.status).toBe(404);
  });
});
