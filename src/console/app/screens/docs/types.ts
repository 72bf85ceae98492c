/** Wire shapes of the workspace and vault routes the documents screens use. */
export interface Workspace {
  id: string;
  name: string;
  quotaBytes: number | null;
  createdAt: string;
  state: string;
  role: 'owner' | 'editor' | 'viewer';
}
export interface Folder {
  id: string;
  workspaceId: string;
  parentId: string | null;
  name: string;
  createdAt: string;
  updatedAt: string;
}
export interface Item {
  id: string;
  folderId: string | null;
  name: string;
  tags: string[];
  version: number;
  size: number;
  createdAt: string;
  updatedAt: string;
  trashedAt: string | null;
}
export interface Version {
  version: number;
  size: number;
  sha256: string;
  mediaType: string;
  createdAt: string;
  createdBy: string;
  /** the author's user name; null when not a user (the appliance, a local command) */
  createdByName: string | null;
}
export interface Doc extends Item {
  workspaceId: string;
  description: string | null;
  createdBy: string;
  versions: Version[];
}
export interface Page {
  items: Item[];
  next: string | null;
  total: number | null;
}
export interface UploadReply {
  id: string;
  version: number;
  size: number;
  sha256: string;
  created: boolean;
}

export const canWrite = (ws: Workspace | undefined) => ws?.role === 'owner' || ws?.role === 'editor';
export const enc = encodeURIComponent;

/** A folder and its parents, root first. */
export function folderPath(all: Folder[], id: string | undefined | null): Folder[] {
  const out: Folder[] = [];
  const seen = new Set<string>();
  let cur = id ? all.find((f) => f.id === id) : undefined;
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    out.unshift(cur);
    cur = cur.parentId ? all.find((f) => f.id === cur!.parentId) : undefined;
  }
  return out;
}

/** `id` and every folder under it (a folder cannot move inside itself). */
export function subtree(all: Folder[], id: string): Set<string> {
  const out = new Set([id]);
  for (let grew = true; grew;) {
    grew = false;
    for (const f of all)
      if (f.parentId && out.has(f.parentId) && !out.has(f.id)) {
        out.add(f.id);
        grew = true;
      }
  }
  return out;
}
