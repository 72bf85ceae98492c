import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metaHeaders, openVaultEnv, type VaultEnv } from './support.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

/**
 * A whole appliance on PostgreSQL (docs/scale-out.md): its migrations, identity, workspaces and the
 * vault's upload, listing, search, download and trash through the real HTTPS API, and the audit
 * trail verifying after them.
 */
let pg: TestPostgres;
let e: VaultEnv;
beforeAll(async () => {
  pg = await startPostgres();
  e = await openVaultEnv({
    COFFRE_CFG_database: JSON.stringify({
      type: 'postgres',
      host: pg.host,
      port: pg.port,
      database: pg.database,
      user: pg.user,
      ssl: false,
      maxConnections: 8,
    }),
  });
}, 120_000);
afterAll(async () => {
  await e?.close();
  await pg?.stop();
});

describe('an appliance on PostgreSQL', () => {
  it('runs on it: the database is PostgreSQL', () => {
    expect(e.t.appliance.config.database.type).toBe('postgres');
    expect(e.t.appliance.db.dialect).toBe('postgres');
  });

  it('uploads, lists, searches, downloads and trashes a document; the audit trail verifies', async () => {
    const alice = await e.user('alice');
    const ws = await e.workspace(alice);
    const body = crypto.randomBytes(300_000);
    const up = await e.req('POST', `/api/v1/workspaces/${ws}/documents`, {
      token: alice.token,
      headers: { ...metaHeaders('Compte rendu.pdf'), 'content-type': 'application/octet-stream' },
      body,
    });
    expect(up.status, up.body.toString()).toBe(201);
    const id = up.json<{ id: string }>().id;
    const list = await e.req('GET', `/api/v1/workspaces/${ws}/documents`, { token: alice.token });
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.json())).toContain(id);
    const found = (
      await e.req('POST', `/api/v1/workspaces/${ws}/documents/search`, { token: alice.token, json: { q: 'RENDU' } })
    ).json<{ total: number; items: { id: string }[] }>();
    expect(found.total).toBe(1);
    expect(found.items[0]!.id).toBe(id);
    const got = await e.req('GET', `/api/v1/documents/${id}/content`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);
    const del = await e.req('DELETE', `/api/v1/documents/${id}`, { token: alice.token });
    expect(del.status).toBeLessThan(300);
    const v = await e.t.appliance.audit.verify();
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 120_000);
});
