import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Signed } from '../auth/helpers.js';

/**
 * Z1/Z2: every registered route × every role, anonymous, and members of another workspace,
 * against the table below. Every cell must match exactly (so: zero unexpected allows).
 *
 * EXTENDING: a module that adds a route adds its row to EXPECTED (and, if the route needs a
 * body or ids to reach its handler, an entry in BODIES/ids). A route without a row fails this test.
 *
 * Outcomes: `allow` (the gate and the policy let the request reach the handler: any status but
 * 401/403, and but 404 on need-to-know routes), `unauth` (401), `forbidden` (403), `hidden` (404
 * on a workspace the caller is not a member of: its existence is itself need-to-know).
 */
type Who = 'anon' | 'admin' | 'backup' | 'auditor' | 'records' | 'owner' | 'editor' | 'viewer' | 'outsider';
type Outcome = 'allow' | 'unauth' | 'forbidden' | 'hidden';
const WHO: Who[] = ['anon', 'admin', 'backup', 'auditor', 'records', 'owner', 'editor', 'viewer', 'outsider'];
const SIGNED: Who[] = WHO.filter((w) => w !== 'anon');

interface Row {
  /** who gets through */
  allow: readonly Who[];
  /** who gets 404 (need-to-know) instead of 403 */
  hidden?: readonly Who[];
  /** need-to-know route (404 counts as hidden) */
  ws?: boolean;
}
const PUBLIC: Row = { allow: WHO };
const SELF: Row = { allow: SIGNED };
const WS_CREATORS: readonly Who[] = ['admin', 'owner', 'editor', 'viewer', 'outsider'];
const wsRead: Row = { allow: ['owner', 'editor', 'viewer'], hidden: ['admin', 'outsider'], ws: true };
const wsOwner: Row = { allow: ['owner'], hidden: ['admin', 'outsider'], ws: true };

