import { VaultCore, type VaultDeps } from './core.js';
import { getDocument, restoreDocument, trashDocument, updateDocument, type DocumentPatch } from './documents.js';
import { openArchive } from './archive.js';
import { openContent } from './download.js';
import { createFolder, deleteFolder, listFolders, updateFolder } from './folders.js';
import { listDocuments, usage, type ListQuery } from './listing.js';
import { documentPlace, folderPlace, folderTree, locateDocument } from './locate.js';
import { collectOrphans, indexNames, purgeExpired, purgeNow, sealDigests, sweepUploads } from './maintenance.js';
import { restoreVersion } from './restore-version.js';
import { upload, type UploadBody, type UploadTarget } from './upload.js';
import {
  reportVerify,
  verifyDocument,
  verifyVersions,
  type VerifyOptions,
  type VerifyReport,
  type VerifyScope,
} from './verify.js';
import type { VaultCaller } from './types.js';
import type { WorkspaceRole } from '../access/index.js';

/**
 * The document vault: workspaces' folders, documents and versions. Every operation checks the
 * caller's workspace role (need-to-know) and is audited; content is encrypted end to end (a data
 * key per version, names and tags as encrypted fields). Routes and CLI call only this.
 */
export class VaultService {
  readonly core: VaultCore;
  constructor(deps: VaultDeps) {
    this.core = new VaultCore(deps);
  }

  upload = (c: VaultCaller, target: UploadTarget, body: UploadBody) => upload(this.core, c, target, body);
  open = (c: VaultCaller, id: string, version: number | undefined, range?: string, ifRange?: string) =>
    openContent(this.core, c, id, version, range, ifRange);
  /** several documents of a workspace as one streamed zip (newest versions) */
  archive = (c: VaultCaller, workspaceId: string, ids: readonly string[]) =>
    openArchive(this.core, c, workspaceId, ids);
  /** an older version deposited again as the newest */
  restoreVersion = (c: VaultCaller, id: string, version: number) => restoreVersion(this.core, c, id, version);
  get = (c: VaultCaller, id: string) => getDocument(this.core, c, id);
  update = (c: VaultCaller, id: string, patch: DocumentPatch) => updateDocument(this.core, c, id, patch);
  trash = (c: VaultCaller, id: string) => trashDocument(this.core, c, id);
  restore = (c: VaultCaller, id: string) => restoreDocument(this.core, c, id);
  purge = (c: VaultCaller, id: string) => purgeNow(this.core, c, id);
  list = (c: VaultCaller, workspaceId: string, q: ListQuery) => listDocuments(this.core, c, workspaceId, q);
  usage = (c: VaultCaller, workspaceId: string) => usage(this.core, c, workspaceId);
  /** need-to-know lookup without decrypting anything (history, retention, verify) */
  locate = (c: VaultCaller, id: string, action: string) => locateDocument(this.core, c, id, action);
  /** the caller's view of a workspace, refused (404 when not a member, 403 below `role`; audited under `action`) */
  workspaceRole = (c: VaultCaller, workspaceId: string, role: WorkspaceRole, action: string) =>
    this.core.workspace(c, workspaceId, role, action);
  /** ids only, no caller check: for appliance roles that see ids but no content (auditor) */
  documentPlace = (id: string) => documentPlace(this.core, id);
  folderTree = (folderId: string) => folderTree(this.core, folderId);
  folderPlace = (folderId: string) => folderPlace(this.core, folderId);

  createFolder = (c: VaultCaller, workspaceId: string, name: string, parentId: string | null) =>
    createFolder(this.core, c, workspaceId, name, parentId);
  listFolders = (c: VaultCaller, workspaceId: string, parentId: string | null | 'all') =>
    listFolders(this.core, c, workspaceId, parentId);
  updateFolder = (c: VaultCaller, id: string, patch: { name?: string; parentId?: string | null }) =>
    updateFolder(this.core, c, id, patch);
  deleteFolder = (c: VaultCaller, id: string) => deleteFolder(this.core, c, id);

  purgeExpired = (actor: string, signal?: AbortSignal, progress?: (done: number, total: number) => void) =>
    purgeExpired(this.core, actor, signal, progress);
  collectOrphans = (signal?: AbortSignal) => collectOrphans(this.core, signal);
  sweepUploads = () => sweepUploads(this.core);
  sealDigests = () => sealDigests(this.core);
  indexNames = (signal?: AbortSignal) => indexNames(this.core, signal);

  /** integrity control of one document by a member (audited; alerts on failure) */
  verify = (c: VaultCaller, id: string) => verifyDocument(this.core, c, id);
  /** integrity control of a scope by the appliance (CLI, scrub job): audited and alerted by `reportVerify` */
  verifyScope = (scope: VerifyScope, o?: VerifyOptions) => verifyVersions(this.core, scope, o);
  reportVerify = (actor: string, r: VerifyReport) => reportVerify(this.core, actor, r);
}
