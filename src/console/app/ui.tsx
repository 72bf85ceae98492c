import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { describeError } from './api.js';
import { formatDate, formatNumber, t } from './i18n/index.js';

/**
 * The console's design system: a few accessible building blocks. No inline style anywhere (CSP
 * style-src 'self'): everything is a class from styles.css.
 */

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: 'primary' | 'secondary' | 'danger' | 'ghost';
  busy?: boolean;
  small?: boolean;
  type?: 'button' | 'submit';
  disabled?: boolean;
};

export function Button({
  variant = 'secondary',
  busy,
  small,
  type = 'button',
  children,
  disabled,
  ...rest
}: ButtonProps) {
  const cls = ['btn', `btn-${variant}`, small ? 'btn-sm' : '', busy ? 'is-busy' : ''].filter(Boolean).join(' ');
  return (
    <button {...rest} type={type} class={cls} disabled={disabled || busy} aria-busy={busy ? 'true' : undefined}>
      {busy ? <span class="spinner" aria-hidden="true" /> : null}
      {children}
    </button>
  );
}

export function LinkButton({
  href,
  children,
  variant = 'secondary',
  small,
}: {
  href: string;
  children: ComponentChildren;
  variant?: 'primary' | 'secondary' | 'ghost';
  small?: boolean;
}) {
  return (
    <a class={['btn', `btn-${variant}`, small ? 'btn-sm' : ''].join(' ')} href={href}>
      {children}
    </a>
  );
}

export interface FieldProps {
  label: string;
  hint?: ComponentChildren;
  error?: string | undefined;
  children: (p: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: 'true' }) => ComponentChildren;
}

/** label + control + hint + error, wired with ids for assistive technology */
export function Field({ label, hint, error, children }: FieldProps) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const describedBy = [hint ? hintId : '', error ? errId : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${error ? ' has-error' : ''}`}>
      <label for={id}>{label}</label>
      {children({
        id,
        ...(describedBy ? { 'aria-describedby': describedBy } : {}),
        ...(error ? { 'aria-invalid': 'true' as const } : {}),
      })}
      {hint ? (
        <div class="hint" id={hintId}>
          {hint}
        </div>
      ) : null}
      {error ? (
        <div class="field-error" id={errId}>
          {error}
        </div>
      ) : null}
    </div>
  );
}

interface InputAttrs {
  type?: 'text' | 'password' | 'email' | 'search' | 'number' | 'url' | 'datetime-local' | 'date';
  name?: string;
  autoComplete?: string;
  required?: boolean;
  autoFocus?: boolean;
  inputMode?: 'text' | 'numeric' | 'email' | 'search';
  placeholder?: string;
  class?: string;
  spellcheck?: boolean;
  autoCapitalize?: 'none' | 'off';
  min?: string | number;
  max?: string | number;
  disabled?: boolean;
  maxLength?: number;
  pattern?: string;
}
type InputProps = InputAttrs & {
  label: string;
  hint?: ComponentChildren;
  error?: string | undefined;
  value: string;
  onValue: (v: string) => void;
  'data-testid'?: string;
};

export function TextField({ label, hint, error, value, onValue, ...rest }: InputProps) {
  return (
    <Field label={label} hint={hint} error={error}>
      {(p) => (
        <input
          class="input"
          {...(rest as object)}
          {...p}
          value={value}
          onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)}
        />
      )}
    </Field>
  );
}

export function SelectField({
  label,
  hint,
  value,
  onValue,
  options,
  disabled,
}: {
  label: string;
  hint?: string;
  value: string;
  onValue: (v: string) => void;
  options: readonly (string | { value: string; label: string })[];
  disabled?: boolean;
}) {
  return (
    <Field label={label} hint={hint}>
      {(p) => (
        <select
          class="input"
          {...p}
          value={value}
          disabled={disabled}
          onChange={(e) => onValue((e.currentTarget as HTMLSelectElement).value)}
        >
          {options.map((o) =>
            typeof o === 'string' ? <option value={o}>{o}</option> : <option value={o.value}>{o.label}</option>,
          )}
        </select>
      )}
    </Field>
  );
}

export function Alert({
  kind = 'info',
  title,
  children,
}: {
  kind?: 'info' | 'ok' | 'warn' | 'error';
  title?: string;
  children?: ComponentChildren;
}) {
  return (
    <div class={`alert alert-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      <Icon name={kind === 'ok' ? 'check' : kind === 'info' ? 'info' : 'alert'} />
      <div>
        {title ? <strong class="alert-title">{title}</strong> : null}
        {children ? <div class="alert-body">{children}</div> : null}
      </div>
    </div>
  );
}

