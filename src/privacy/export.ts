import { ZipArchive } from 'archiver';
import type { Kysely } from 'kysely';
import type { PrivacySchema } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import type { UserDirectory, UserRow } from '../auth/index.js';
import { recordToJson, rowToRecord, type ExportedRecord } from '../audit/index.js';
import { toCsv } from './csv.js';

/** Format version of the export (docs/gdpr.md "Export"). */
export const EXPORT_FORMAT = 'coffre.person-export.v1';

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();

export interface PersonExport {
  format: typeof EXPORT_FORMAT;
  generatedAt: string;
  profile: {
    id: string;
    username: string;
    email: string | null;
    phone: string | null;
    role: string;
    pendingRole: string | null;
    state: string;
    /** the console and e-mail language they chose (null: their browser's) */
    language: string | null;
    createdAt: string;
    createdBy: string;
    lastLoginAt: string | null;
    lastSeenAt: string | null;
    passwordChangedAt: string | null;
    disabledAt: string | null;
  };
  /** the kind only: never a secret, a code or a hash */
  secondFactor: { method: string | null; totpConfirmed: boolean; recoveryCodesLeft: number };
  memberships: { workspaceId: string; workspaceName: string | null; role: string; addedAt: string; addedBy: string }[];
  /** metadata only: never the cookie value or its hash */
  sessions: {
    id: string;
    createdAt: string;
    lastSeenAt: string;
    expiresAt: string;
    endedAt: string | null;
    endReason: string | null;
    ip: string | null;
    userAgent: string | null;
  }[];
  /** metadata only: never the token value or its hash */
  tokens: {
    id: string;
    name: string;
    scopes: string[];
    createdAt: string;
    expiresAt: string;
    lastUsedAt: string | null;
    revokedAt: string | null;
    revokedBy: string | null;
  }[];
  /** addresses and devices the person signed in from are kept as one-way hashes: only their count and dates */
  knownClients: { kind: string; firstSeenAt: string; lastSeenAt: string }[];
  /** audit records where the person (or one of their tokens) acted, or that name them as a target */
  audit: ExportedRecord[];
}

/**
 * Collects everything Coffre holds about one person (GDPR art. 15 and 20). Reads only; the caller
 * audits the export before it hands the result out.
 */
export async function collectPerson(
  o: { db: Kysely<PrivacySchema>; fields: FieldCipher; users: UserDirectory; now: number },
  user: UserRow,
): Promise<PersonExport> {
  const { db, users } = o;
  const erased = user.state === 'erased';
  const email = erased ? null : await users.email(user);
  const phone = erased ? null : ((await users.phone(user)) ?? null);
  const members = await db
    .selectFrom('workspace_members')
    .innerJoin('workspaces', 'workspaces.id', 'workspace_members.workspace_id')
    .select([
      'workspace_members.workspace_id',
      'workspace_members.role',
      'workspace_members.added_at',
      'workspace_members.added_by',
      'workspaces.name_enc',
    ])
    .where('workspace_members.user_id', '=', user.id)
    .orderBy('workspace_members.added_at')
    .execute();
  const memberships = await Promise.all(
    members.map(async (m) => ({
      workspaceId: m.workspace_id,
      // the person is a member: the name is theirs to see
      workspaceName: await o.fields.decrypt(m.name_enc, `workspaces.name:${m.workspace_id}`).catch(() => null),
      role: m.role,
      addedAt: iso(m.added_at)!,
      addedBy: m.added_by,
    })),
  );
  const sessionRows = await db
    .selectFrom('sessions')
    .select(['id', 'created_at', 'last_seen_at', 'expires_at', 'ended_at', 'end_reason', 'ip', 'user_agent'])
    .where('user_id', '=', user.id)
    .orderBy('created_at')
    .execute();
  const tokenRows = await db
    .selectFrom('api_tokens')
    .select(['id', 'name', 'scopes', 'created_at', 'expires_at', 'last_used_at', 'revoked_at', 'revoked_by'])
    .where('user_id', '=', user.id)
    .orderBy('created_at')
    .execute();
  const codes = await db
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', user.id)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  const clients = await db
    .selectFrom('auth_known_clients')
    .select(['kind', 'first_seen_at', 'last_seen_at'])
    .where('user_id', '=', user.id)
    .orderBy('first_seen_at')
    .execute();
  const actors = [`user:${user.id}`, ...tokenRows.map((t) => `token:${t.id}`)];
  const auditRows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('actor', 'in', actors),
        eb(
          'seq',
          'in',
          eb.selectFrom('audit_targets').select('audit_targets.seq').where('audit_targets.id', '=', user.id),
        ),
      ]),
    )
    .orderBy('seq')
    .execute();
  return {
    format: EXPORT_FORMAT,
    generatedAt: iso(o.now)!,
    profile: {
      id: user.id,
      username: user.state === 'erased' ? 'erased user' : user.username,
      email,
      phone,
      role: user.role,
      pendingRole: user.pending_role ?? null,
      state: user.state,
      language: user.language ?? null,
      createdAt: iso(user.created_at)!,
      createdBy: user.created_by,
      lastLoginAt: iso(user.last_login_at),
      lastSeenAt: iso(user.last_seen_at),
      passwordChangedAt: iso(user.password_changed_at),
      disabledAt: iso(user.disabled_at),
    },
    secondFactor: {
      method: user.mfa_method,
      totpConfirmed: Number(user.totp_confirmed) === 1,
      recoveryCodesLeft: Number(codes?.n ?? 0),
    },
    memberships,
    sessions: sessionRows.map((s) => ({
      id: s.id,
      createdAt: iso(s.created_at)!,
      lastSeenAt: iso(s.last_seen_at)!,
      expiresAt: iso(s.expires_at)!,
      endedAt: iso(s.ended_at),
      endReason: s.end_reason,
      ip: s.ip,
      userAgent: s.user_agent,
    })),
    tokens: tokenRows.map((t) => ({
      id: t.id,
      name: t.name,
      scopes: JSON.parse(t.scopes) as string[],
      createdAt: iso(t.created_at)!,
      expiresAt: iso(t.expires_at)!,
      lastUsedAt: iso(t.last_used_at),
      revokedAt: iso(t.revoked_at),
      revokedBy: t.revoked_by,
    })),
    knownClients: clients.map((c) => ({
      kind: c.kind,
      firstSeenAt: iso(c.first_seen_at)!,
      lastSeenAt: iso(c.last_seen_at)!,
    })),
    audit: auditRows.map((r) => recordToJson(rowToRecord(r))),
  };
}

