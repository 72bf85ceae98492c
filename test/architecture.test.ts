import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

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
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|tsx|mts)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

/** Lines that read or write the environment through `process` (comments excluded). */
function envUses(text: string): number[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/.*$/gm, '');
  const lines: number[] = [];
  code.split('\n').forEach((l, i) => {
    if (/\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])|\{[^}]*\benv\b[^}]*\}\s*=\s*process\b/.test(l)) lines.push(i + 1);
  });
  return lines;
}

describe('architecture', () => {
  it('the import rules hold, apart from the named exceptions, and no exception is stale', () => {
    const r = check();
    expect(r.stdout + r.stderr).toMatch(/0 violation\(s\)/);
    expect(r.status).toBe(0);
  }, 120_000);

  it('the checker fails on forbidden imports (a vault file importing the PKCS#11 provider and a keys internal)', () => {
    const probe = path.join(ROOT, 'src', 'vault', `arch-probe-${process.pid}.ts`);
    fs.writeFileSync(probe, "import { Pkcs11KeyProvider } from '../keys/pkcs11/provider.js';\nimport { DekCache } from '../keys/dek-cache.js';\nexport const p = [Pkcs11KeyProvider, DekCache];\n");
    try {
      const r = check(path.relative(ROOT, probe));
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(`implementation-outside-registry: src/vault/arch-probe-${process.pid}.ts -> src/keys/pkcs11/provider.ts`);
      expect(r.stdout).toContain(`cross-module-internals: src/vault/arch-probe-${process.pid}.ts -> src/keys/dek-cache.ts`);
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
    for (const f of Object.keys(ENV_EXCEPTIONS)) expect(envUses(fs.readFileSync(path.join(ROOT, f), 'utf8')), f).not.toEqual([]);
  });

  it('the process.env scan sees the forms it forbids', () => {
    expect(envUses('const a = process.env.X;')).toEqual([1]);
    expect(envUses("const a = process['env'];")).toEqual([1]);
    expect(envUses('const { env } = process;')).toEqual([1]);
    expect(envUses('// process.env in a comment\nconst b = 1;')).toEqual([]);
  });
});
