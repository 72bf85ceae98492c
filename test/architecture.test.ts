import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BackupDb, VaultDb } from '../src/db/index.js';

// The rules of docs/architecture.md: the import rules through scripts/check-architecture.mjs
// (dependency-cruiser with .dependency-cruiser.cjs), and `process.env` only in src/config/.
const ROOT = path.resolve(import.meta.dirname, '..');
const CHECK = path.join(ROOT, 'scripts', 'check-architecture.mjs');
const check = (...paths: string[]) => spawnSync(process.execPath, [CHECK, ...paths], { cwd: ROOT, encoding: 'utf8' });

/** Files outside src/config/ that may touch process.env, each with its reason (listed in docs/architecture.md). */
const ENV_EXCEPTIONS: Record<string, string> = {
  'src/keys/pkcs11/library.ts': 'SoftHSM2 finds its configuration only through SOFTHSM2_CONF, read inside C_Initialize',
};

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|tsx|mts)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** Lines that read or write the environment through `process` (comments excluded). */
function envUses(text: string): number[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/.*$/gm, '');
  const lines: number[] = [];
  code.split('\n').forEach((l, i) => {
    if (/\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])|\{[^}]*\benv\b[^}]*\}\s*=\s*process\b/.test(l))
      lines.push(i + 1);
  });
  return lines;
}

/** Text files of the repository whose comments and prose must point only at what the repository holds. */
function repoTextFiles(): string[] {
  const dirs = ['src', 'test', 'bench', 'scripts', 'migrations', 'docs', 'appliance', 'packer', 'compose', '.ci'];
  const files = ['README.md'];
  for (const d of dirs) {
    if (!fs.existsSync(path.join(ROOT, d))) continue;
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true, recursive: true })) {
      if (!e.isFile() || e.parentPath.includes('node_modules')) continue;
      if (!/\.(ts|tsx|mts|mjs|cjs|js|md|sh|json|hcl|yml|yaml|css)$|^[^.]+$/.test(e.name)) continue;
      files.push(path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    }
  }
  return files;
}