const EXPECTED: Record<string, Row> = {
  'GET /': PUBLIC,
  'GET /healthz': PUBLIC,
  'GET /readyz': PUBLIC,
  'GET /assets/:file': PUBLIC,
  'GET /api/v1/openapi.json': PUBLIC,
  // identity (src/auth)
  'POST /api/v1/auth/login': PUBLIC,
  'POST /api/v1/auth/login/mfa': PUBLIC,
  'POST /api/v1/auth/enrol': PUBLIC,
  'POST /api/v1/auth/password/forgot': PUBLIC,
  'POST /api/v1/auth/password/reset': PUBLIC,
  'GET /api/v1/auth/me': SELF,
  'PUT /api/v1/auth/me/language': SELF,
  'POST /api/v1/auth/logout': SELF,
  'GET /api/v1/auth/sessions': SELF,
  'DELETE /api/v1/auth/sessions/:id': SELF,
  'POST /api/v1/auth/sessions/end-others': SELF,
  'POST /api/v1/auth/password': SELF,
  'POST /api/v1/auth/mfa/totp': SELF,
  'POST /api/v1/auth/mfa/totp/confirm': SELF,
  'GET /api/v1/auth/tokens': SELF,
  'POST /api/v1/auth/tokens': SELF,
  'DELETE /api/v1/auth/tokens/:id': SELF,
  'GET /api/v1/users': { allow: ['admin', 'auditor'] },
  'POST /api/v1/users': { allow: ['admin'] },
  'POST /api/v1/users/:id/invite': { allow: ['admin'] },
  'POST /api/v1/users/:id/disable': { allow: ['admin'] },
  'POST /api/v1/users/:id/enable': { allow: ['admin'] },
  'PUT /api/v1/users/:id/role': { allow: ['admin'] },
  'POST /api/v1/users/:id/sessions/end': { allow: ['admin'] },
  'GET /api/v1/users/:id/tokens': { allow: ['admin', 'auditor'] },
  'DELETE /api/v1/users/:id/tokens/:tokenId': { allow: ['admin'] },
  // an admin's user page: sessions (device, address) for admins only; memberships as the access review shows them
  'GET /api/v1/users/:id/sessions': { allow: ['admin'] },
  'DELETE /api/v1/users/:id/sessions/:sessionId': { allow: ['admin'] },
  'GET /api/v1/users/:id/workspaces': { allow: ['admin'] },
  // personal data (src/privacy)
  'GET /api/v1/users/me/export': SELF,
  'GET /api/v1/users/:id/export': { allow: ['admin'] },
  'GET /api/v1/users/:id/erasure': { allow: ['admin'] },
  'POST /api/v1/users/:id/erase': { allow: ['admin'] },
  'POST /api/v1/users/:id/delete': { allow: ['admin'] },
  'GET /api/v1/privacy/ropa': { allow: ['admin', 'auditor'] },
  // workspaces (src/access)
  'POST /api/v1/workspaces': { allow: WS_CREATORS },
  'GET /api/v1/workspaces': { allow: WS_CREATORS },
  'GET /api/v1/workspaces/:id': wsRead,
  'GET /api/v1/workspaces/:id/members': wsRead,
  'PUT /api/v1/workspaces/:id/members/:userId': wsOwner,
  'DELETE /api/v1/workspaces/:id/members/:userId': wsOwner,
  'POST /api/v1/workspaces/:id/member-candidates': wsOwner,
  'PATCH /api/v1/workspaces/:id/quota': { allow: ['admin'] },
  'POST /api/v1/access-reviews': { allow: ['admin'] },
  'GET /api/v1/access-reviews': SELF,
  'GET /api/v1/access-reviews/export': { allow: ['admin'] },
  'GET /api/v1/access-reviews/:id/items': SELF,
  'POST /api/v1/access-reviews/:id/remind': { allow: ['admin'] },
  // deciding: admins for roles/tokens, owners for their memberships (random item id here: 404 = passed the gate)
  'POST /api/v1/access-reviews/:id/items/:itemId': SELF,
  // vault (src/vault): need-to-know through the policy; admins included
  'POST /api/v1/workspaces/:workspaceId/documents': { ...wsRead, allow: ['owner', 'editor'] },
  'GET /api/v1/workspaces/:workspaceId/documents': wsRead,
  'POST /api/v1/workspaces/:workspaceId/documents/search': wsRead,
  'GET /api/v1/documents/:id': wsRead,
  'GET /api/v1/documents/:id/content': wsRead,
  'GET /api/v1/documents/:id/versions': wsRead,
  'POST /api/v1/documents/:id/versions': { ...wsRead, allow: ['owner', 'editor'] },
  'POST /api/v1/documents/:id/versions/:version/restore': { ...wsRead, allow: ['owner', 'editor'] },
  'GET /api/v1/workspaces/:workspaceId/documents/archive': wsRead,
  'PATCH /api/v1/documents/:id': { ...wsRead, allow: ['owner', 'editor'] },
  'DELETE /api/v1/documents/:id': { ...wsRead, allow: ['owner', 'editor'] },
  'POST /api/v1/documents/:id/restore': { ...wsRead, allow: ['owner', 'editor'] },
  'POST /api/v1/documents/:id/purge': { ...wsRead, allow: ['owner'] },
  'POST /api/v1/documents/:id/verify': wsRead,
  'POST /api/v1/workspaces/:workspaceId/folders': { ...wsRead, allow: ['owner', 'editor'] },
  'GET /api/v1/workspaces/:workspaceId/folders': wsRead,
  'PATCH /api/v1/folders/:id': { ...wsRead, allow: ['owner', 'editor'] },
  'DELETE /api/v1/folders/:id': { ...wsRead, allow: ['owner', 'editor'] },
  'GET /api/v1/workspaces/:workspaceId/usage': wsRead,
  // records (src/records): history for members (owners see all), access reports for auditors
  'GET /api/v1/documents/:id/history': wsRead,
  // deposit receipts (src/seals) for members; a whole-workspace export for its owners
  'GET /api/v1/documents/:id/receipt': wsRead,
  'GET /api/v1/workspaces/:id/export': wsOwner,
  // a person's export: themselves, or an owner of a workspace they are in (the target is in none: 404 for all)
  'GET /api/v1/users/:id/archive': { allow: [], hidden: ['admin', 'owner', 'editor', 'viewer', 'outsider'], ws: true },
  'GET /api/v1/records/access-report': { allow: ['auditor'] },
  // retention and legal hold: records managers only (ids, no content)
  'GET /api/v1/records/retention': { allow: ['records'] },
  'POST /api/v1/records/requests': { allow: ['records'] },
  'POST /api/v1/records/requests/:id/approve': { allow: ['records'] },
  'POST /api/v1/records/requests/:id/reject': { allow: ['records'] },
  'POST /api/v1/records/holds': { allow: ['records'] },
  'GET /api/v1/records/certificates': { allow: ['records'] },
  'GET /api/v1/records/integrity-reports': { allow: ['records'] },
  // audit (src/audit)
  'GET /api/v1/audit/events': { allow: ['auditor'] },
  'GET /api/v1/audit/export': { allow: ['auditor'] },
  'POST /api/v1/audit/verify': { allow: ['auditor'] },
  // the whole store's integrity control on demand (src/vault/verify-routes.ts): auditors, like the trail's
  'POST /api/v1/vault/verify': { allow: ['auditor'] },
  'GET /api/v1/vault/verify/runs': { allow: ['auditor'] },
  'GET /api/v1/vault/verify/runs/:runId': { allow: ['auditor'] },
  // keys (src/keys): rotation needs { confirm: true }, so the matrix's {} stops at validation
  'GET /api/v1/keys/status': { allow: ['admin', 'auditor'] },
  'POST /api/v1/keys/rotate': { allow: ['admin'] },
  'GET /api/v1/keys/rotations/:runId': { allow: ['admin', 'auditor'] },
  // backup (src/backup): backup:read for operators and auditors, run/manage for operators only
  'GET /api/v1/backup/backups': { allow: ['backup', 'auditor'] },
  'GET /api/v1/backup/targets': { allow: ['backup', 'auditor'] },
  'GET /api/v1/backup/runs': { allow: ['backup', 'auditor'] },
  'GET /api/v1/backup/runs/:id': { allow: ['backup', 'auditor'] },
  'POST /api/v1/backup/drill': { allow: ['backup'] },
  'POST /api/v1/backup/run': { allow: ['backup'] },
  'POST /api/v1/backup/backups/:id/verify': { allow: ['backup'] },
  'POST /api/v1/backup/targets': { allow: ['backup'] },
  'DELETE /api/v1/backup/targets/:name': { allow: ['backup'] },
  'GET /api/v1/backup/escrow': { allow: ['backup', 'auditor'] },
  'POST /api/v1/backup/escrow': { allow: ['backup'] },
  'DELETE /api/v1/backup/escrow/:fingerprint': { allow: ['backup'] },
  'POST /api/v1/backup/escrow/:fingerprint/expiry': { allow: ['backup'] },
  'GET /api/v1/backup/drills': { allow: ['backup', 'auditor'] },
  'GET /api/v1/backup/drills/last': { allow: ['backup', 'auditor'] },
  // two-person rule: operators ask (the routes above answer 202), an admin decides
  'GET /api/v1/backup/requests': { allow: ['backup', 'auditor'] },
  'GET /api/v1/backup/approvals': { allow: ['admin'] },
  'POST /api/v1/backup/requests/:id/approve': { allow: ['admin'] },
  'POST /api/v1/backup/requests/:id/reject': { allow: ['admin'] },
  // monitoring (src/monitoring): operators read, admins and backup operators act on alerts
  'GET /metrics': PUBLIC,
  'GET /api/v1/monitoring/health': { allow: ['admin', 'backup', 'auditor'] },
  'GET /api/v1/monitoring/metrics': { allow: ['admin', 'backup', 'auditor'] },
  'GET /api/v1/monitoring/now': { allow: ['admin', 'backup', 'auditor'] },
  'GET /api/v1/monitoring/alerts': { allow: ['admin', 'backup', 'auditor'] },
  'POST /api/v1/monitoring/alerts/:id/ack': { allow: ['admin', 'backup'] },
  'POST /api/v1/monitoring/alerts/:id/resolve': { allow: ['admin', 'backup'] },
  'GET /api/v1/monitoring/jobs': { allow: ['admin', 'backup', 'auditor'] },
  'GET /api/v1/monitoring/backups': { allow: ['admin', 'backup', 'auditor'] },
  // incidents (src/incidents): admins manage, auditors read, anyone signed in reports
  'GET /api/v1/incidents': { allow: ['admin', 'auditor'] },
  'POST /api/v1/incidents': { allow: ['admin'] },
  'POST /api/v1/incidents/report': SELF,
  'GET /api/v1/incidents/:id': { allow: ['admin', 'auditor'] },
  'PATCH /api/v1/incidents/:id': { allow: ['admin'] },
  'POST /api/v1/incidents/:id/updates': { allow: ['admin'] },
  'POST /api/v1/incidents/:id/actions': { allow: ['admin'] },
  'POST /api/v1/incidents/:id/actions/:actionId/close': { allow: ['admin'] },
  'PUT /api/v1/incidents/:id/affected': { allow: ['admin'] },
  'GET /api/v1/incidents/:id/report': { allow: ['admin', 'auditor'] },
  'GET /api/v1/incidents/banner': SELF,
  'POST /api/v1/incidents/:id/ack': SELF,
  'GET /status': PUBLIC,
  'GET /status.css': PUBLIC,
  // console (src/console): the settings view and its editable subset
  'GET /api/v1/settings': { allow: ['admin'] },
  'PUT /api/v1/settings': { allow: ['admin'] },
  // auth (admin-started reset and two-admin recovery)
  'POST /api/v1/users/:id/reset': { allow: ['admin'] },
  'POST /api/v1/users/:id/recovery': { allow: ['admin'] },
};

