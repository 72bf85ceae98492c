import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { client, data, type Reply } from '../client.js';
import { Alert, Button, Card, ErrorAlert, Field, TextField, notify, useAction } from '../ui.js';
import { t } from '../i18n/index.js';
import { roleLabel } from '../labels.js';

/**
 * The settings an admin may change here (the server's list, src/config/edit.ts): grouped, each
 * with a label and a hint in words, its error in words under it (the server names a rule, never
 * a pattern), secrets write-only (the field is empty; typing replaces the secret). Saving writes
 * config.json; the page says that the service must restart for the change to take effect.
 */
/** one editable setting as the appliance describes it (GET /api/v1/settings) */
export type Editable = Reply<'/api/v1/settings', 'get'>['editable'][number];

interface Problem {
  field: string;
  rule: string;
  limit?: number;
}

const GROUPS = ['mail', 'sms', 'syslog', 'alerts', 'site', 'password', 'mfa'] as const;
const label = (key: string) => t(`settings.fields.${key}.label` as never);
const hint = (key: string) => t(`settings.fields.${key}.hint` as never);

/** the form's text for a value in effect */
function shown(f: Editable): string | boolean | string[] {
  if (f.kind === 'boolean') return f.value === true;
  if (f.kind === 'list') return Array.isArray(f.value) ? f.value.map(String) : [];
  return f.value === null || f.value === undefined ? '' : String(f.value);
}

/** the value to send for what the form holds */
function parsed(f: Editable, v: string | boolean | string[]): unknown {
  if (f.kind === 'boolean') return v === true;
  if (f.kind === 'list')
    return Array.isArray(v)
      ? v
      : String(v)
          .split(/[\n,]/)
          .map((s) => s.trim())
          .filter(Boolean);
  const s = String(v).trim();
  if (f.kind === 'integer') return s === '' ? null : /^-?\d+$/.test(s) ? Number(s) : s;
  return s === '' ? null : s;
}

export function problemText(p: Problem): string {
  if (p.rule === 'format') return t(`settings.fields.${p.field}.format` as never);
  if (p.rule === 'minimum' || p.rule === 'maximum' || p.rule === 'minLength' || p.rule === 'maxLength')
    return t(`settings.rules.${p.rule}`, { limit: p.limit ?? 0 });
  if (['required', 'type', 'choice', 'timeZone', 'weaker'].includes(p.rule))
    return t(`settings.rules.${p.rule as 'required' | 'type' | 'choice' | 'timeZone' | 'weaker'}`);
  return t('settings.rules.invalid');
}

