import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { buildApp, openAppliance, serve } from '../../src/main.js';
import { embeddedTokenNotice } from '../../src/keys/embedded.js';
import { createLogger } from '../../src/shared/logger.js';

/**
 * The embedded SoftHSM2 token is for evaluation: its files and its PIN are on the machine's disk
 * (by default in the data dir), so a copy of the disk decrypts everything. `init`, `serve`,
 * `keys status` and the console's Keys page (through GET /api/v1/keys/status) say so plainly, and
 * what a production HSM changes. This file uses the data dir's own SoftHSM2 configuration (not
 * test/support/softhsm.ts: one configuration per process).
 */
describe('the embedded token says it is for evaluation', { timeout: 120_000 }, () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-embedded-')), 'data');
  afterAll(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['node', 'coffre', ...args], {
      out: (t) => void out.push(t),
      err: (t) => void err.push(t),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const EVAL =
    /^EVALUATION ONLY: the keys are in the embedded SoftHSM2 software token \(token configured by .*softhsm2\.conf, PIN in .*secrets\/hsm-pin\)\. A copy of this machine's disk, a VM snapshot or a file backup that holds the token and its PIN decrypts every document\. A production HSM \(Thales Luna, Entrust nShield, YubiHSM 2, or a network HSM through p11-kit\) keeps the key-encryption key in hardware that never releases it: a copy of the disk then decrypts nothing without the HSM\. Runbook: docs\/hsm\.md\.$/m;

  it('init, keys status, serve and the Keys page API', async () => {
    const init = await run(['init', '--data-dir', dir, '--json']);
    expect(init.code, init.err).toBe(0);
    expect(init.err).toMatch(EVAL);
    expect(JSON.parse(init.out).embeddedToken).toMatchObject({ evaluationOnly: true, pinStore: 'file' });

    const human = await run(['keys', 'status', '--data-dir', dir]);
    expect(human.code, human.err).toBe(0);
    expect(human.out).toMatch(EVAL);
    const json = await run(['keys', 'status', '--data-dir', dir, '--json']);
    expect(JSON.parse(json.out).embeddedToken.message).toMatch(EVAL);

    // serve: a warning in the log at start
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const running = await serve({ dataDir: dir, port: 0, host: '127.0.0.1', log });
    try {
      const warn = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l['event'] === 'keys.embedded_token');
      expect(warn).toMatchObject({ level: 40, evaluationOnly: true });
      expect(String(warn!['msg'])).toMatch(EVAL);
    } finally {
      await running.stop();
    }

    // the console's Keys page reads GET /api/v1/keys/status (an auditor may read it)
    // the auditor signs in with a password alone: this test is about the token notice, not the second factor
    const a = await openAppliance({
      dataDir: dir,
      env: { ...process.env, COFFRE_CFG_auth__mfa__requiredRoles: '[]' },
      log: createLogger({ level: 'silent', destination: 'stderr' }),
    });
    try {
      const app = await buildApp(a, false);
      const inv = await a.identity.accounts.invite(
        { username: 'ines', email: 'ines@example.test', role: 'auditor' },
        'local:test',
        {},
      );
      const password = `Tangerine-Ladder-${crypto.randomBytes(4).toString('hex')}X`;
      expect(
        (await app.inject({ method: 'POST', url: '/api/v1/auth/enrol', payload: { token: inv.enrolUrl, password } }))
          .statusCode,
      ).toBe(200);
      const token = (
        (
          await app.inject({
            method: 'POST',
            url: '/api/v1/auth/login',
            payload: { username: 'ines', password, issue: 'token' },
          })
        ).json() as { token: string }
      ).token;
      const s = await app.inject({
        method: 'GET',
        url: '/api/v1/keys/status',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(s.statusCode, s.body).toBe(200);
      expect(s.json().embeddedToken).toMatchObject({
        evaluationOnly: true,
        pinStore: 'file',
        message: expect.stringMatching(EVAL),
      });
      await app.close();
    } finally {
      await a.close();
    }
  });

  it('a customer HSM gets no such notice; a PIN kept as a systemd credential is said so', () => {
    expect(
      embeddedTokenNotice({ module: '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so', pinFile: '/etc/coffre/pin' }),
    ).toBeUndefined();
    expect(
      embeddedTokenNotice({ module: '/opt/safenet/lunaclient/lib/libCryptoki2_64.so', pinFile: 'credential:hsm-pin' }),
    ).toBeUndefined();
    expect(
      embeddedTokenNotice({
        module: '/usr/lib/softhsm/libsofthsm2.so',
        softhsmConfFile: '/var/lib/coffre/softhsm/softhsm2.conf',
        pinFile: 'credential:hsm-pin',
      }),
    ).toMatchObject({
      pinStore: 'systemd-credential',
      message: expect.stringContaining('PIN in a systemd credential'),
    });
  });
});
