import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameTokens, searchWords } from '../../src/vault/name-index.js';
import { metaHeaders, openVaultEnv, upload, type User, type VaultEnv } from './support.js';

let env: VaultEnv;
let owner: User;
let other: User;
let ws: string;
let ws2: string;

beforeAll(async () => {
  env = await openVaultEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '[]', COFFRE_CFG_vault__searchScanRows: '1000' });
  owner = await env.user('nora');
  other = await env.user('otto');
  ws = await env.workspace(owner, 'Index');
  ws2 = await env.workspace(other, 'Elsewhere');
});
afterAll(async () => env?.close());

const db = () => env.t.appliance.db.db;
const octet = { 'content-type': 'application/octet-stream' };
const search = async (u: User, space: string, body: Record<string, unknown>) => {
  const r = await env.req('POST', `/api/v1/workspaces/${space}/documents/search`, { token: u.token, json: body });
  expect(r.status).toBe(200);
  return r.json() as { total: number; items: { id: string; name: string; tags: string[] }[]; next: string | null };
};
const names = async (u: User, space: string, body: Record<string, unknown>) =>
  (await search(u, space, body)).items.map((i) => i.name);

describe('name tokens', () => {
  it('fold case, accents and compatibility forms; words are runs of letters and digits', () => {
    expect(searchWords('Élodie’s CV — ﬁnal_2026.PDF')).toEqual(['elodie', 's', 'cv', 'final', '2026', 'pdf']);
    expect(searchWords('Invoice2026-B7')).toEqual(['invoice', '2026', 'b', '7']);
    expect(nameTokens('Zoë ab')).toEqual(['n\0z', 'n\0zo', 'n\0zoe', 'n\0a', 'n\0ab']);
    // prefixes stop at 32 code points
    expect(nameTokens('x'.repeat(40))).toHaveLength(32);
  });
});

