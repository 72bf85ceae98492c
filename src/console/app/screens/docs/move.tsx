import { useEffect, useState } from 'preact/hooks';
import { patch } from '../../api.js';
import { t } from '../../i18n/index.js';
import { FormDialog, useAction } from '../../ui.js';
import { enc, folderPath, subtree, type Folder } from './types.js';

/** What is moved: documents and folders, by id (names for the messages). */
export interface Moving {
  docs: { id: string; name: string }[];
  folders: { id: string; name: string }[];
}

/** drag data type: the ids being dragged (never a name: drag data can reach other pages) */
const DRAG_TYPE = 'application/x-coffre-move';

export function startDrag(e: DragEvent, ids: { docs: string[]; folders: string[] }): void {
  if (!e.dataTransfer) return;
  e.dataTransfer.setData(DRAG_TYPE, JSON.stringify(ids));
  e.dataTransfer.effectAllowed = 'move';
}

/** props that make an element a drop target for documents and folders dragged from the list */
export function dropTarget(
  onDrop: (ids: { docs: string[]; folders: string[] }) => void,
  setOver: (over: boolean) => void,
) {
  const ours = (e: DragEvent) => !!e.dataTransfer?.types.includes(DRAG_TYPE);
  return {
    onDragOver: (e: DragEvent) => {
      if (!ours(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = 'move';
      setOver(true);
    },
    onDragLeave: () => setOver(false),
    onDrop: (e: DragEvent) => {
      if (!ours(e)) return;
      e.preventDefault();
      e.stopPropagation();
      setOver(false);
      try {
        const v = JSON.parse(e.dataTransfer!.getData(DRAG_TYPE)) as { docs?: unknown; folders?: unknown };
        const list = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
        onDrop({ docs: list(v.docs), folders: list(v.folders) });
      } catch {
        /* not ours after all */
      }
    },
  };
}

/**
 * Moves each document (PATCH folderId) and folder (PATCH parentId) in turn; each move is checked
 * (retention, legal hold, cycles) and audited by the appliance. Returns the names that failed with
 * their error, so a partial move is reported, never hidden.
 */
export async function moveAll(m: Moving, to: string | null): Promise<{ name: string; error: unknown }[]> {
  const failed: { name: string; error: unknown }[] = [];
  for (const d of m.docs)
    await patch(`/documents/${enc(d.id)}`, { folderId: to }).catch((error: unknown) =>
      failed.push({ name: d.name, error }),
    );
  for (const f of m.folders)
    await patch(`/folders/${enc(f.id)}`, { parentId: to }).catch((error: unknown) =>
      failed.push({ name: f.name, error }),
    );
  return failed;
}

/** The keyboard way to move: a dialog listing the workspace's folders as radio buttons. */
export function MoveDialog({
  moving,
  folders,
  onClose,
  onMoved,
}: {
  moving: Moving | undefined;
  folders: Folder[];
  onClose: () => void;
  onMoved: (to: string | null, failed: { name: string; error: unknown }[]) => void;
}) {
  const [to, setTo] = useState<string>('root');
  useEffect(() => setTo('root'), [moving]);
  // a folder cannot go inside itself or its own subfolders
  const banned = new Set<string>();
  for (const f of moving?.folders ?? []) for (const id of subtree(folders, f.id)) banned.add(id);
  const choices = folders
    .filter((f) => !banned.has(f.id))
    .map((f) => ({
      id: f.id,
      label: folderPath(folders, f.id)
        .map((p) => p.name)
        .join(' / '),
    }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const act = useAction(async () => {
    if (!moving) return;
    const dest = to === 'root' ? null : to;
    onMoved(dest, await moveAll(moving, dest));
  });
  const count = (moving?.docs.length ?? 0) + (moving?.folders.length ?? 0);
  const only = count === 1 ? (moving?.docs[0]?.name ?? moving?.folders[0]?.name ?? '') : '';
  return (
    <FormDialog
      open={!!moving}
      title={only ? t('documents.move.titleOne', { name: only }) : t('documents.move.titleMany', { count })}
      id="move"
      submitLabel={t('documents.move.confirm')}
      action={act}
      ready={!!moving}
      onClose={onClose}
    >
      <fieldset class="folder-choices">
        <legend>{t('documents.move.to')}</legend>
        {[{ id: 'root', label: t('documents.move.root') }, ...choices].map((c) => (
          <label class="check">
            <input type="radio" name="move-to" value={c.id} checked={to === c.id} onChange={() => setTo(c.id)} />{' '}
            {c.label}
          </label>
        ))}
      </fieldset>
    </FormDialog>
  );
}