/** an API (or other) error, explained */
export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  const d = describeError(error);
  return (
    <Alert kind="error" title={d.title}>
      <p>{d.text}</p>
      {d.requestId ? (
        <p class="muted small">
          {t('common.requestId')} <code>{d.requestId}</code>
        </p>
      ) : null}
    </Alert>
  );
}

export function EmptyState({
  title,
  children,
  action,
  icon = 'inbox',
}: {
  title: string;
  children?: ComponentChildren;
  action?: ComponentChildren;
  icon?: IconName;
}) {
  return (
    <div class="empty">
      <Icon name={icon} size={32} />
      <h3>{title}</h3>
      {children ? <p class="muted">{children}</p> : null}
      {action ? <div class="empty-action">{action}</div> : null}
    </div>
  );
}

export function Loading({ label = t('common.loading') }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}
    </div>
  );
}

export function PageHeader({
  title,
  description,
  actions,
  back,
}: {
  title: string;
  description?: ComponentChildren;
  actions?: ComponentChildren;
  back?: { href: string; label: string };
}) {
  return (
    <div class="page-header">
      <div>
        {back ? (
          <a class="back" href={back.href}>
            ← {back.label}
          </a>
        ) : null}
        <h1 tabIndex={-1} class="page-title">
          {title}
        </h1>
        {description ? <p class="muted">{description}</p> : null}
      </div>
      {actions ? <div class="page-actions">{actions}</div> : null}
    </div>
  );
}

export function Card({
  title,
  children,
  actions,
  class: cls,
}: {
  title?: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
  class?: string;
}) {
  return (
    <section class={`card ${cls ?? ''}`}>
      {title || actions ? (
        <div class="card-header">
          {title ? <h2>{title}</h2> : <span />}
          {actions ? <div class="card-actions">{actions}</div> : null}
        </div>
      ) : null}
      <div class="card-body">{children}</div>
    </section>
  );
}

export function Badge({
  kind = 'neutral',
  children,
}: {
  kind?: 'neutral' | 'ok' | 'warn' | 'error' | 'accent';
  children: ComponentChildren;
}) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

/** a key/value list (definition list) */
export function Facts({ items }: { items: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {items.map(([k, v]) => (
        <div class="fact">
          <dt>{k}</dt>
          <dd>{v ?? '—'}</dd>
        </div>
      ))}
    </dl>
  );
}

/** native <dialog>: modal, focus kept inside, Escape closes */
export function Dialog({
  open,
  title,
  onClose,
  children,
  footer,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  footer?: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      <div class="dialog-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-btn" aria-label={t('common.close')} onClick={onClose}>
          <Icon name="x" />
        </button>
      </div>
      <div class="dialog-body">{open ? children : null}</div>
      {footer ? <div class="dialog-footer">{footer}</div> : null}
    </dialog>
  );
}

/**
 * A dialog holding one form: the action's error on top, Cancel and the submit button below. The
 * form submits (button or Enter) only when `ready`; closing clears the action's error.
 */
export function FormDialog({
  open,
  title,
  id,
  submitLabel,
  action,
  ready,
  onClose,
  error,
  class: cls,
  children,
}: {
  open: boolean;
  title: string;
  /** the form's id (the submit button sits outside it, in the footer) */
  id: string;
  submitLabel: string;
  action: { run: () => unknown; busy: boolean; error: unknown; clear: () => void };
  ready: boolean;
  onClose: () => void;
  /** shown instead of the action's error; `null` shows none (a field shows it) */
  error?: unknown;
  class?: string;
  children: ComponentChildren;
}) {
  return (
    <Dialog
      open={open}
      title={title}
      onClose={() => (onClose(), action.clear())}
      footer={
        <>
          <Button onClick={onClose}>{t('common.cancel')}</Button>
          <Button variant="primary" type="submit" form={id} busy={action.busy} disabled={!ready}>
            {submitLabel}
          </Button>
        </>
      }
    >
      <ErrorAlert error={error === undefined ? action.error : error} />
      <form
        id={id}
        class={cls}
        onSubmit={(e) => {
          e.preventDefault();
          if (ready) void action.run();
        }}
      >
        {children}
      </form>
    </Dialog>
  );
}

export function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  const pct = max > 0 ? Math.min(100, Math.floor((value / max) * 100)) : 0;
  return (
    <div class="progress">
      <progress value={value} max={max || 1} aria-label={label} />
      <span class="progress-text">{pct}%</span>
    </div>
  );
}

