import type { Kysely } from 'kysely';
import {
  ABOUT_MAX_IDS,
  eventsAbout,
  summaryAbout,
  type AboutSummaryRow,
  type AuditSource,
  type Auditor,
} from '../audit/index.js';
import type { RecordsSchema } from '../db/index.js';
import type { Actor } from '../http/index.js';
import type { VaultService } from '../vault/index.js';
import type { ActorDirectory } from './actors.js';
import { recordsErrors } from './errors.js';

/** What an entry of a document's history is, for people (the console groups by it). */
export type HistoryKind = 'read' | 'download' | 'change' | 'share' | 'delete' | 'other';

const KIND: Record<string, HistoryKind> = {
  'doc.read': 'read',
  'doc.download': 'download',
  'doc.create': 'change',
  'doc.write': 'change',
  'doc.update': 'change',
  'doc.move': 'change',
  'doc.restore': 'change',
  'doc.delete': 'delete',
  'doc.purge': 'delete',
};
export const historyKind = (action: string): HistoryKind =>
  KIND[action] ?? (action.startsWith('workspace.member.') ? 'share' : 'other');

export interface HistoryEntry {
  seq: number;
  at: string;
  actor: string;
  /** the user behind `actor`, when it is one */
  username: string | null;
  action: string;
  kind: HistoryKind;
  outcome: string;
  reason: string | null;
  targets: Record<string, string>;
}

export interface HistoryPage {
  documentId: string;
  /** `all`: every actor (workspace owners); `own`: the caller's own actions only (other members) */
  scope: 'all' | 'own';
  entries: HistoryEntry[];
  nextCursor: string | null;
}

export interface Period {
  from?: number;
  to?: number;
}

export interface AccessReport {
  subject: { kind: 'document' | 'folder'; id: string; workspaceId: string; documents: number; folders: number };
  from: string;
  to: string;
  total: number;
  rows: (AboutSummaryRow & { username: string | null; kind: HistoryKind })[];
}

export interface HistoryDeps {
  db: Kysely<RecordsSchema>;
  audit: Auditor;
  vault: Pick<VaultService, 'locate' | 'documentPlace' | 'folderTree'>;
  actors: ActorDirectory;
}

/**
 * Traceability for the people concerned, from the audit trail (which holds ids, never names):
 * a document's history for its workspace's members (owners see everyone's actions and the
 * workspace's sharing changes, other members their own actions), and access reports over a
 * period for the auditor (ids only: the auditor holds no membership and sees no content).
 * Each look is itself audited before anything is returned.
 */
export class HistoryService {
  constructor(private readonly d: HistoryDeps) {}

  async documentHistory(
    c: { actor: Actor; source?: AuditSource },
    id: string,
    period: Period,
    page: { limit: number; cursor?: string },
  ): Promise<HistoryPage> {
    checkPeriod(period);
    const place = await this.d.vault.locate(c, id, 'doc.history');
    const scope = place.role === 'owner' ? 'all' : 'own';
    const own = scope === 'own' ? await this.d.actors.actorIdsOf(c.actor.userId!) : undefined;
    const p = await eventsAbout(
      this.d.db,
      {
        targets: [{ kind: 'document', ids: [id] }],
        ...(scope === 'all' ? { sharing: { workspace: place.workspaceId } } : {}),
        ...(own ? { actors: own } : {}),
        ...period,
      },
      page,
    );
    await this.d.audit.recordNow({
      action: 'doc.history',
      actor: c.actor.id,
      outcome: 'success',
      targets: { workspace: place.workspaceId, document: id },
      ...(c.source ? { source: c.source } : {}),
    });
    const names = await this.d.actors.usernames([...new Set(p.events.map((e) => e.actor))]);
    return {
      documentId: id,
      scope,
      nextCursor: p.nextCursor,
      entries: p.events.map((e) => ({
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        username: names.get(e.actor) ?? null,
        action: e.action,
        kind: historyKind(e.action),
        outcome: e.outcome,
        reason: e.reason,
        targets: e.targets,
      })),
    };
  }

  /** The auditor's report on a document or a folder (its sub-folders and their documents included). */
  async accessReport(
    c: { actor: Actor; source?: AuditSource },
    subject: { document?: string; folder?: string },
    period: Required<Period>,
  ): Promise<AccessReport> {
    checkPeriod(period);
    if ((subject.document === undefined) === (subject.folder === undefined))
      throw recordsErrors.invalidInput('give exactly one of document or folder');
    let about: AccessReport['subject'];
    let targets: { kind: string; ids: string[] }[];
    if (subject.document !== undefined) {
      const place = await this.d.vault.documentPlace(subject.document);
      if (!place) throw recordsErrors.documentNotFound();
      about = { kind: 'document', id: subject.document, workspaceId: place.workspaceId, documents: 1, folders: 0 };
      targets = [{ kind: 'document', ids: [subject.document] }];
    } else {
      const tree = await this.d.vault.folderTree(subject.folder!);
      if (!tree) throw recordsErrors.folderNotFound();
      if (tree.documentIds.length + tree.folderIds.length > ABOUT_MAX_IDS) throw recordsErrors.tooLarge(ABOUT_MAX_IDS);
      about = {
        kind: 'folder',
        id: subject.folder!,
        workspaceId: tree.workspaceId,
        documents: tree.documentIds.length,
        folders: tree.folderIds.length,
      };
      targets = [
        { kind: 'document', ids: tree.documentIds },
        { kind: 'folder', ids: tree.folderIds },
      ];
    }
    await this.d.audit.recordNow({
      action: 'records.access_report',
      actor: c.actor.id,
      outcome: 'success',
      targets: { workspace: about.workspaceId, [about.kind]: about.id },
      ...(c.source ? { source: c.source } : {}),
    });
    const s = await summaryAbout(this.d.db, { targets, ...period });
    const names = await this.d.actors.usernames([...new Set(s.rows.map((r) => r.actor))]);
    return {
      subject: about,
      from: new Date(period.from).toISOString(),
      to: new Date(period.to).toISOString(),
      total: s.total,
      rows: s.rows.map((r) => ({ ...r, username: names.get(r.actor) ?? null, kind: historyKind(r.action) })),
    };
  }
}

function checkPeriod(p: Period): void {
  for (const [k, v] of Object.entries(p))
    if (v !== undefined && !Number.isFinite(v)) throw recordsErrors.invalidInput(`${k} is not a date-time`);
  if (p.from !== undefined && p.to !== undefined && p.to <= p.from)
    throw recordsErrors.invalidInput('to must be after from');
}