/**
 * Requests that get past validation where it matters (else {} → 400, which still counts as
 * allow). Routes that destroy their resource get a fresh one for each caller.
 */
interface Req {
  url?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  payload?: unknown;
}
const raw = (name: string): Req => ({
  headers: {
    'content-disposition': `attachment; filename=${name}`,
    'content-type': 'application/octet-stream',
    'content-length': '14',
  },
  payload: Buffer.from('matrix content'),
});
const REQUESTS: Record<string, (who: Who) => Promise<Req> | Req> = {
  'POST /api/v1/workspaces': () => ({ payload: { name: 'Matrix' } }),
  'PUT /api/v1/workspaces/:id/members/:userId': () => ({ payload: { role: 'viewer' } }),
  'POST /api/v1/workspaces/:id/member-candidates': () => ({ payload: { q: 'mx-extra' } }),
  'PATCH /api/v1/workspaces/:id/quota': () => ({ payload: { quotaBytes: 10_000_000 } }),
  'POST /api/v1/access-reviews/:id/items/:itemId': () => ({ payload: { decision: 'confirm' } }),
  'POST /api/v1/workspaces/:workspaceId/documents': () => raw('matrix.txt'),
  'POST /api/v1/documents/:id/versions': () => raw('v2.txt'),
  'POST /api/v1/workspaces/:workspaceId/documents/search': () => ({ payload: { q: 'matrix' } }),
  'PATCH /api/v1/documents/:id': () => ({ payload: { description: 'seen by the matrix' } }),
  'POST /api/v1/documents/:id/versions/:version/restore': async () => {
    const id = await newDoc();
    await env.https('POST', `/api/v1/documents/${id}/versions`, {
      headers: { ...s.owner!.headers, ...raw('v2.txt').headers },
      body: raw('v2.txt').payload as Buffer,
    });
    return { url: `/api/v1/documents/${id}/versions/1/restore` };
  },
  'GET /api/v1/workspaces/:workspaceId/documents/archive': () => ({ query: { ids: ids.doc! } }),
  'DELETE /api/v1/documents/:id': async () => ({ url: `/api/v1/documents/${await newDoc()}` }),
  'POST /api/v1/documents/:id/restore': async () => {
    const id = await newDoc();
    await env.app.inject({ method: 'DELETE', url: `/api/v1/documents/${id}`, headers: s.owner!.headers });
    return { url: `/api/v1/documents/${id}/restore` };
  },
  'POST /api/v1/documents/:id/purge': async () => {
    const id = await newDoc();
    await env.app.inject({ method: 'DELETE', url: `/api/v1/documents/${id}`, headers: s.owner!.headers });
    return { url: `/api/v1/documents/${id}/purge` };
  },
  'POST /api/v1/workspaces/:workspaceId/folders': () => ({
    payload: { name: `F-${Math.random().toString(36).slice(2)}` },
  }),
  'PATCH /api/v1/folders/:id': () => ({ payload: { name: `R-${Math.random().toString(36).slice(2)}` } }),
  'DELETE /api/v1/folders/:id': async () => ({ url: `/api/v1/folders/${await newFolder()}` }),
};

