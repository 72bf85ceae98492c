import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { tempDir, treeHashes } from '../support/tmp.js';
import { validateConfig, ConfigError, readSecretFile } from '../../src/config/index.js';

describe('configuration', () => {
  it('lists a wrong type, an unknown key and a missing certificate at once, exits 2, creates nothing', async () => {
    const dir = path.join(tempDir(), 'appliance');
    const init = await runCli(['init', '--data-dir', dir, '--json']);
    expect(init.code, init.stderr).toBe(0);
    const cfgFile = path.join(dir, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.http.port = 'eighty';
    cfg.http.colour = 'blue';
    cfg.tls = { certFile: 'tls/missing.pem' };
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    fs.rmSync(path.join(dir, 'coffre.db'));
    const before = treeHashes(dir);
    for (const args of [
      ['serve', '--data-dir', dir, '--port', '0'],
      ['db', 'migrate', '--data-dir', dir],
    ]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^CONFIG_INVALID: 3 problem\(s\)/);
      expect(r.stderr).toMatch(/\/http\/port: Expected integer/);
      expect(r.stderr).toMatch(/\/http\/colour: Unexpected property/);
      expect(r.stderr).toMatch(/\/tls\/certFile: file not found: .*missing\.pem/);
      expect(treeHashes(dir)).toEqual(before);
    }
  });

  it('applies COFFRE_* environment overrides and reports bad ones with their path', () => {
    const dir = tempDir();
    const base = {
      version: 1,
      applianceId: 'abcdefgh-1234',
      keys: { type: 'pkcs11', module: '/bin/sh', pinFile: '/bin/sh' },
      tls: { certFile: '/bin/sh', keyFile: '/bin/sh' },
    };
    const c = validateConfig(base, dir, { COFFRE_PORT: '9443', COFFRE_CFG_logging__level: 'debug' });
    expect(c.http.port).toBe(9443);
    expect(c.logging.level).toBe('debug');
    expect(Object.isFrozen(c.http)).toBe(true);
    // a systemd credential is not a file on disk: accepted, read at use time
    expect(
      validateConfig({ ...base, keys: { ...base.keys, pinFile: 'credential:hsm-pin' } }, dir, {}).keys.pinFile,
    ).toBe('credential:hsm-pin');
    expect(() => validateConfig({ ...base, keys: { ...base.keys, pinFile: 'secrets/missing' } }, dir, {})).toThrow(
      /keys\/pinFile: file not found/,
    );
    expect(c.database).toMatchObject({ type: 'sqlite', file: path.join(dir, 'coffre.db') });
    try {
      validateConfig(base, dir, { COFFRE_PORT: '99999' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.path)).toEqual(['/http/port']);
    }
  });

  it('takes a PostgreSQL database section with its own defaults, and names each problem of one', () => {
    const dir = tempDir();
    const pw = path.join(dir, 'pg-password');
    fs.writeFileSync(pw, 'secret\n');
    const base = {
      version: 1,
      applianceId: 'abcdefgh-1234',
      keys: { type: 'pkcs11', module: '/bin/sh', pinFile: '/bin/sh' },
      tls: { certFile: '/bin/sh', keyFile: '/bin/sh' },
    };
    const c = validateConfig(
      {
        ...base,
        database: { type: 'postgres', host: '127.0.0.1', database: 'coffre', user: 'coffre', passwordFile: pw },
      },
      dir,
      {},
    );
    expect(c.database).toEqual({
      type: 'postgres',
      host: '127.0.0.1',
      port: 5432,
      database: 'coffre',
      user: 'coffre',
      passwordFile: pw,
      ssl: true,
      maxConnections: 10,
    });
    expect(validateConfig({ ...base, database: { type: 'sqlite' } }, dir, {}).database).toEqual({
      type: 'sqlite',
      file: path.join(dir, 'coffre.db'),
      busyTimeoutMs: 5000,
    });
    const problems = (db: unknown) => {
      try {
        validateConfig({ ...base, database: db }, dir, {});
        return [];
      } catch (e) {
        return (e as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(problems({ type: 'postgres', host: '127.0.0.1', user: 'coffre', file: 'x.db', passwordFile: pw })).toEqual([
      '/database/database: Expected required property',
      '/database/file: Unexpected property',
    ]);
    expect(problems({ type: 'mysql' })).toEqual(['/database/type: must be "sqlite" or "postgres"']);
    // an override of one key without `type` (COFFRE_CFG_database__busyTimeoutMs) is the default form, SQLite
    expect(validateConfig(base, dir, { COFFRE_CFG_database__busyTimeoutMs: '250' }).database).toEqual({
      type: 'sqlite',
      file: path.join(dir, 'coffre.db'),
      busyTimeoutMs: 250,
    });
    expect(
      problems({ type: 'postgres', host: '127.0.0.1', database: 'c', user: 'c', passwordFile: 'missing' }),
    ).toEqual([`/database/passwordFile: file not found: ${path.join(dir, 'missing')}`]);
  });

  it('reads a `credential:NAME` secret from the systemd credentials directory, and names that place when it cannot', () => {
    const creds = tempDir();
    fs.writeFileSync(path.join(creds, 'hsm-pin'), 'pin-1234567\n');
    expect(readSecretFile('credential:hsm-pin', 'keys.pinFile', { CREDENTIALS_DIRECTORY: creds })).toBe('pin-1234567');
    expect(() => readSecretFile('credential:hsm-pin', 'keys.pinFile', {})).toThrow(
      /keys.pinFile: systemd credential hsm-pin requested but CREDENTIALS_DIRECTORY is not set/,
    );
    expect(() => readSecretFile('credential:other', 'keys.pinFile', { CREDENTIALS_DIRECTORY: creds })).toThrow(
      `keys.pinFile: cannot read ${path.join(creds, 'other')} (ENOENT)`,
    );
  });

  it('a missing data dir is a usage error (exit 2) with what to do', async () => {
    const r = await runCli(['serve', '--data-dir', path.join(tempDir(), 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^NO_APPLIANCE: no appliance at .* — run `coffre init/);
  });
});

describe('coffre init', () => {
  it('refuses a second init on the same data dir and changes nothing', async () => {
    const dir = path.join(tempDir(), 'appliance');
    const first = await runCli([
      'init',
      '--data-dir',
      dir,
      '--jurisdiction',
      'de',
      '--lat',
      '50.1',
      '--lon',
      '8.7',
      '--json',
    ]);
    expect(first.code, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.url).toMatch(/^https:\/\//);
    expect(fs.existsSync(out.caFile)).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).site).toMatchObject({
      jurisdiction: 'DE',
      lat: 50.1,
      lon: 8.7,
    });
    expect(fs.statSync(path.join(dir, 'tls/key.pem')).mode & 0o777).toBe(0o600);
    const before = treeHashes(dir);
    const second = await runCli(['init', '--data-dir', dir, '--json']);
    expect(second.code).toBe(2);
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: false, code: 'APPLIANCE_EXISTS', exitCode: 2 });
    expect(second.stderr).toMatch(/^APPLIANCE_EXISTS: /);
    expect(treeHashes(dir)).toEqual(before);
  });

  it('rejects bad flags with exit 2 and creates nothing', async () => {
    const dir = path.join(tempDir(), 'appliance');
    for (const args of [
      ['--lat', '123'],
      ['--jurisdiction', 'France'],
      ['--port', 'x'],
      ['--bogus'],
      ['--tz', 'Mars/Olympus'],
    ]) {
      const r = await runCli(['init', '--data-dir', dir, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^[A-Z_]+: .+ — /);
      expect(fs.existsSync(dir)).toBe(false);
    }
  });
});