/** data loading with error and reload; cancels on unmount or change of deps */
export function useAsync<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
): { data: T | undefined; error: unknown; loading: boolean; reload: () => void; set: (t: T) => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    fn(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data, error: undefined, loading: false }),
      (error: unknown) => !ac.signal.aborted && setState({ data: undefined, error, loading: false }),
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, error: undefined, loading: false }), []);
  return { ...state, reload, set };
}

/** runs an action with busy and error state */
export function useAction<A extends unknown[], R>(
  fn: (...a: A) => Promise<R>,
): { run: (...a: A) => Promise<R | undefined>; busy: boolean; error: unknown; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (...a: A) => {
    setBusy(true);
    setError(undefined);
    try {
      return await fn(...a);
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, clear: () => setError(undefined) };
}

// ---- confirmation of a consequential action (a modal dialog, never window.confirm) ----
export interface ConfirmRequest {
  title: string;
  /** the consequence, in words: what happens, to whom, and whether it can be undone */
  body: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
}
let pending: (ConfirmRequest & { resolve: (ok: boolean) => void }) | undefined;
let confirmSubs: (() => void)[] = [];
/**
 * Asks before a consequential action: resolves true when the person confirms, false when they
 * cancel (button, Escape, close). `ConfirmHost` (rendered once by the shell) shows the dialog.
 */
export function confirmAction(r: ConfirmRequest): Promise<boolean> {
  pending?.resolve(false);
  return new Promise((resolve) => {
    pending = { ...r, resolve };
    confirmSubs.forEach((s) => s());
  });
}
export function ConfirmHost() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const s = () => setTick((n) => n + 1);
    confirmSubs.push(s);
    return () => {
      confirmSubs = confirmSubs.filter((x) => x !== s);
    };
  }, []);
  const p = pending;
  const close = (ok: boolean) => {
    if (!pending) return;
    const r = pending.resolve;
    pending = undefined;
    confirmSubs.forEach((s) => s());
    r(ok);
  };
  return (
    <Dialog
      open={!!p}
      title={p?.title ?? ''}
      onClose={() => close(false)}
      footer={
        <>
          <Button onClick={() => close(false)}>{t('common.cancel')}</Button>
          <Button variant={p?.danger ? 'danger' : 'primary'} data-testid="confirm-action" onClick={() => close(true)}>
            {p?.confirmLabel ?? t('common.confirm')}
          </Button>
        </>
      }
    >
      <div class="stack" data-testid="confirm-body">
        {p?.body}
      </div>
    </Dialog>
  );
}

// ---- notifications (a polite live region) ----
type Note = { id: number; text: string; kind: 'ok' | 'error' | 'info' };
let notes: Note[] = [];
let noteSubs: ((n: Note[]) => void)[] = [];
let noteSeq = 0;
export function notify(text: string, kind: Note['kind'] = 'ok'): void {
  const n = { id: ++noteSeq, text, kind };
  notes = [...notes, n];
  noteSubs.forEach((s) => s(notes));
  setTimeout(() => {
    notes = notes.filter((x) => x.id !== n.id);
    noteSubs.forEach((s) => s(notes));
  }, 6000);
}
export function Notifications() {
  const [list, setList] = useState<Note[]>(notes);
  useEffect(() => {
    noteSubs.push(setList);
    return () => {
      noteSubs = noteSubs.filter((s) => s !== setList);
    };
  }, []);
  return (
    <div class="toasts" aria-live="polite" role="status">
      {list.map((n) => (
        <div key={n.id} class={`toast toast-${n.kind}`}>
          {n.text}
        </div>
      ))}
    </div>
  );
}

// ---- formatting (in the console's language: i18n/index.ts) ----
const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;
export function bytes(n: number | undefined | null): string {
  if (n === undefined || n === null) return '—';
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  const num =
    i === 0
      ? formatNumber(v)
      : formatNumber(v, { minimumFractionDigits: v < 100 ? 1 : 0, maximumFractionDigits: v < 100 ? 1 : 0 });
  return `${num} ${t(`common.units.${UNITS[i]!}`)}`;
}

