import { useState } from 'preact/hooks';
import { post } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Button, Dialog } from '../../ui.js';
import { enc, type Page } from './types.js';

export type ConflictChoice = 'version' | 'both' | 'skip';

/**
 * The document of this exact name in the folder, if any, and a free "name (n).ext" for keeping
 * both. Looked up through the search route (the name travels in a POST body, never a URL): the
 * names that share its words are the only candidates for either.
 */
export async function sameName(
  workspaceId: string,
  folderId: string | undefined,
  name: string,
): Promise<{ existing: { id: string; name: string } | undefined; free: string }> {
  const r = await post<Page>(`/workspaces/${enc(workspaceId)}/documents/search`, {
    q: name,
    folderId: folderId ?? 'root',
    limit: 1000,
  });
  const taken = new Set(r.items.map((i) => i.name.normalize('NFC')));
  const existing = r.items.find((i) => i.name.normalize('NFC') === name.normalize('NFC'));
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  let free = name;
  for (let n = 2; taken.has(free.normalize('NFC')); n++) free = `${stem} (${n})${ext}`;
  return { existing: existing && { id: existing.id, name: existing.name }, free };
}

/** a pending question: the name, the name "keep both" would use, and where the answer goes */
export interface ConflictAsk {
  name: string;
  free: string;
  answer: (c: ConflictChoice) => void;
}

/** A hook: `ask` opens the dialog and resolves with the person's choice ("skip" on Cancel or Escape). */
export function useConflict(): {
  ask: (name: string, free: string) => Promise<ConflictChoice>;
  dialog: ConflictAsk | undefined;
} {
  const [dialog, setDialog] = useState<ConflictAsk | undefined>();
  const ask = (name: string, free: string) =>
    new Promise<ConflictChoice>((resolve) =>
      setDialog({
        name,
        free,
        answer: (c) => {
          setDialog(undefined);
          resolve(c);
        },
      }),
    );
  return { ask, dialog };
}

export function ConflictDialog({ ask }: { ask: ConflictAsk | undefined }) {
  // the three answers in the body, wrapping: their words are long in French
  return (
    <Dialog
      open={!!ask}
      title={t('documents.conflict.title', { name: ask?.name ?? '' })}
      onClose={() => ask?.answer('skip')}
    >
      <p>{t('documents.conflict.body', { name: ask?.name ?? '' })}</p>
      <ul>
        <li>{t('documents.conflict.versionText')}</li>
        <li>{t('documents.conflict.bothText', { free: ask?.free ?? '' })}</li>
      </ul>
      <div class="choices">
        <Button variant="primary" onClick={() => ask?.answer('version')}>
          {t('documents.conflict.version')}
        </Button>
        <Button onClick={() => ask?.answer('both')}>{t('documents.conflict.both')}</Button>
        <Button onClick={() => ask?.answer('skip')}>{t('documents.conflict.skip')}</Button>
      </div>
    </Dialog>
  );
}