/** References to things outside the repository: issue numbers and the team's briefing notes. */
function outsideReferences(text: string): number[] {
  const lines: number[] = [];
  text.split('\n').forEach((l, i) => {
    if (/\b[Ii]ssues? #?\d+\b|\b(STYLE|ARCHITECTURE|CONTRACT|SECURITY-CHECKLIST)\.md\b/.test(l)) lines.push(i + 1);
  });
  return lines;
}

/** Security-checklist codes (P2, B5, Z6…) named in comments or test names. */
function checklistCodes(text: string): string[] {
  const comments = text.match(/\/\*[\s\S]*?\*\/|\/\/.*$|\b(?:it|describe|test)\(\s*['"`][^'"`]*/gm) ?? [];
  return comments.flatMap((c) => c.match(/\b[PRMBSTLZH][1-9]\d?\b/g) ?? []);
}

/**
 * Tables a module may query although another module owns them (`src/<owner>/tables.ts`), each with
 * its reason; listed in docs/architecture.md. The tables of `src/db/tables.ts` (jobs, leases,
 * appliance metadata) are the core every module shares.
 */
const TABLE_EXCEPTIONS: Record<string, string> = {
  'access -> auth':
    'access reviews list users and their API tokens; workspace membership checks the member is an active user',
  'auth -> access':
    'an account invited again, disabled or erased loses its workspace memberships in the same transaction',
  'backup -> audit': 'a backup archive carries the audit checkpoints',
  'backup -> auth': 'the backup pages show the user names of the people who acted (actors are stored as ids)',
  'backup -> keys': "a restore reads the restored database's wrapped data keys to check this HSM can unwrap them",
  'backup -> vault': 'a restore and a drill count the restored documents and versions',
  'monitoring -> access': 'the overdue-review rule reads review campaigns, read-only',
  'monitoring -> audit':
    'metrics and rules read the audit head, cursors and events (export lag, denials, mass download), read-only',
  'monitoring -> auth': 'metrics count sessions; the out-of-hours rule names admins, read-only',
  'monitoring -> backup': 'metrics and rules read targets, backups and checks (age of the newest backup), read-only',
  'monitoring -> vault': 'the mass-download rule sums version sizes, read-only',
  'privacy -> access': "a person's data export lists their workspaces and memberships, read-only",
  'privacy -> audit': "a person's data export carries the audit records about them, read-only",
  'privacy -> auth':
    "a person's data export lists their sessions, tokens, known clients and second-factor kind (metadata only), read-only",
  'privacy -> vault':
    "erasing the sole owner of a workspace with no new owner named trashes its documents in the erasure's transaction (destruction stays with the trash-clearing job, which honours retention and legal holds)",
  'privacy -> monitoring': "erasure removes the person's name from stored alert messages and notices not yet sent",
  'records -> access': 'retention policies and exports are per workspace',
  'records -> auth': 'histories and reports name the people who acted',
  'vault -> access': "every document operation checks the workspace's state and the caller's membership",
  'vault -> keys': 'orphan collection finds document data keys that no version or upload refers to, and destroys them',
};

/** Table owner by name, from every `src/<module>/tables.ts`. */
function tableOwners(): Map<string, string> {
  const owners = new Map<string, string>();
  for (const f of sources(path.join(ROOT, 'src')).filter((x) => /^src\/[^/]+\/tables\.ts$/.test(x))) {
    for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/^ {2}(\w+): \{/gm))
      owners.set(m[1]!, f.split('/')[1]!);
  }
  return owners;
}

/** Tables a source file names in a kysely query (from, into, update, delete, joins). */
function queriedTables(text: string): string[] {
  return [
    ...text.matchAll(
      /\.(?:selectFrom|insertInto|updateTable|deleteFrom|innerJoin|leftJoin|rightJoin|fullJoin|replaceInto|mergeInto)\(\s*['"`](\w+)/g,
    ),
  ].map((m) => m[1]!);
}

describe('architecture', () => {
  it('the import rules hold, apart from the named exceptions, and no exception is stale', () => {
    const r = check();
    expect(r.stdout + r.stderr).toMatch(/0 violation\(s\)/);
    expect(r.status).toBe(0);
  }, 120_000);

  it('the checker fails on forbidden imports (a vault file importing the PKCS#11 provider and a keys internal)', () => {
    const probe = path.join(ROOT, 'src', 'vault', `arch-probe-${process.pid}.ts`);
    fs.writeFileSync(
      probe,
      "import { Pkcs11KeyProvider } from '../keys/pkcs11/provider.js';\nimport { DekCache } from '../keys/dek-cache.js';\nexport const p = [Pkcs11KeyProvider, DekCache];\n",
    );
    try {
      const r = check(path.relative(ROOT, probe));
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(
        `implementation-outside-registry: src/vault/arch-probe-${process.pid}.ts -> src/keys/pkcs11/provider.ts`,
      );
      expect(r.stdout).toContain(
        `cross-module-internals: src/vault/arch-probe-${process.pid}.ts -> src/keys/dek-cache.ts`,
      );
    } finally {
      fs.rmSync(probe, { force: true });
    }
  }, 120_000);

  it('process.env is used only in src/config/ (and the named exceptions)', () => {
    const found: string[] = [];
    for (const f of sources(path.join(ROOT, 'src'))) {
      if (f.startsWith('src/config/') || f in ENV_EXCEPTIONS) continue;
      for (const line of envUses(fs.readFileSync(path.join(ROOT, f), 'utf8'))) found.push(`${f}:${line}`);
    }
    expect(found).toEqual([]);
    for (const f of Object.keys(ENV_EXCEPTIONS))
      expect(envUses(fs.readFileSync(path.join(ROOT, f), 'utf8')), f).not.toEqual([]);
  });

  it('the process.env scan sees the forms it forbids', () => {
    expect(envUses('const a = process.env.X;')).toEqual([1]);
    expect(envUses("const a = process['env'];")).toEqual([1]);
    expect(envUses('const { env } = process;')).toEqual([1]);
    expect(envUses('// process.env in a comment\nconst b = 1;')).toEqual([]);
  });
  it('comments and docs point only at what the repository holds: no issue numbers, no briefing notes', () => {
    const found: string[] = [];
    for (const f of repoTextFiles()) {
      if (f === 'test/architecture.test.ts') continue; // its own probes below
      for (const line of outsideReferences(fs.readFileSync(path.join(ROOT, f), 'utf8'))) found.push(`${f}:${line}`);
    }
    expect(found).toEqual([]);
    expect(outsideReferences('// see issue 7\nok\n/* STYLE.md #3 */')).toEqual([1, 3]);
  });

  it('every security-checklist code named in src/ and test/ is defined in docs/security-checklist.md', () => {
    const defined = new Set(
      fs
        .readFileSync(path.join(ROOT, 'docs', 'security-checklist.md'), 'utf8')
        .match(/^- [A-Z]\d{1,2}\b/gm)
        ?.map((m) => m.slice(2)),
    );
    const undefinedCodes: string[] = [];
    for (const f of [...sources(path.join(ROOT, 'src')), ...sources(path.join(ROOT, 'test'))]) {
      if (f === 'test/architecture.test.ts') continue; // its own probes below
      for (const c of checklistCodes(fs.readFileSync(path.join(ROOT, f), 'utf8')))
        if (!defined.has(c)) undefinedCodes.push(`${f}: ${c}`);
    }
    expect(undefinedCodes).toEqual([]);
    expect(defined.size).toBeGreaterThan(40);
    expect(checklistCodes("const T0 = 1; // B5 and Q9\nit('Z9: x', () => {})")).toEqual(['B5', 'Z9']);
  });
  it('every relative link of README.md and docs/ leads to a file of the repository', () => {
    const broken: string[] = [];
    const files = [
      'README.md',
      ...fs
        .readdirSync(path.join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    for (const f of files) {
      for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1]!)) continue;
        if (!fs.existsSync(path.join(ROOT, path.dirname(f), m[1]!))) broken.push(`${f}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });
  it("each module's typed view of the database grants exactly its own tables and the named exceptions", () => {
    const text = fs.readFileSync(path.join(ROOT, 'src', 'db', 'schemas.ts'), 'utf8');
    const granted: string[] = [];
    for (const m of text.matchAll(/export interface (\w+)Schema\s+extends([^{]+)\{/g)) {
      const mod = m[1]!.toLowerCase();
      const tables = m[2]!.split(',').map((s) =>
        s
          .trim()
          .replace(/Tables$/, '')
          .toLowerCase(),
      );
      expect(tables).toContain('core');
      for (const owner of tables) if (owner !== 'core' && owner !== mod) granted.push(`${mod} -> ${owner}`);
    }
    expect(granted.length).toBeGreaterThan(0);
    expect(granted.sort()).toEqual(Object.keys(TABLE_EXCEPTIONS).sort());
  });
  // Checked by the type-checker (`npm run lint` type-checks test/): each module's code receives its own
  // view, and a query on a table outside it does not compile. Were the views widened to the whole
  // database, these directives would be unused and the type-check would fail.
  function typedViewsRefuseOtherTables(vault: VaultDb, backup: BackupDb) {
    // @ts-expect-error the vault's view has no backup tables
    void vault.selectFrom('backup_targets');
    // @ts-expect-error the backup module's view has no monitoring tables
    void backup.selectFrom('alert_outbox');
    return [vault.selectFrom('vault_documents'), backup.selectFrom('backup_targets')];
  }
  void typedViewsRefuseOtherTables;
  it("no module queries another module's tables, apart from the named exceptions, and no exception is stale", () => {
    const owners = tableOwners();
    expect(owners.get('vault_documents')).toBe('vault');
    const found = new Map<string, string[]>();
    for (const f of sources(path.join(ROOT, 'src'))) {
      const parts = f.split('/');
      if (parts.length < 3) continue; // main.ts, init.ts: the composition root
      const mod = parts[1]!;
      for (const t of queriedTables(fs.readFileSync(path.join(ROOT, f), 'utf8'))) {
        const owner = owners.get(t);
        if (!owner || owner === mod || owner === 'db') continue;
        const key = `${mod} -> ${owner}`;
        found.set(key, [...(found.get(key) ?? []), `${f}: ${t}`]);
      }
    }
    expect(
      [...found.keys()].filter((k) => !(k in TABLE_EXCEPTIONS)).map((k) => `${k} (${found.get(k)!.join(', ')})`),
    ).toEqual([]);
    expect(Object.keys(TABLE_EXCEPTIONS).filter((k) => !found.has(k))).toEqual([]);
    expect(queriedTables("db.selectFrom('users as u').innerJoin(\"sessions\", 'x')")).toEqual(['users', 'sessions']);
  });
});