describe('search through the blind index', () => {
  it('word prefixes, case- and accent-insensitive, every word of the query; tags exact; trash and other workspaces excluded', async () => {
    const a = await upload(
      env,
      owner,
      ws,
      'École Polytechnique — procès-verbal.pdf',
      Buffer.from('a'),
      metaHeaders('École Polytechnique — procès-verbal.pdf', { tags: ['Conseil'] }),
    );
    const b = await upload(env, owner, ws, 'Rapport annuel 2026.docx', Buffer.from('b'));
    await upload(env, owner, ws, 'rapport-ecole.txt', Buffer.from('c'));
    await upload(env, other, ws2, 'École secrète.pdf', Buffer.from('d'));
    expect(await names(owner, ws, { q: 'ecole' })).toEqual([
      'École Polytechnique — procès-verbal.pdf',
      'rapport-ecole.txt',
    ]);
    expect(await names(owner, ws, { q: 'PROCES verb' })).toEqual(['École Polytechnique — procès-verbal.pdf']);
    expect(await names(owner, ws, { q: 'rap 2026' })).toEqual(['Rapport annuel 2026.docx']);
    // every word counts, however many: a word the name lacks, even the ninth, matches nothing
    expect(await names(owner, ws, { q: 'r ra rap rapp an ann 2 20 absent' })).toEqual([]);
    expect(await names(owner, ws, { q: 'r ra rap rapp an ann 2 20 do' })).toEqual(['Rapport annuel 2026.docx']);
    // a query of more than 32 words is refused, never cut
    const long = await env.req('POST', `/api/v1/workspaces/${ws}/documents/search`, {
      token: owner.token,
      json: { q: Array.from({ length: 33 }, (_, i) => `w${i}`).join(' ') },
    });
    expect(long.status).toBe(400);
    expect(long.json().error.code).toBe('INVALID_INPUT');
    // a word prefix, not any substring
    expect(await names(owner, ws, { q: 'olytechnique' })).toEqual([]);
    expect(await names(owner, ws, { q: 'secrète' })).toEqual([]);
    expect(await names(owner, ws, { tag: 'conseil' })).toEqual(['École Polytechnique — procès-verbal.pdf']);
    expect(await names(owner, ws, { tag: 'cons' })).toEqual([]);
    expect(await names(owner, ws, { q: 'ecole', tag: 'CONSEIL' })).toEqual(['École Polytechnique — procès-verbal.pdf']);
    // renamed and re-tagged: the old words and tag no longer match, the new ones do
    expect(
      (
        await env.req('PATCH', `/api/v1/documents/${a.id}`, {
          token: owner.token,
          json: { name: 'Minutes du conseil.pdf', tags: ['Board'] },
        })
      ).status,
    ).toBe(200);
    expect(await names(owner, ws, { q: 'polytech' })).toEqual([]);
    expect(await names(owner, ws, { q: 'minutes conseil' })).toEqual(['Minutes du conseil.pdf']);
    expect(await names(owner, ws, { tag: 'conseil' })).toEqual([]);
    expect(await names(owner, ws, { tag: 'board' })).toEqual(['Minutes du conseil.pdf']);
    // trash hides; purge removes its rows from the index
    expect((await env.req('DELETE', `/api/v1/documents/${b.id}`, { token: owner.token })).status).toBe(200);
    expect(await names(owner, ws, { q: 'annuel' })).toEqual([]);
    expect((await search(owner, ws, { q: 'annuel', trash: true })).items.map((i) => i.id)).toEqual([b.id]);
    const before = await db().selectFrom('vault_name_index').select('token').where('document_id', '=', b.id).execute();
    expect(before.length).toBeGreaterThan(10);
    expect((await env.req('POST', `/api/v1/documents/${b.id}/purge`, { token: owner.token })).status).toBe(200);
    expect(await db().selectFrom('vault_name_index').select('token').where('document_id', '=', b.id).execute()).toEqual(
      [],
    );
    // the other workspace's member sees only theirs; the owner of this one cannot search there
    expect(await names(other, ws2, { q: 'ecole' })).toEqual(['École secrète.pdf']);
    expect(
      (
        await env.req('POST', `/api/v1/workspaces/${ws2}/documents/search`, {
          token: owner.token,
          json: { q: 'ecole' },
        })
      ).status,
    ).toBe(404);
  });

  it('stores HMACs under a per-workspace key: no word in clear, the same word gives other tokens in another workspace', async () => {
    const marker = 'Zanzibarquux';
    const d1 = await upload(env, owner, ws, `${marker} plan.pdf`, Buffer.from('x'));
    const d2 = await upload(env, other, ws2, `${marker} plan.pdf`, Buffer.from('y'));
    const t1 = (
      await db().selectFrom('vault_name_index').select(['token', 'kind']).where('document_id', '=', d1.id).execute()
    ).map((r) => r.token);
    const t2 = (
      await db().selectFrom('vault_name_index').select('token').where('document_id', '=', d2.id).execute()
    ).map((r) => r.token);
    expect(t1).toHaveLength(nameTokens(`${marker} plan.pdf`).length);
    expect(t1.every((t) => /^[A-Za-z0-9_-]{22}$/.test(t))).toBe(true);
    expect(t1.filter((t) => t2.includes(t))).toEqual([]);
    // the marker is in no file of the data directory (database, WAL), in any case
    const dir = env.t.dataDir;
    const files = fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => path.join(f.parentPath, f.name));
    for (const f of files) {
      const text = fs.readFileSync(f).toString('latin1').toLowerCase();
      expect(text.includes(marker.toLowerCase()), f).toBe(false);
    }
  });

  it('documents written before the index: searched by decrypting until the vault.index-names job has indexed them', async () => {
    const old = await upload(
      env,
      owner,
      ws,
      'Legacy ledger.xlsx',
      Buffer.from('l'),
      metaHeaders('Legacy ledger.xlsx', { tags: ['Finance'] }),
    );
    // as a row written before the migration
    await db().deleteFrom('vault_name_index').where('document_id', '=', old.id).execute();
    await db().updateTable('vault_documents').set({ name_index: null }).where('id', '=', old.id).execute();
    // the workspace falls back to decrypting (a substring then matches too)
    expect(await names(owner, ws, { q: 'edger' })).toEqual(['Legacy ledger.xlsx']);
    expect(await names(owner, ws, { tag: 'finance' })).toEqual(['Legacy ledger.xlsx']);
    const run = await env.t.appliance.scheduler.run<{ indexed: number }>('vault.index-names', {
      trigger: 'cli',
      actor: 'local:test',
    });
    expect(run.result).toEqual({ indexed: 1 });
    expect(await names(owner, ws, { q: 'edger' })).toEqual([]);
    expect(await names(owner, ws, { q: 'ledg' })).toEqual(['Legacy ledger.xlsx']);
    expect(await names(owner, ws, { tag: 'finance' })).toEqual(['Legacy ledger.xlsx']);
    expect(
      (
        await env.t.appliance.scheduler.run<{ indexed: number }>('vault.index-names', {
          trigger: 'cli',
          actor: 'local:test',
        })
      ).result,
    ).toEqual({ indexed: 0 });
  });

  /** n documents `scan <k>.pdf` (k from `from`), rows and index written directly: through uploads they would be slow */
  async function seed(
    space: string,
    from: number,
    n: number,
    at: number,
    name = (k: number) => `scan ${k}.pdf`,
  ): Promise<string[]> {
    const ids: string[] = [];
    const { indexRows, NAME_INDEX_FORMAT } = await import('../../src/vault/name-index.js');
    const { ctx, fieldScope } = await import('../../src/vault/core.js');
    const fields = env.t.appliance.keys.fields;
    for (let i = from; i < from + n; i += 500) {
      const rows = [];
      const index = [];
      for (let k = i; k < Math.min(from + n, i + 500); k++) {
        const id = crypto.randomUUID();
        ids.push(id);
        rows.push({
          id,
          workspace_id: space,
          folder_id: null,
          name_enc: await fields.encrypt(fieldScope(space), name(k), ctx.docName(id)),
          description_enc: null,
          tags_enc: null,
          head_version: 1,
          head_size: 1,
          created_at: at + k,
          created_by: 'user:x',
          updated_at: at + k,
          trashed_at: null,
          trashed_by: null,
          purged_at: null,
          name_index: NAME_INDEX_FORMAT,
        });
        index.push(...(await indexRows(fields, space, id, name(k), [])));
      }
      await db().insertInto('vault_documents').values(rows).execute();
      for (let j = 0; j < index.length; j += 300)
        await db()
          .insertInto('vault_name_index')
          .values(index.slice(j, j + 300))
          .execute();
    }
    return ids;
  }

  /** every page of a search, following `next` */
  async function pages(space: string, body: Record<string, unknown>) {
    const seen: string[] = [];
    const totals = new Set<number | null>();
    let cursor: string | null = null;
    do {
      const r = await search(owner, space, { ...body, ...(cursor ? { cursor } : {}) });
      totals.add(r.total);
      seen.push(...r.items.map((i) => i.name));
      cursor = r.next;
    } while (cursor);
    return { seen, totals: [...totals] };
  }

  it('more matches than it sorts by name: newest first, by pages, every match once', async () => {
    const space = await env.workspace(owner, 'Many');
    const n = 1010;
    await seed(space, 0, n, Date.now());
    const { seen, totals } = await pages(space, { q: 'scan', limit: 500 });
    expect(totals).toEqual([n]);
    expect(seen).toHaveLength(n);
    expect(seen[0]).toBe(`scan ${n - 1}.pdf`);
    expect(new Set(seen).size).toBe(n);
    expect((await search(owner, space, { q: 'scan 1009' })).items.map((i) => i.name)).toEqual(['scan 1009.pdf']);
  });

  it('words each common but rarely together: every page looks at a bounded number of documents, and the walk resumes', async () => {
    const space = await env.workspace(owner, 'Sparse');
    const at = Date.now();
    // the oldest document holds both words; 10,200 newer ones hold one each (the scan bound is 1,000 here)
    await seed(space, 0, 1, at, () => 'scan memo.doc');
    await seed(space, 1, 5100, at, (k) => `scan ${k}.pdf`);
    await seed(space, 5101, 5100, at, (k) => `memo ${k}.txt`);
    const first = await search(owner, space, { q: 'scan memo', limit: 100 });
    // the walk stopped at its bound: nothing found yet, and a cursor to go on (not a full walk of the workspace)
    expect(first.items).toEqual([]);
    expect(first.total).toBeNull();
    expect(first.next).not.toBeNull();
    let cursor: string | null = first.next;
    let pages = 1;
    const seen: string[] = [];
    while (cursor) {
      const r = await search(owner, space, { q: 'scan memo', limit: 100, cursor });
      seen.push(...r.items.map((i) => i.name));
      cursor = r.next;
      pages++;
    }
    expect(seen).toEqual(['scan memo.doc']);
    // 10,201 documents at 1,000 a page
    expect(pages).toBe(11);
  });

  it('words held by more documents than it counts: newest first, uncounted, every match once', async () => {
    const space = await env.workspace(owner, 'Crowded');
    const n = 5100;
    const at = Date.now();
    const ids = await seed(space, 0, n, at);
    // a trashed match is left out of the live listing and its pages
    const trashed = ids[n - 2]!;
    await db()
      .updateTable('vault_documents')
      .set({ trashed_at: at, trashed_by: 'user:x' })
      .where('id', '=', trashed)
      .execute();
    const { seen, totals } = await pages(space, { q: 'scan pdf', limit: 1000 });
    expect(totals).toEqual([null]);
    expect(seen).toHaveLength(n - 1);
    expect(new Set(seen).size).toBe(n - 1);
    expect(seen.slice(0, 2)).toEqual([`scan ${n - 1}.pdf`, `scan ${n - 3}.pdf`]);
    expect(seen.at(-1)).toBe('scan 0.pdf');
    // a rarer word among them: counted again, sorted by name
    const few = await search(owner, space, { q: 'scan 4321' });
    expect(few.total).toBe(1);
    expect(few.items.map((i) => i.name)).toEqual(['scan 4321.pdf']);
    // the trash, searched: only the trashed one
    expect((await search(owner, space, { q: 'scan', trash: true })).items.map((i) => i.name)).toEqual([
      `scan ${n - 2}.pdf`,
    ]);
  });
});