export function EditableSettings({ fields, onSaved }: { fields: Editable[]; onSaved: () => void }) {
  const [draft, setDraft] = useState<Record<string, string | boolean | string[]>>(() =>
    Object.fromEntries(fields.filter((f) => f.kind !== 'secret').map((f) => [f.key, shown(f)])),
  );
  const [secrets, setSecrets] = useState<Record<string, string>>({});
  const set = (k: string, v: string | boolean | string[]) => setDraft((d) => ({ ...d, [k]: v }));
  const save = useAction(async () => {
    const values: Record<string, unknown> = {};
    for (const f of fields) {
      if (f.kind === 'secret' || f.overridden) continue;
      const v = parsed(f, draft[f.key]!);
      if (JSON.stringify(v) !== JSON.stringify(parsed(f, shown(f)))) values[f.key] = v;
    }
    const typed = Object.fromEntries(Object.entries(secrets).filter(([, v]) => v !== ''));
    const r = await data(client.PUT('/api/v1/settings', { body: { values, secrets: typed } }));
    setSecrets({});
    if (r.changed.length) {
      notify(t('settings.edit.saved', { count: r.changed.length }));
      onSaved();
    } else notify(t('settings.edit.nothing'), 'info');
  });
  const problems =
    save.error instanceof ApiError && save.error.code === 'SETTINGS_INVALID'
      ? ((save.error.details as { problems?: Problem[] } | undefined)?.problems ?? [])
      : [];
  const errorOf = (key: string) => {
    const p = problems.find((x) => x.field === key);
    return p ? problemText(p) : undefined;
  };
  const waiting = fields.filter((f) => f.pending);
  const input = (f: Editable) => {
    const common = { label: label(f.key), error: errorOf(f.key) };
    const h = `${f.overridden ? t('settings.edit.overridden') : hint(f.key)}${f.pending ? ` ${t('settings.edit.pending')}` : ''}`;
    if (f.kind === 'secret')
      return (
        <TextField
          {...common}
          hint={`${f.set ? t('settings.edit.secretSet') : t('settings.edit.secretUnset')} ${h}`}
          type="password"
          autoComplete="new-password"
          value={secrets[f.key] ?? ''}
          onValue={(v) => setSecrets((s) => ({ ...s, [f.key]: v }))}
          disabled={f.overridden}
          data-testid={`setting-${f.key}`}
        />
      );
    if (f.kind === 'boolean')
      return (
        <div class="field">
          <label class="check">
            <input
              type="checkbox"
              checked={draft[f.key] === true}
              disabled={f.overridden}
              data-testid={`setting-${f.key}`}
              onChange={(e) => set(f.key, e.currentTarget.checked)}
            />{' '}
            {common.label}
          </label>
          <div class="hint">{h}</div>
        </div>
      );
    if (f.kind === 'choice' || (f.kind === 'list' && f.choices))
      return (
        <Field label={common.label} hint={h} error={common.error}>
          {(p) =>
            f.kind === 'choice' ? (
              <select
                class="input"
                {...p}
                value={String(draft[f.key])}
                disabled={f.overridden}
                data-testid={`setting-${f.key}`}
                onChange={(e) => set(f.key, e.currentTarget.value)}
              >
                {f.choices!.map((c) => (
                  <option value={c}>{t(`settings.choices.${c}` as never)}</option>
                ))}
              </select>
            ) : (
              <div class="check-list" role="group" aria-label={common.label} {...p}>
                {f.choices!.map((c) => {
                  const on = (draft[f.key] as string[]).includes(c);
                  return (
                    <label class="check">
                      <input
                        type="checkbox"
                        checked={on}
                        disabled={f.overridden}
                        onChange={() =>
                          set(
                            f.key,
                            on ? (draft[f.key] as string[]).filter((x) => x !== c) : [...(draft[f.key] as string[]), c],
                          )
                        }
                      />{' '}
                      {roleLabel(c)}
                    </label>
                  );
                })}
              </div>
            )
          }
        </Field>
      );
    return (
      <TextField
        {...common}
        hint={h}
        {...(f.kind === 'integer' ? { inputMode: 'numeric' as const } : {})}
        value={Array.isArray(draft[f.key]) ? (draft[f.key] as string[]).join(', ') : String(draft[f.key] ?? '')}
        onValue={(v) => set(f.key, v)}
        disabled={f.overridden}
        spellcheck={false}
        data-testid={`setting-${f.key}`}
      />
    );
  };
  return (
    <form
      class="stack"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      {waiting.length ? (
        <Alert kind="warn" title={t('settings.edit.restartTitle')}>
          <span data-testid="restart-needed">
            {t('settings.edit.restart', { fields: waiting.map((f) => label(f.key)).join(', ') })}
          </span>
        </Alert>
      ) : null}
      {problems.length ? (
        <Alert kind="error" title={t('settings.edit.refused')}>
          {t('settings.edit.refusedText', { count: problems.length })}
        </Alert>
      ) : (
        <ErrorAlert error={save.error} />
      )}
      <div class="settings-grid">
        {GROUPS.map((g) => {
          const mine = fields.filter((f) => f.group === g);
          return mine.length ? (
            <Card title={t(`settings.groups.${g}`)}>
              <div class="stack" data-group={g}>
                {mine.map(input)}
              </div>
            </Card>
          ) : null;
        })}
      </div>
      <div class="row">
        <Button variant="primary" type="submit" busy={save.busy}>
          {t('settings.edit.save')}
        </Button>
        <span class="muted small">{t('settings.edit.whenEffective')}</span>
      </div>
    </form>
  );
}
