import { useEffect, useState } from 'preact/hooks';
import { patch } from '../../api.js';
import { t } from '../../i18n/index.js';
import { Badge, Button, FormDialog, Icon, TextField, useAction } from '../../ui.js';
import { enc, type Item } from './types.js';

/** tags as the appliance takes them: trimmed, no empty one, no duplicate (case-insensitive) */
function tidy(tags: string[]): string[] {
  const seen = new Set<string>();
  return tags.map((x) => x.trim()).filter((x) => x && !seen.has(x.toLowerCase()) && seen.add(x.toLowerCase()));
}

/**
 * Edits a document's tags: each shown as a chip with its own remove button, one text field to add
 * (Enter or "Add"); saved at once with PATCH (audited as doc.update; tags are stored encrypted).
 */
export function TagsDialog({
  doc,
  onClose,
  onSaved,
}: {
  doc: Pick<Item, 'id' | 'name' | 'tags'> | undefined;
  onClose: () => void;
  onSaved: (tags: string[]) => void;
}) {
  const [tags, setTags] = useState<string[]>([]);
  const [text, setText] = useState('');
  useEffect(() => {
    setTags(doc?.tags ?? []);
    setText('');
  }, [doc]);
  const add = () => {
    if (!text.trim()) return;
    setTags((ts) => tidy([...ts, ...text.split(',')]));
    setText('');
  };
  const save = useAction(async () => {
    if (!doc) return;
    const next = tidy([...tags, ...text.split(',')]);
    const r = await patch<{ tags: string[] }>(`/documents/${enc(doc.id)}`, { tags: next });
    onSaved(r.tags);
  });
  return (
    <FormDialog
      open={!!doc}
      title={t('documents.tagsEdit.title', { name: doc?.name ?? '' })}
      id="tags"
      submitLabel={t('documents.tagsEdit.save')}
      action={save}
      ready={!!doc}
      onClose={onClose}
    >
      <ul class="tag-list" aria-label={t('documents.tags')}>
        {tags.length === 0 ? <li class="muted small">{t('documents.tagsEdit.none')}</li> : null}
        {tags.map((tag) => (
          <li>
            <Badge>{tag}</Badge>
            <button
              type="button"
              class="icon-btn"
              aria-label={t('documents.tagsEdit.remove', { tag })}
              onClick={() => setTags((ts) => ts.filter((x) => x !== tag))}
            >
              <Icon name="x" size={14} />
            </button>
          </li>
        ))}
      </ul>
      <div class="inline-form" onKeyDown={(e) => e.key === 'Enter' && (e.preventDefault(), add())}>
        <TextField
          label={t('documents.tagsEdit.add')}
          value={text}
          onValue={setText}
          hint={t('documents.tagsEdit.hint')}
        />
        <Button small onClick={add}>
          {t('documents.tagsEdit.addButton')}
        </Button>
      </div>
    </FormDialog>
  );
}
