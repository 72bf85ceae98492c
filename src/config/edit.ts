import fs from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ValueErrorType } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, type Config } from './schema.js';
import { CONFIG_FILE, ConfigError, applyEnv, loadConfig, validateConfig, type Env } from './load.js';
import { AppError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/atomic-file.js';

/**
 * The settings an admin may change from the console: a safe subset (message gateways, syslog,
 * alert channels, time zone, password and second-factor policy). An edit is checked against the
 * same schema as `config.json` (each field against its own part of the schema, then the whole file
 * as `coffre serve` would load it), then written to `config.json` atomically. Secrets (the SMTP
 * password, the SMS gateway's header, the webhook key) are write-only: they go to a file of their
 * own in the data directory (mode 0600) whose path the configuration names, and are never read back.
 *
 * The running appliance keeps the configuration it started with (it is frozen), so every change
 * takes effect at the next start of the service: each field says so (`restart`).
 */
export type FieldKind = 'text' | 'integer' | 'choice' | 'boolean' | 'list' | 'secret';

export interface EditableField {
  /** dotted path in the configuration */
  key: string;
  /** the group it is shown in */
  group: 'mail' | 'sms' | 'syslog' | 'alerts' | 'site' | 'password' | 'mfa';
  kind: FieldKind;
  /** secrets: the configuration key of the file that holds it, and that file's name in `<data dir>/secrets/` */
  file?: { key: string; name: string };
  /** the allowed values (choices, and the items of some lists) */
  choices?: readonly string[];
}

const ROLES = ['admin', 'member', 'backup-operator', 'auditor', 'records-manager'] as const;

export const EDITABLE: readonly EditableField[] = [
  { key: 'mail.smtp.host', group: 'mail', kind: 'text' },
  { key: 'mail.smtp.port', group: 'mail', kind: 'integer' },
  { key: 'mail.smtp.tls', group: 'mail', kind: 'choice', choices: ['required', 'implicit', 'disabled'] },
  { key: 'mail.smtp.user', group: 'mail', kind: 'text' },
  {
    key: 'mail.smtp.password',
    group: 'mail',
    kind: 'secret',
    file: { key: 'mail.smtp.passwordFile', name: 'smtp-password' },
  },
  { key: 'mail.smtp.from', group: 'mail', kind: 'text' },
  { key: 'mail.sms.url', group: 'sms', kind: 'text' },
  {
    key: 'mail.sms.authHeader',
    group: 'sms',
    kind: 'secret',
    file: { key: 'mail.sms.authHeaderFile', name: 'sms-auth-header' },
  },
  { key: 'audit.syslog.enabled', group: 'syslog', kind: 'boolean' },
  { key: 'audit.syslog.transport', group: 'syslog', kind: 'choice', choices: ['tls', 'tcp', 'udp'] },
  { key: 'audit.syslog.host', group: 'syslog', kind: 'text' },
  { key: 'audit.syslog.port', group: 'syslog', kind: 'integer' },
  { key: 'monitoring.alerts.email.to', group: 'alerts', kind: 'list' },
  { key: 'monitoring.alerts.syslog.enabled', group: 'alerts', kind: 'boolean' },
  { key: 'monitoring.alerts.webhook.url', group: 'alerts', kind: 'text' },
  {
    key: 'monitoring.alerts.webhook.secret',
    group: 'alerts',
    kind: 'secret',
    file: { key: 'monitoring.alerts.webhook.secretFile', name: 'webhook-secret' },
  },
  { key: 'site.timeZone', group: 'site', kind: 'text' },
  { key: 'auth.password.minLength', group: 'password', kind: 'integer' },
  { key: 'auth.password.minClasses', group: 'password', kind: 'integer' },
  { key: 'auth.password.contextWords', group: 'password', kind: 'list' },
  { key: 'auth.mfa.requiredRoles', group: 'mfa', kind: 'list', choices: ROLES },
];

/** why a value was refused, as a rule the console puts in words (never the schema's own text or pattern) */
export interface FieldProblem {
  field: string;
  rule:
    | 'required'
    | 'type'
    | 'minimum'
    | 'maximum'
    | 'minLength'
    | 'maxLength'
    | 'format'
    | 'choice'
    | 'timeZone'
    | 'weaker'
    | 'invalid';
  limit?: number;
}

export interface EditableView {
  key: string;
  group: EditableField['group'];
  kind: FieldKind;
  choices?: string[];
  /** the value in effect (absent for secrets) */
  value?: unknown;
  /** secrets: whether one is set (the secret itself is never returned) */
  set?: boolean;
  /** the environment sets this key: an edit in config.json would not take effect */
  overridden: boolean;
  /** saved in config.json but not in effect yet (the service has not restarted since) */
  pending: boolean;
  /** the change takes effect when the service starts again */
  restart: true;
}

const parts = (key: string) => key.split('.');

function getPath(o: unknown, keys: string[]): unknown {
  let v = o;
  for (const k of keys) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function setPath(o: Record<string, unknown>, keys: string[], value: unknown): void {
  let cur = o;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

/** the part of the configuration schema at a dotted key */
function schemaAt(key: string): TSchema | undefined {
  let s: TSchema | undefined = ConfigSchema;
  for (const k of parts(key)) s = (s as { properties?: Record<string, TSchema> } | undefined)?.properties?.[k];
  return s;
}

const limitOf = (s: unknown, name: string): number | undefined =>
  typeof (s as Record<string, unknown>)[name] === 'number'
    ? ((s as Record<string, number>)[name] as number)
    : undefined;

/** the first reason a value does not fit its part of the schema, as a rule */
function fieldProblem(f: EditableField, value: unknown): FieldProblem | undefined {
  const schema = schemaAt(f.kind === 'secret' ? f.file!.key : f.key);
  if (f.kind === 'secret') return typeof value === 'string' ? undefined : { field: f.key, rule: 'type' };
  if (f.key === 'site.timeZone' && typeof value === 'string' && !validTimeZone(value))
    return { field: f.key, rule: 'timeZone' };
  if (f.choices && f.kind === 'list' && Array.isArray(value) && value.some((v) => !f.choices!.includes(String(v))))
    return { field: f.key, rule: 'choice' };
  if (!schema) return undefined;
  const e = Value.Errors(schema, value).First();
  if (!e) return undefined;
  const field = f.key;
  switch (e.type) {
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return { field, rule: 'minimum', limit: limitOf(e.schema, 'minimum')! };
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return { field, rule: 'maximum', limit: limitOf(e.schema, 'maximum')! };
    case ValueErrorType.StringMinLength:
      return { field, rule: 'minLength', limit: limitOf(e.schema, 'minLength')! };
    case ValueErrorType.StringMaxLength:
      return { field, rule: 'maxLength', limit: limitOf(e.schema, 'maxLength')! };
    case ValueErrorType.StringPattern:
    case ValueErrorType.StringFormat:
      return { field, rule: 'format' };
    case ValueErrorType.Union:
    case ValueErrorType.Literal:
      return { field, rule: 'choice' };
    default:
      return { field, rule: 'type' };
  }
}

/**
 * Sign-in policies the console may only make stricter: a longer or more varied password, more roles
 * that need a second factor. Relaxing them (which would let a stolen admin session open the way for
 * weaker credentials) is done in config.json on the appliance by whoever runs it, and takes effect
 * at its restart like any other change.
 */
const TIGHTEN_ONLY: readonly { key: string; weaker: (before: unknown, after: unknown) => boolean }[] = [
  { key: 'auth.password.minLength', weaker: (b, a) => Number(a) < Number(b) },
  { key: 'auth.password.minClasses', weaker: (b, a) => Number(a) < Number(b) },
  {
    key: 'auth.mfa.requiredRoles',
    weaker: (b, a) => (b as string[]).some((role) => !(a as string[]).includes(role)),
  },
];

/** the tighten-only policies an edit would relax, comparing the effective values before and after */
function weakened(before: Config, after: Config): FieldProblem[] {
  return TIGHTEN_ONLY.filter((p) => p.weaker(getPath(before, parts(p.key)), getPath(after, parts(p.key)))).map((p) => ({
    field: p.key,
    rule: 'weaker' as const,
  }));
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The editable fields as the console shows them: the values saved in config.json (with the
 * environment's overrides), whether each waits for a restart to take effect, secrets only as set
 * or not.
 */
export function editableView(running: Config, env: Env): EditableView[] {
  const fromEnv: Record<string, unknown> = {};
  applyEnv(fromEnv, env);
  let saved: Config = running;
  try {
    saved = loadConfig(running.dataDir, env);
  } catch {
    /* unreadable or invalid on disk: what runs is what there is */
  }
  return EDITABLE.map((f) => {
    const at = parts(f.kind === 'secret' ? f.file!.key : f.key);
    const v = getPath(saved, at);
    return {
      key: f.key,
      group: f.group,
      kind: f.kind,
      ...(f.choices ? { choices: [...f.choices] } : {}),
      ...(f.kind === 'secret' ? { set: typeof v === 'string' && v !== '' } : { value: v ?? null }),
      overridden: getPath(fromEnv, at) !== undefined,
      pending: JSON.stringify(v) !== JSON.stringify(getPath(running, at)),
      restart: true as const,
    };
  });
}

/** Refused edit: every problem at once, each a field and a rule (400 SETTINGS_INVALID). */
export function settingsInvalid(problems: FieldProblem[]): AppError {
  return new AppError('SETTINGS_INVALID', `${problems.length} setting(s) refused; nothing was changed`, {
    httpStatus: 400,
    details: { problems },
  });
}

/**
 * Applies an admin's edit to `<dataDir>/config.json`: `values` by dotted key (null or '' removes
 * an optional value), `secrets` by the secret's key (written to their own files). Checks each
 * field, then the whole file as the next start would load it; refuses the lot on any problem
 * (nothing written). `beforeWrite` runs once the edit is known good and before anything is
 * written (the audit record: refused when it fails). Returns the keys changed.
 */
export async function applySettings(
  dataDir: string,
  env: Env,
  edit: { values?: Record<string, unknown>; secrets?: Record<string, string> },
  beforeWrite: (changed: string[]) => Promise<void>,
): Promise<{ changed: string[] }> {
  const file = path.join(dataDir, CONFIG_FILE);
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const original = structuredClone(raw);
  const problems: FieldProblem[] = [];
  const changed: string[] = [];
  const secretFiles: { file: string; text: string }[] = [];
  const byKey = new Map(EDITABLE.map((f) => [f.key, f]));
  for (const [key, value] of Object.entries(edit.values ?? {})) {
    const f = byKey.get(key);
    if (!f || f.kind === 'secret') {
      problems.push({ field: key, rule: 'invalid' });
      continue;
    }
    const empty = value === null || value === '';
    if (!empty) {
      const p = fieldProblem(f, value);
      if (p) {
        problems.push(p);
        continue;
      }
    }
    if (JSON.stringify(getPath(raw, parts(key))) !== JSON.stringify(empty ? undefined : value)) changed.push(key);
    setPath(raw, parts(key), empty ? undefined : value);
  }
  for (const [key, secret] of Object.entries(edit.secrets ?? {})) {
    const f = byKey.get(key);
    if (!f || f.kind !== 'secret' || typeof secret !== 'string') {
      problems.push({ field: key, rule: 'invalid' });
      continue;
    }
    if (secret === '') continue; // left empty: unchanged
    if (/[\r\n]/.test(secret)) {
      problems.push({ field: key, rule: 'format' });
      continue;
    }
    const rel = path.join('secrets', f.file!.name);
    secretFiles.push({ file: path.join(dataDir, rel), text: `${secret}\n` });
    setPath(raw, parts(f.file!.key), rel);
    changed.push(key);
  }
  if (problems.length) throw settingsInvalid(problems);
  // the whole file as `coffre serve` will load it (secret files do not exist yet: checked by path only)
  let after: Config;
  try {
    after = validateConfig(raw, dataDir, env, file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const keyOf = (p: string) => p.replace(/^\//, '').split('/').join('.');
    throw settingsInvalid(
      e.problems.map((p) => {
        const k = keyOf(p.path);
        const f = EDITABLE.find((x) => k === x.key || k.startsWith(`${x.key}.`) || x.file?.key === k);
        const field = f?.key ?? EDITABLE.find((x) => x.key.startsWith(`${k}.`))?.key ?? k;
        return { field, rule: /required/i.test(p.message) ? 'required' : 'invalid' } satisfies FieldProblem;
      }),
    );
  }
  const relaxed = weakened(validateConfig(original, dataDir, env, file), after);
  if (relaxed.length) throw settingsInvalid(relaxed);
  if (!changed.length) return { changed };
  await beforeWrite(changed);
  if (secretFiles.length) fs.mkdirSync(path.join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
  for (const s of secretFiles) writeFileAtomic(s.file, s.text, 0o600);
  writeFileAtomic(file, `${JSON.stringify(raw, null, 2)}\n`, fs.statSync(file).mode & 0o777);
  return { changed };
}
