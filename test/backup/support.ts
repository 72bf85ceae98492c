import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { metaHeaders, openVaultEnv, type User, type VaultEnv } from '../vault/support.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import type { BackupService } from '../../src/backup/index.js';

/**
 * A whole appliance (real SoftHSM2, SQLite, audit, alerts, vault over HTTPS) with documents in
 * it, and a real OpenSSH sshd on loopback as the distant site. Only the Clock is fake.
 */
export interface BackupEnv {
  env: VaultEnv;
  sshd: Sshd;
  service: BackupService;
  alice: User;
  workspace: string;
  /** uploaded documents: id → bytes */
  docs: Map<string, Buffer>;
  upload(name: string, bytes: Buffer): Promise<string>;
  /** the target directory as the sshd host sees it */
  targetDir: string;
  addTarget(name?: string): Promise<void>;
  /** kinds of alerts raised so far */
  alerts(): Promise<string[]>;
  close(): Promise<void>;
}

/** Paris appliance (the test appliance's default site), Lyon target: 392 km, same jurisdiction. */
export const LYON = { jurisdiction: 'FR', lat: 45.764, lon: 4.8357 };

export async function openBackupEnv(
  config: Record<string, string> = {},
  sshdOptions: Parameters<typeof startSshd>[0] = {},
): Promise<BackupEnv> {
  const sshd = await startSshd(sshdOptions);
  const env = await openVaultEnv({
    COFFRE_CFG_backup__retries: '1',
    COFFRE_CFG_backup__retryBaseMs: '20',
    COFFRE_CFG_backup__connectTimeoutMs: '15000', // handshakes on a loaded 2-core machine; a stopped sshd refuses at once
    COFFRE_CFG_backup__partSizeMiB: '1',
    ...config,
  }).catch(async (e: unknown) => {
    await sshd.close();
    throw e;
  });
  const service = env.t.appliance.backup;
  const alice = await env.user('alice');
  const workspace = await env.workspace(alice);
  const docs = new Map<string, Buffer>();
  const upload = async (name: string, bytes: Buffer) => {
    const r = await env.req('POST', `/api/v1/workspaces/${workspace}/documents`, {
      token: alice.token,
      headers: { ...metaHeaders(name), 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(r.status, r.body.toString()).toBe(201);
    const id = r.json<{ id: string }>().id;
    docs.set(id, bytes);
    return id;
  };
  const targetDir = path.join(sshd.root, 'dr');
  return {
    env,
    sshd,
    service,
    alice,
    workspace,
    docs,
    upload,
    targetDir,
    addTarget: async (name = 'dr') => {
      await service.addTarget(
        {
          name,
          type: 'sftp',
          url: sshd.url(name),
          ...LYON,
          hostKey: sshd.hostKeyLine,
          identityFile: sshd.identityFile,
        },
        'local:test',
      );
    },
    alerts: async () =>
      (await env.t.appliance.db.db.selectFrom('alerts').select('kind').orderBy('at').execute()).map((r) => r.kind),
    close: async () => {
      await env.close();
      await sshd.close();
    },
  };
}

/** Complete backups at a target directory (as the target host sees it), and anything else there. */
export function atTarget(dir: string): { complete: string[]; other: string[] } {
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const complete = names.filter(
    (n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}$/.test(n) && fs.existsSync(path.join(dir, n, 'sidecar.json')),
  );
  return { complete, other: names.filter((n) => !complete.includes(n) && n !== '.coffre-target') };
}

export const randomDoc = (n: number) => crypto.randomBytes(n);

/** Every file under dir, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}
