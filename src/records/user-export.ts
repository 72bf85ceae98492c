import type { Kysely } from 'kysely';
import type tar from 'tar-stream';
import type { AboutQuery, AuditPage } from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { Actor } from '../http/index.js';
import type { VaultCaller } from '../vault/index.js';
import {
  addDocument,
  ArchiveWriter,
  CHECK_COMMANDS,
  documentIds,
  finishArchive,
  jsonFile,
  type ArchiveSources,
  type VersionRow,
} from './archive.js';
import { EXPORT_VERSION, MANIFEST_COLUMNS, manifestRow } from './export.js';

/** Format of a person's export (docs/formats.md "Workspace export", "A person's export"). */
export const USER_EXPORT_TYPE = 'coffre.user-export';

/** What a person's export reads besides the vault (wired by main.ts and records/wire.ts). */
export interface UserExportSources extends ArchiveSources {
  workspaceName(id: string): Promise<string>;
  /** every actor id the person acted under: their `user:` id and their API tokens' */
  actorIdsOf(userId: string): Promise<string[]>;
  auditAbout(q: AboutQuery, page: { limit: number; cursor?: string }): Promise<AuditPage>;
}

/**
 * Whose export, and which workspaces it may read (need-to-know, as the workspace export): a person
 * exporting their own gets every workspace they are a member of now; anyone else only the
 * workspaces they own where the person is a member. Null (a 404, the same as an unknown id) when
 * the requester is not the person and owns no workspace with them: the requester learns nothing
 * about people outside their workspaces.
 */
export interface UserScope {
  user: { id: string; username: string };
  self: boolean;
  /** the person's role in each workspace of the export */
  workspaces: { id: string; role: string }[];
}

export async function userScope(
  db: Kysely<RecordsSchema>,
  requester: Actor,
  userId: string,
): Promise<UserScope | null> {
  if (!requester.userId) return null;
  const user = await db.selectFrom('users').select(['id', 'username']).where('id', '=', userId).executeTakeFirst();
  if (!user) return null;
  const self = requester.userId === user.id;
  let q = db
    .selectFrom('workspace_members')
    .select(['workspace_id as id', 'role'])
    .where('user_id', '=', user.id)
    .orderBy('workspace_id');
  if (!self)
    q = q.where(
      'workspace_id',
      'in',
      db
        .selectFrom('workspace_members')
        .select('workspace_id')
        .where('user_id', '=', requester.userId)
        .where('role', '=', 'owner'),
    );
  const workspaces = await q.execute();
  if (!self && !workspaces.length) return null;
  return { user, self, workspaces };
}

/** [from, to) in ms; either may be open */
export interface Period {
  from?: number;
  to?: number;
}

/**
 * Streams everything traceable to one person as a POSIX tar, in the workspace export's layout
 * (docs/records.md "A person's export"): every version they deposited (under their account or one
 * of their tokens) in the workspaces of `scope`, with its document's metadata and its deposit
 * receipt; the audit records of what they did (their own export: everything they did and every
 * record naming their account; someone else's: what they did in the requester's workspaces); the
 * seals and certificates; the signed manifest. `period` bounds the deposits and the records.
 */
export async function writeUserExport(
  src: UserExportSources,
  c: VaultCaller,
  scope: UserScope,
  period: Period,
  pack: tar.Pack,
): Promise<{ documents: number; versions: number; bytes: number }> {
  const w = new ArchiveWriter(pack, src.now);
  const actors = await src.actorIdsOf(scope.user.id);
  const mine = new Set(actors);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  await w.add('README.txt', README);
  const workspaces = [];
  for (const ws of scope.workspaces) workspaces.push({ ...ws, name: await src.workspaceName(ws.id) });
  await w.add(
    'user.json',
    jsonFile({
      type: USER_EXPORT_TYPE,
      version: EXPORT_VERSION,
      applianceId: src.applianceId,
      user: { ...scope.user, actorIds: actors },
      from: iso(period.from),
      to: iso(period.to),
      exportedAt: new Date(src.now()).toISOString(),
      exportedBy: c.actor.id,
      workspaces,
    }),
  );
  const inPeriod = (at: string) => {
    const t = Date.parse(at);
    return (period.from === undefined || t >= period.from) && (period.to === undefined || t < period.to);
  };
  const keep = (v: { createdBy: string; createdAt: string }) => mine.has(v.createdBy) && inPeriod(v.createdAt);
  const rows: VersionRow[] = [];
  let documents = 0;
  let bytes = 0;
  for (const ws of scope.workspaces)
    for await (const id of documentIds(src, c, ws.id)) {
      const d = await addDocument(w, src, c, ws.id, id, keep, { workspaceId: ws.id });
      if (!d.rows.length) continue;
      rows.push(...d.rows);
      bytes += d.bytes;
      documents += 1;
    }
  const range = {
    ...(period.from !== undefined ? { from: period.from } : {}),
    ...(period.to !== undefined ? { to: period.to } : {}),
  };
  const q: AboutQuery = scope.self
    ? { targets: [{ kind: 'user', ids: [scope.user.id] }], byActors: actors, ...range }
    : { targets: [{ kind: 'workspace', ids: scope.workspaces.map((x) => x.id) }], actors, ...range };
  await finishArchive(w, src, {
    audit: (page) => src.auditAbout(q, page),
    csv: [['workspace_id', ...MANIFEST_COLUMNS], ...rows.map((r) => [r.workspaceId, ...manifestRow(r)])],
    head: (auditEvents) => ({
      type: `${USER_EXPORT_TYPE}.manifest`,
      version: EXPORT_VERSION,
      applianceId: src.applianceId,
      userId: scope.user.id,
      from: iso(period.from),
      to: iso(period.to),
      exportedAt: new Date(src.now()).toISOString(),
      documents,
      versions: rows.length,
      bytes,
      auditEvents,
    }),
  });
  return { documents, versions: rows.length, bytes };
}

const README = `Coffre export of one person's deposits and trail (docs/records.md "A person's export" in the Coffre repository)

A POSIX tar archive, in open formats only:

  user.json                       the person (id, user name, the actor ids they acted under), the
                                  period, and the workspaces this export covers (id, name, role)
  documents/ID/document.json      a document they deposited in: workspace, name, description, tags,
                                  folder, dates, and the versions they deposited in the period
  documents/ID/vN/NAME            the original bytes of version N
  documents/ID/vN/receipt.json    its deposit receipt, signed (.sig) and timestamped (.tsr, RFC 3161)
  audit/events-NNNNN.jsonl        the audit records of what they did (and, in their own export, the
                                  records naming their account), newest first
  seals/seal-DAY.json             the daily audit seals (.sig, .tsr)
  seal-cert.pem                   the sealing certificate (seal-cert-<16 hex>.pem: every one it had)
  manifest.csv                    one line per version: workspace, path, name, size, SHA-256, dates, receipt
  manifest.sha256                 SHA-256 of every file above
  manifest.json                   the same list and counts, signed by the sealing key (.sig)

${CHECK_COMMANDS}`;
