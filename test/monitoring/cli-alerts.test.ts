import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { runCli, startServe } from '../support/cli.js';
import { eventually, startSmtpReceiver, startSyslogReceiver, startWebhookReceiver } from '../support/receivers.js';

/**
 * Alerts raised by a CLI process (`coffre backup run` to a target that vanished) reach the real
 * receivers before the process exits, with no server running; with a server running too, each
 * notice still arrives exactly once.
 */
let ta: TestAppliance;
let smtp: Awaited<ReturnType<typeof startSmtpReceiver>>;
let syslog: Awaited<ReturnType<typeof startSyslogReceiver>>;
let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
let env: NodeJS.ProcessEnv;
const LYON = ['--jurisdiction', 'FR', '--lat', '45.764', '--lon', '4.8357'];

beforeAll(async () => {
  ta = await createTestAppliance({ keep: true });
  await ta.appliance.close();
  smtp = await startSmtpReceiver(ta.dataDir);
  syslog = await startSyslogReceiver();
  hook = await startWebhookReceiver(ta.dataDir);
  const caFile = path.join(ta.dataDir, 'syslog-ca.pem');
  fs.writeFileSync(caFile, syslog.caPem);
  env = {
    COFFRE_CFG_mail__smtp: JSON.stringify({ host: 'localhost', port: smtp.port, caFile: smtp.caFile }),
    COFFRE_CFG_audit__syslog: JSON.stringify({
      enabled: true,
      transport: 'tls',
      host: '127.0.0.1',
      port: syslog.port,
      caFile,
    }),
    COFFRE_CFG_monitoring__alerts: JSON.stringify({
      email: { to: ['oncall@example.fr'] },
      webhook: { url: hook.url, secretFile: hook.secretFile, caFile: hook.caFile },
    }),
    COFFRE_CFG_jobs__leaseTtlMs: '3000',
    COFFRE_CFG_backup__retries: '1',
    COFFRE_CFG_backup__retryBaseMs: '20',
  };
}, 120_000);
afterAll(async () => {
  await smtp?.close();
  await syslog?.collector.stop();
  await hook?.close();
  fs.rmSync(ta.dataDir, { recursive: true, force: true });
});

const coffre = (args: string[]) => runCli([...args, '--data-dir', ta.dataDir], { env });
const kinds = () => ({
  email: smtp.notices().map((n) => `${n.notice}:${n.kind}`),
  syslog: syslog.notices().map((n) => `${n.notice}:${n.kind}`),
  webhook: hook.notices().map((n) => `${n.notice}:${n.kind}`),
});

describe('alerts raised by the CLI', { timeout: 180_000 }, () => {
  it('a failed `coffre backup run` delivers backup.failed to e-mail, syslog and the webhook before it exits (no server running)', async () => {
    const dir = fs.mkdtempSync(path.join(ta.dataDir, 'secondary-'));
    const add = await coffre(['backup', 'target', 'add', 'dr', '--type', 'path', '--url', `file://${dir}`, ...LYON]);
    expect(add.code, add.stderr).toBe(0);
    fs.rmSync(dir, { recursive: true });
    const r = await coffre(['backup', 'run', '--json']);
    expect(r.code, r.stderr).toBeGreaterThan(0); // a failure exit code (by kind: docs/cli.md)
    // the process has exited: whatever was delivered was delivered by it
    // (the local `target add` raised backup.change-local first: no second person approved it)
    const raised = ['raised:backup.change-local', 'raised:backup.failed'];
    expect(kinds()).toEqual({ email: raised, syslog: raised, webhook: raised });
    expect(hook.notices().find((n) => n.kind === 'backup.failed')).toMatchObject({
      severity: 'critical',
      targets: { target: 'dr' },
    });
    expect(hook.hits.every((h) => h.signed)).toBe(true);
  });

  it('with `coffre serve` running as well, each notice of a CLI-raised alert arrives exactly once', async () => {
    // no scheduler in the server: its catch-up backup would hold the job while the CLI runs it
    const s = await startServe(ta.dataDir, 0, { ...env, COFFRE_CFG_jobs__enabled: 'false' });
    try {
      const before = kinds();
      // a second target that vanished: a new alert (the first one is still open)
      const dir = fs.mkdtempSync(path.join(ta.dataDir, 'secondary2-'));
      expect(
        (await coffre(['backup', 'target', 'add', 'dr2', '--type', 'path', '--url', `file://${dir}`, ...LYON])).code,
      ).toBe(0);
      fs.rmSync(dir, { recursive: true });
      const r = await coffre(['backup', 'run']);
      expect(r.code, r.stderr).toBeGreaterThan(0); // a failure exit code (by kind: docs/cli.md)
      // the server polls the outbox too; give it time to (wrongly) send again
      await new Promise((res) => setTimeout(res, 3000));
      const after = await eventually(kinds, (k) => k.webhook.length > before.webhook.length);
      const ids = hook.notices().map((n) => n.deliveryId);
      expect(new Set(ids).size).toBe(ids.length);
      const added = (l: string[], b: string[]) => l.slice(b.length).sort();
      expect(added(after.webhook, before.webhook)).toEqual(added(after.syslog, before.syslog));
      expect(added(after.webhook, before.webhook)).toEqual(added(after.email, before.email));
      expect(added(after.webhook, before.webhook)).toContain('raised:backup.failed');
    } finally {
      s.child.kill('SIGTERM');
      await new Promise((r) => s.child.once('exit', r));
    }
  });
});
