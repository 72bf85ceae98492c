import fs from 'node:fs';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type Config, type ConfigFile } from './schema.js';
import { AppError } from '../shared/errors.js';
import { retiredKekGraceProblem } from './sections/keys.js';
import { PostgresDb, SqliteDb } from './sections/database.js';

export const CONFIG_FILE = 'config.json';

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Thrown with every problem at once; the CLI prints them all and exits 2. */
export class ConfigError extends AppError {
  readonly problems: ConfigProblem[] = [];
  constructor(problems: ConfigProblem[], source: string) {
    super(
      'CONFIG_INVALID',
      `${problems.length} problem(s) in ${source}:\n` +
        problems.map((p) => `  ${p.path || '/'}: ${p.message}`).join('\n'),
      {
        exitCode: 2,
        httpStatus: 500,
        expose: false,
        hint: 'fix the configuration; nothing was changed',
        details: problems,
      },
    );
    this.problems = problems;
  }
}

/** The only place that reads process.env (docs/architecture.md, checked by test/architecture.test.ts). */
export type Env = Readonly<Record<string, string | undefined>>;
export const processEnv = (): Env => process.env;

/** Data dir from the flag, else COFFRE_DATA_DIR, else ./data. */
export function resolveDataDir(flag: string | undefined, env: Env = processEnv()): string {
  return path.resolve(flag ?? env.COFFRE_DATA_DIR ?? 'data');
}

const SHORT_ENV: Record<string, string[]> = {
  COFFRE_PORT: ['http', 'port'],
  COFFRE_HOST: ['http', 'host'],
  COFFRE_PUBLIC_URL: ['http', 'publicUrl'],
  COFFRE_LOG_LEVEL: ['logging', 'level'],
};

function parseEnvValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function setPath(obj: Record<string, unknown>, keys: string[], value: unknown): void {
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

/**
 * Applies environment overrides: the short names above, and
 * `COFFRE_CFG_<section>__<key>[__<key>…]=<json or string>` for anything else.
 */
export function applyEnv(raw: Record<string, unknown>, env: Env): void {
  for (const [name, keys] of Object.entries(SHORT_ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(raw, keys, parseEnvValue(v));
  }
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith('COFFRE_CFG_') || v === undefined) continue;
    const keys = name.slice('COFFRE_CFG_'.length).split('__').filter(Boolean);
    if (keys.length) setPath(raw, keys, parseEnvValue(v));
  }
}

const isPathKey = (k: string) => k === 'file' || k === 'dir' || k.endsWith('File') || k.endsWith('Dir');

/** `credential:NAME`: a systemd credential, read at use time from $CREDENTIALS_DIRECTORY */
const CREDENTIAL = /^credential:([\w.-]+)$/;

/** A configured path against its base directory; a `credential:NAME` is not a path and stays as it is. */
export function resolveConfigPath(base: string, p: string): string {
  return CREDENTIAL.test(p) ? p : path.resolve(base, p);
}