/** The members of the zip: one JSON with everything, and one CSV per list (docs/gdpr.md "Export"). */
export function exportMembers(p: PersonExport): { name: string; content: string }[] {
  return [
    { name: 'person.json', content: `${JSON.stringify(p, null, 2)}\n` },
    {
      name: 'profile.csv',
      content: toCsv([
        {
          ...p.profile,
          secondFactor: p.secondFactor.method,
          totpConfirmed: p.secondFactor.totpConfirmed,
          recoveryCodesLeft: p.secondFactor.recoveryCodesLeft,
        },
      ]),
    },
    {
      name: 'memberships.csv',
      content: toCsv(p.memberships, ['workspaceId', 'workspaceName', 'role', 'addedAt', 'addedBy']),
    },
    {
      name: 'sessions.csv',
      content: toCsv(p.sessions, [
        'id',
        'createdAt',
        'lastSeenAt',
        'expiresAt',
        'endedAt',
        'endReason',
        'ip',
        'userAgent',
      ]),
    },
    {
      name: 'tokens.csv',
      content: toCsv(
        p.tokens.map((t) => ({ ...t, scopes: t.scopes.join(' ') })),
        ['id', 'name', 'scopes', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt', 'revokedBy'],
      ),
    },
    { name: 'known-clients.csv', content: toCsv(p.knownClients, ['kind', 'firstSeenAt', 'lastSeenAt']) },
    {
      name: 'audit.csv',
      content: toCsv(
        p.audit.map((e) => ({
          seq: e.seq,
          at: e.at,
          actor: e.actor,
          action: e.action,
          outcome: e.outcome,
          reason: e.reason,
          targets: JSON.stringify(e.targets),
          sourceIp: e.source.ip,
          userAgent: e.source.userAgent,
          requestId: e.source.requestId,
          hash: e.hash,
        })),
        ['seq', 'at', 'actor', 'action', 'outcome', 'reason', 'targets', 'sourceIp', 'userAgent', 'requestId', 'hash'],
      ),
    },
  ];
}

/** The zip (deflate), in memory: a person's records are small. */
export async function zipExport(p: PersonExport): Promise<Buffer> {
  const zip = new ZipArchive({ zlib: { level: 9 } });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    zip.on('data', (c: Buffer) => chunks.push(c));
    zip.on('end', () => resolve());
    zip.on('error', reject);
  });
  const date = new Date(p.generatedAt);
  for (const m of exportMembers(p)) zip.append(m.content, { name: m.name, date });
  await zip.finalize();
  await done;
  return Buffer.concat(chunks);
}