export function when(t: number | string | undefined | null): string {
  if (t === undefined || t === null || t === '') return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return formatDate(d, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function Time({ t }: { t: number | string | undefined | null }) {
  if (t === undefined || t === null || t === '') return <span>—</span>;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return <span>{String(t)}</span>;
  return (
    <time
      dateTime={d.toISOString()}
      title={`${d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC')}`}
    >
      {when(t)}
    </time>
  );
}

export function duration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null) return '—';
  if (ms < 1000) return t('common.duration.ms', { ms: formatNumber(Math.round(ms)) });
  const s = ms / 1000;
  if (s < 60)
    return t('common.duration.s', {
      s: formatNumber(s, { maximumFractionDigits: s < 10 ? 1 : 0, minimumFractionDigits: s < 10 ? 1 : 0 }),
    });
  const m = Math.floor(s / 60);
  if (m < 60) return t('common.duration.min', { m, s: Math.round(s % 60) });
  return t('common.duration.h', { h: Math.floor(m / 60), m: m % 60 });
}

// ---- icons (inline SVG elements: markup, not styles) ----
const PATHS = {
  check: 'M5 12l5 5L20 7',
  info: 'M12 8h.01M11 12h1v5h1M12 3a9 9 0 100 18 9 9 0 000-18z',
  alert: 'M12 9v4m0 4h.01M10.3 3.9L1.8 18a2 2 0 001.7 3h17a2 2 0 001.7-3L13.7 3.9a2 2 0 00-3.4 0z',
  x: 'M6 6l12 12M18 6L6 18',
  inbox: 'M3 13h5l2 3h4l2-3h5M5 5h14l2 8v6a1 1 0 01-1 1H4a1 1 0 01-1-1v-6z',
  folder: 'M3 7a2 2 0 012-2h4l2 2h8a2 2 0 012 2v8a2 2 0 01-2 2H5a2 2 0 01-2-2z',
  file: 'M14 3H6a1 1 0 00-1 1v16a1 1 0 001 1h12a1 1 0 001-1V8zM14 3v5h5',
  upload: 'M12 16V4m0 0l-5 5m5-5l5 5M4 20h16',
  download: 'M12 4v12m0 0l-5-5m5 5l5-5M4 20h16',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  users:
    'M16 19v-1a4 4 0 00-4-4H6a4 4 0 00-4 4v1M9 10a3 3 0 100-6 3 3 0 000 6zM22 19v-1a4 4 0 00-3-3.9M16 4.1a3 3 0 010 5.8',
  key: 'M15 7a3 3 0 11-3 3M12 10l-9 9v2h3l1-1v-2h2v-2h2l1.5-1.5M15 4a6 6 0 110 12 6 6 0 010-12z',
  shield: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z',
  archive: 'M3 5h18v4H3zM5 9v10h14V9M10 13h4',
  list: 'M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01',
  settings:
    'M12 15a3 3 0 100-6 3 3 0 000 6zM19.4 15a1.7 1.7 0 00.3 1.8l.1.1a2 2 0 11-2.8 2.8l-.1-.1a1.7 1.7 0 00-2.9 1.2V21a2 2 0 11-4 0v-.1a1.7 1.7 0 00-2.9-1.2l-.1.1a2 2 0 11-2.8-2.8l.1-.1A1.7 1.7 0 003 15H3a2 2 0 110-4h.1a1.7 1.7 0 001.2-2.9l-.1-.1a2 2 0 112.8-2.8l.1.1A1.7 1.7 0 0010 3.1V3a2 2 0 114 0v.1a1.7 1.7 0 002.9 1.2l.1-.1a2 2 0 112.8 2.8l-.1.1a1.7 1.7 0 001.2 2.9H21a2 2 0 110 4h-.1a1.7 1.7 0 00-1.5 1z',
  user: 'M20 21v-2a4 4 0 00-4-4H8a4 4 0 00-4 4v2M12 11a4 4 0 100-8 4 4 0 000 8z',
  search: 'M11 18a7 7 0 100-14 7 7 0 000 14zM21 21l-5-5',
  clock: 'M12 7v5l3 3M12 3a9 9 0 100 18 9 9 0 000-18z',
  refresh: 'M4 4v6h6M20 20v-6h-6M5.5 15a7 7 0 0012 2.5L20 14M18.5 9a7 7 0 00-12-2.5L4 10',
  logout: 'M9 21H5a2 2 0 01-2-2V5a2 2 0 012-2h4M16 17l5-5-5-5M21 12H9',
  plus: 'M12 5v14M5 12h14',
  restore: 'M3 12a9 9 0 109-9 9.7 9.7 0 00-6.7 2.7L3 8M3 3v5h5',
  lock: 'M6 11h12v10H6zM8 11V7a4 4 0 018 0v4',
  home: 'M3 11l9-8 9 8M5 10v10h14V10',
} as const;
export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 18 }: { name: IconName; size?: number }) {
  return (
    <svg
      class="icon"
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      stroke-width="1.8"
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