/** Resolves path-like values against the data dir, in place. */
function resolvePaths(o: unknown, dataDir: string, parentKey = ''): void {
  if (Array.isArray(o)) return;
  if (typeof o !== 'object' || o === null) return;
  const rec = o as Record<string, unknown>;
  for (const [k, v] of Object.entries(rec)) {
    if (typeof v === 'string' && (isPathKey(k) || (parentKey === 'keys' && k === 'module'))) {
      rec[k] = resolveConfigPath(dataDir, v);
    } else if (typeof v === 'object') resolvePaths(v, dataDir, k);
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Files that must exist for the appliance to start, checked with the schema. */
function fileProblems(cfg: Partial<ConfigFile>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const must = (p: unknown, at: string) => {
    if (typeof p === 'string' && !CREDENTIAL.test(p) && !fs.existsSync(p))
      out.push({ path: at, message: `file not found: ${p}` });
  };
  if (!cfg.tls || !cfg.keys || !cfg.database) return out;
  must(cfg.tls.certFile, '/tls/certFile');
  must(cfg.tls.keyFile, '/tls/keyFile');
  must(cfg.tls.keyPassphraseFile, '/tls/keyPassphraseFile');
  must(cfg.tls.caFile, '/tls/caFile');
  must(cfg.keys.pinFile, '/keys/pinFile');
  must(cfg.keys.module, '/keys/module');
  must(cfg.keys.softhsmConfFile, '/keys/softhsmConfFile');
  if (cfg.database.type === 'postgres') must(cfg.database.passwordFile, '/database/passwordFile');
  if (cfg.storage?.type === 's3') {
    if (!cfg.storage.s3) out.push({ path: '/storage/s3', message: 'required when storage.type is "s3"' });
    must(cfg.storage.s3?.secretAccessKeyFile, '/storage/s3/secretAccessKeyFile');
    must(cfg.storage.s3?.caFile, '/storage/s3/caFile');
  }
  must(cfg.seals?.tsa.caFile, '/seals/tsa/caFile');
  if (cfg.seals?.tsa.urls.length && !cfg.seals.tsa.caFile)
    out.push({
      path: '/seals/tsa/caFile',
      message: 'required with seals.tsa.urls: the TSA certificate or its CA, to pin',
    });
  return out;
}

/** The form of `database` its `type` names (the SQLite form when `type` is absent or unknown). */
const databaseForm = (db: unknown) => ((db as { type?: unknown } | null)?.type === 'postgres' ? PostgresDb : SqliteDb);

/**
 * Defaults everywhere. `database` is a union of two forms: TypeBox would fill it with the first
 * form's defaults whatever its `type` (a PostgreSQL section got SQLite's `file`, then matched
 * neither form), so it gets the defaults of the form its `type` names.
 */
function withSectionDefaults(obj: Record<string, unknown>): Record<string, unknown> {
  const { database, ...rest } = obj;
  const out = Value.Default(ConfigSchema, rest) as Record<string, unknown>;
  if (database !== undefined) {
    // no `type`: the default form, SQLite (an override such as COFFRE_CFG_database__busyTimeoutMs alone)
    const db =
      typeof database === 'object' && database !== null && !('type' in database)
        ? { type: 'sqlite', ...database }
        : database;
    out.database = typeof db === 'object' && db !== null ? Value.Default(databaseForm(db), db) : db;
  }
  return out;
}

/** `database` checked against the form its `type` names, so each problem names its key (not "Expected union value"). */
function databaseProblems(db: unknown): ConfigProblem[] {
  if (typeof db !== 'object' || db === null) return [];
  const t = (db as { type?: unknown }).type;
  if (t !== 'postgres' && t !== 'sqlite')
    return [{ path: '/database/type', message: 'must be "sqlite" or "postgres"' }];
  const out: ConfigProblem[] = [];
  for (const e of Value.Errors(databaseForm(db), db))
    if (!out.some((p) => p.path === `/database${e.path}`)) out.push({ path: `/database${e.path}`, message: e.message });
  return out;
}

/**
 * Validates a raw configuration object (already parsed). Returns the frozen config, or throws a
 * ConfigError listing every problem at once (schema errors, unknown keys, missing files).
 */
export function validateConfig(raw: unknown, dataDir: string, env: Env = {}, source = CONFIG_FILE): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([{ path: '', message: 'must be a JSON object' }], source);
  }
  const obj = structuredClone(raw) as Record<string, unknown>;
  applyEnv(obj, env);
  const withDefaults = withSectionDefaults(obj);
  const problems: ConfigProblem[] = databaseProblems(withDefaults.database);
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    // unions report once per branch; keep the first message per path (`database`: its form's, above)
    if (problems.some((p) => p.path === e.path || p.path.startsWith(`${e.path}/`))) continue;
    problems.push({ path: e.path, message: e.message });
  }
  resolvePaths(withDefaults, dataDir);
  problems.push(
    ...fileProblems(withDefaults as unknown as ConfigFile).filter((f) => !problems.some((p) => p.path === f.path)),
  );
  if (problems.length === 0) {
    const c = withDefaults as unknown as ConfigFile;
    const grace = retiredKekGraceProblem(c.keys, c.backup.graceHours);
    if (grace) problems.push(grace);
  }
  if (problems.length) throw new ConfigError(problems, source);
  return deepFreeze({ ...(withDefaults as unknown as ConfigFile), dataDir });
}

/** Reads `<dataDir>/config.json` and the environment. Creates nothing. */
export function loadConfig(dataDir: string, env: Env = processEnv()): Config {
  const file = path.join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AppError('NO_APPLIANCE', `no appliance at ${dataDir} (${CONFIG_FILE}: ${code ?? 'unreadable'})`, {
      exitCode: 2,
      hint: 'run `coffre init --data-dir DIR` first, or pass the right --data-dir / COFFRE_DATA_DIR',
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([{ path: '', message: `not valid JSON: ${(e as Error).message}` }], file);
  }
  return validateConfig(raw, dataDir, env, file);
}

/**
 * Reads a secret from a file (trailing newline removed). `credential:NAME` reads a systemd
 * credential from $CREDENTIALS_DIRECTORY. The secret never appears in errors.
 */
export function readSecretFile(file: string, what: string, env: Env = processEnv()): string {
  let p = file;
  const m = CREDENTIAL.exec(file);
  if (m) {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir)
      throw new AppError(
        'SECRET_UNREADABLE',
        `${what}: systemd credential ${m[1]} requested but CREDENTIALS_DIRECTORY is not set`,
        { exitCode: 2 },
      );
    p = path.join(dir, m[1]!);
  }
  try {
    return fs.readFileSync(p, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new AppError(
      'SECRET_UNREADABLE',
      `${what}: cannot read ${p} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        exitCode: 2,
        hint: `check that the file exists and is readable by the service user`,
      },
    );
  }
}