async function newDoc(): Promise<string> {
  const r = await env.https('POST', `/api/v1/workspaces/${ids.ws}/documents`, {
    headers: {
      ...s.owner!.headers,
      'content-disposition': `attachment; filename=d-${Math.random().toString(36).slice(2)}.txt`,
      'content-type': 'application/octet-stream',
      'content-length': '1',
    },
    body: Buffer.from('x'),
  });
  expect(r.statusCode, r.body).toBe(201);
  return JSON.parse(r.body).id as string;
}
async function newFolder(): Promise<string> {
  const r = await env.app.inject({
    method: 'POST',
    url: `/api/v1/workspaces/${ids.ws}/folders`,
    headers: s.owner!.headers,
    payload: { name: `f-${Math.random().toString(36).slice(2)}` },
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json().id as string;
}

let env: IdentityEnv;
const s: Partial<Record<Who, Signed>> = {};
const ids: Record<string, string> = {};

beforeAll(async () => {
  env = await openIdentityEnv({}, { listen: true });
  const roles: Record<Exclude<Who, 'anon'>, string> = {
    admin: 'admin',
    backup: 'backup-operator',
    auditor: 'auditor',
    records: 'records-manager',
    owner: 'member',
    editor: 'member',
    viewer: 'member',
    outsider: 'member',
  };
  const users: Partial<Record<Who, string>> = {};
  for (const [who, role] of Object.entries(roles) as [Exclude<Who, 'anon'>, string][]) {
    const u = await enrolUser(env, `mx-${who}`, role);
    users[who] = u.id;
    s[who] = await signIn(env, u);
  }
  const target = await enrolUser(env, 'mx-target', 'member');
  const extra = await enrolUser(env, 'mx-extra', 'member');
  const mk = async (who: Who, name: string) =>
    (
      await env.app.inject({ method: 'POST', url: '/api/v1/workspaces', headers: s[who]!.headers, payload: { name } })
    ).json().id as string;
  ids.ws = await mk('owner', 'Dossiers RH');
  await mk('outsider', 'Other team');
  for (const [who, role] of [
    ['editor', 'editor'],
    ['viewer', 'viewer'],
  ] as const) {
    const r = await env.app.inject({
      method: 'PUT',
      url: `/api/v1/workspaces/${ids.ws}/members/${users[who]}`,
      headers: s.owner!.headers,
      payload: { role },
    });
    expect(r.statusCode, r.body).toBe(200);
  }
  ids.user = target.id;
  ids.member = extra.id;
  ids.doc = await newDoc();
  ids.folder = await newFolder();
}, 120_000);

afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const fill = (url: string) =>
  url
    .replace('/workspaces/:id', `/workspaces/${ids.ws}`)
    .replace(':workspaceId', ids.ws!)
    .replace('/documents/:id', `/documents/${ids.doc}`)
    .replace('/folders/:id', `/folders/${ids.folder}`)
    .replace('/users/:id', `/users/${ids.user}`)
    .replace(':userId', ids.member!)
    .replace(':tokenId', '00000000-0000-4000-8000-000000000000')
    .replace(':sessionId', '00000000-0000-4000-8000-000000000000')
    .replace(':actionId', '00000000-0000-4000-8000-000000000000')
    .replace(':id', '00000000-0000-4000-8000-000000000000')
    .replace(':file', 'nothing.js');

function classify(status: number, row: Row): Outcome {
  if (status === 401) return 'unauth';
  if (status === 403) return 'forbidden';
  if (status === 404 && row.ws) return 'hidden';
  return 'allow';
}
function expected(row: Row, who: Who): Outcome {
  if (row === PUBLIC || row.allow.includes(who)) return 'allow';
  if (who === 'anon') return 'unauth';
  if (row.hidden?.includes(who)) return 'hidden';
  return 'forbidden';
}

describe('access matrix (Z1, Z2)', () => {
  it('every registered route has an expectation row', () => {
    const routes = env.app.declaredRoutes.map((r) => `${r.method} ${r.url}`);
    const missing = routes.filter((k) => !(k in EXPECTED));
    expect(missing, 'routes without a row in test/access/matrix.test.ts').toEqual([]);
    const stale = Object.keys(EXPECTED).filter((k) => !routes.includes(k));
    expect(stale, 'rows for routes that no longer exist').toEqual([]);
  });

  // ~150 routes × 8 callers through inject: 25 s on a quiet machine, several times that under load
  it(
    'every route × every role, anonymous and another workspace: exactly as expected',
    { timeout: 300_000 },
    async () => {
      const routes = [...env.app.declaredRoutes].sort(
        (a, b) => Number(a.url.endsWith('/logout')) - Number(b.url.endsWith('/logout')),
      );
      const wrong: string[] = [];
      for (const r of routes) {
        const key = `${r.method} ${r.url}`;
        const row = EXPECTED[key]!;
        for (const who of WHO) {
          const headers = who === 'anon' ? {} : s[who]!.headers;
          const q: Req = REQUESTS[key] ? await REQUESTS[key](who) : {};
          const body = q.payload ?? (r.method === 'GET' || r.method === 'DELETE' ? undefined : {});
          const url =
            (q.url ?? fill(r.url)) +
            (q.query && Object.keys(q.query).length ? `?${new URLSearchParams(q.query).toString()}` : '');
          const isBuf = Buffer.isBuffer(body);
          const res = await env.https(r.method, url, {
            headers: {
              ...headers,
              ...(body !== undefined && !isBuf ? { 'content-type': 'application/json' } : {}),
              ...q.headers,
            },
            ...(body !== undefined ? { body: isBuf ? (body as Buffer) : JSON.stringify(body) } : {}),
          });
          const got = classify(res.statusCode, row);
          const want = expected(row, who);
          if (got !== want) wrong.push(`${key} as ${who}: expected ${want}, got ${got} (${res.statusCode})`);
        }
      }
      expect(wrong).toEqual([]);
    },
  );

  it('Z2: an admin, a backup operator and a member of another workspace cannot reach its content; the policy agrees', async () => {
    const policy = env.t.appliance.identity.policy;
    const actor = (who: Who, role: string) => ({ id: `user:x`, kind: 'user' as const, userId: '', roles: [role] });
    const usersByName = await env.t.appliance.db.db.selectFrom('users').select(['id', 'username', 'role']).execute();
    const idOf = (n: string) => usersByName.find((u) => u.username === n)!.id;
    const a = (who: Who, role: string) => ({
      ...actor(who, role),
      id: `user:${idOf(`mx-${who}`)}`,
      userId: idOf(`mx-${who}`),
    });
    const ws = { type: 'workspace' as const, id: ids.ws! };
    expect(await policy.can(a('admin', 'admin'), 'doc:read', ws)).toBe(false);
    expect(await policy.can(a('admin', 'admin'), 'workspace:read', ws)).toBe(false);
    expect(await policy.can(a('outsider', 'member'), 'doc:read', ws)).toBe(false);
    expect(await policy.can(a('backup', 'backup-operator'), 'doc:read', ws)).toBe(false);
    expect(await policy.can(a('auditor', 'auditor'), 'doc:read', ws)).toBe(false);
    expect(await policy.can(a('viewer', 'member'), 'doc:read', ws)).toBe(true);
    expect(await policy.can(a('viewer', 'member'), 'doc:write', ws)).toBe(false);
    expect(await policy.can(a('editor', 'member'), 'doc:write', ws)).toBe(true);
    expect(await policy.can(a('editor', 'member'), 'workspace:members', ws)).toBe(false);
    expect(await policy.can(a('owner', 'member'), 'workspace:members', ws)).toBe(true);
    // a token scoped without workspace:use reaches no workspace even for its owner
    expect(await policy.can({ ...a('owner', 'member'), kind: 'token', scopes: ['self'] }, 'doc:read', ws)).toBe(false);
    await expect(policy.requireWorkspace(a('admin', 'admin'), ids.ws!, 'doc:read')).rejects.toMatchObject({
      httpStatus: 404,
    });
    await expect(policy.requireWorkspace(a('viewer', 'member'), ids.ws!, 'doc:write')).rejects.toMatchObject({
      httpStatus: 403,
    });
    // the admin's workspace list does not show it
    const list = await env.t.appliance.identity.workspaces.listFor(a('admin', 'admin'));
    expect(list.some((w) => w.id === ids.ws)).toBe(false);
    expect((await env.t.appliance.identity.workspaces.listFor(a('viewer', 'member'))).map((w) => w.name)).toContain(
      'Dossiers RH',
    );
  });
});
