import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupTargetContract } from '../contracts/backup-target.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import { PathTarget } from '../../src/backup/targets/path.js';
import { SftpTarget, parseHostKey, parseSftpUrl } from '../../src/backup/targets/sftp.js';
import { BandwidthLimitedTarget, RetryingTarget } from '../../src/backup/targets/wrappers.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.close();
});

const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-target-'));
const sftp = (dir: string, over: Partial<ConstructorParameters<typeof SftpTarget>[0]> = {}) =>
  new SftpTarget({
    host: sshd.host,
    port: sshd.port,
    username: sshd.user,
    dir: path.join(sshd.root, dir),
    hostKey: sshd.hostKeyFingerprint,
    privateKey: fs.readFileSync(sshd.identityFile),
    connectTimeoutMs: 20_000, // a handshake on a loaded 2-core machine can take seconds; refusals are immediate
    ...over,
  });
let n = 0;

backupTargetContract('path', async () => {
  const d = tmpDir();
  return { target: new PathTarget(d), cleanup: async () => fs.rmSync(d, { recursive: true, force: true }) };
});

backupTargetContract('sftp (real OpenSSH sshd)', async () => {
  const dir = `contract-${n++}`;
  fs.mkdirSync(path.join(sshd.root, dir));
  return { target: sftp(dir), cleanup: async () => undefined };
});

backupTargetContract('sftp wrapped in retry and a bandwidth limit', async () => {
  const dir = `contract-${n++}`;
  fs.mkdirSync(path.join(sshd.root, dir));
  return {
    target: new RetryingTarget(new BandwidthLimitedTarget(sftp(dir), 200 * 1024 * 1024), { retries: 2, baseMs: 10 }),
    cleanup: async () => undefined,
  };
});

describe('sftp target failures', () => {
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'no error',
      (e: { code?: string }) => e.code,
    );

  it('refuses a server whose host key is not the pinned one', async () => {
    const other = parseHostKey(`ssh-ed25519 ${crypto.randomBytes(51).toString('base64')}`);
    const t = sftp('.', { hostKey: other });
    const err = await t.list('').catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('TARGET_HOST_KEY');
    expect((err as Error).message).toContain(sshd.hostKeyFingerprint);
    await t.close();
  });

  it('reports refused authentication', async () => {
    const d = tmpDir();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'k')]);
    const t = sftp('.', { privateKey: fs.readFileSync(path.join(d, 'k')) });
    expect(await code(t.list(''))).toBe('TARGET_AUTH');
    await t.close();
  });

  it(
    'reports an unreachable server, reconnects when it is back, and the retry wrapper rides out a short outage',
    { timeout: 180_000 },
    async () => {
      fs.mkdirSync(path.join(sshd.root, 'outage'), { recursive: true });
      const t = sftp('outage');
      await t.put('before', Buffer.from('1'));
      await sshd.stop();
      expect(await code(t.put('during', Buffer.from('2')))).toBe('TARGET_UNREACHABLE');
      // the wrapper retries while sshd is down; sshd comes back once it has failed at least once
      // (a condition, not a fixed wait). 10 retries from 100 ms: ~100 s of back-off in all, far more
      // than sshd needs to restart even on a loaded machine
      let failedOnce!: () => void;
      const failed = new Promise<void>((res) => (failedOnce = res));
      const retries: number[] = [];
      const r = new RetryingTarget(t, {
        retries: 10,
        baseMs: 100,
        onRetry: (i) => {
          retries.push(i.attempt);
          failedOnce();
        },
      });
      const pending = r.put('after', Buffer.from('3'));
      pending.catch(() => undefined); // awaited below
      await failed;
      await sshd.start();
      await pending;
      expect(retries.length).toBeGreaterThan(0);
      expect((await buffer(await t.get('after'))).toString()).toBe('3');
      expect((await t.list('')).map((e) => e.name)).toEqual(['after', 'before']);
      await t.close();
    },
  );

  it('does not retry final failures', async () => {
    const retries: number[] = [];
    const r = new RetryingTarget(
      sftp('.', { hostKey: parseHostKey(`ssh-ed25519 ${crypto.randomBytes(51).toString('base64')}`) }),
      { retries: 3, baseMs: 10, onRetry: (i) => retries.push(i.attempt) },
    );
    expect(await code(r.list(''))).toBe('TARGET_HOST_KEY');
    expect(retries).toEqual([]);
    await r.close();
  });

  it('puts are spread over several SFTP sessions of one connection (one server process each)', async () => {
    for (const sessions of [1, 3]) {
      fs.mkdirSync(path.join(sshd.root, `sessions-${sessions}`), { recursive: true });
      const t = sftp(`sessions-${sessions}`, { sessions });
      const parts = [0, 1, 2, 3, 4, 5].map(() => crypto.randomBytes(2 * 1024 * 1024 + 17));
      await Promise.all(parts.map((b, i) => t.put(`part-${i}`, b)));
      expect(sshd.sftpServers().length).toBe(sessions);
      for (const [i, b] of parts.entries()) expect((await buffer(await t.get(`part-${i}`))).equals(b)).toBe(true);
      await t.close();
    }
  });

  it('bandwidth limit paces all uploads together', async () => {
    fs.mkdirSync(path.join(sshd.root, 'slow'), { recursive: true });
    const t = new BandwidthLimitedTarget(sftp('slow'), 1024 * 1024);
    const t0 = performance.now();
    // 2 MiB in two concurrent puts at 1 MiB/s with at most 1 s of burst: at least ~1 s
    await Promise.all([t.put('x', crypto.randomBytes(1024 * 1024)), t.put('y', crypto.randomBytes(1024 * 1024))]);
    expect(performance.now() - t0).toBeGreaterThan(900);
    await t.close();
  });
});

describe('sftp server process dies or hangs while the SSH connection stays up', () => {
  /** a put from a stream that the test feeds: 1 MiB now, the rest never (the put waits on the target, then on the source) */
  const feeding = () => {
    const src = new PassThrough();
    src.write(crypto.randomBytes(1024 * 1024));
    return src;
  };
  /** waits until the temporary file of a put holds bytes at the target */
  const untilWriting = async (dir: string) => {
    const until = Date.now() + 20_000;
    for (;;) {
      const tmp = fs.readdirSync(dir).find((n) => n.startsWith('.'));
      if (tmp && fs.statSync(path.join(dir, tmp)).size > 0) return;
      if (Date.now() > until) throw new Error('the upload did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const signalServers = (sig: NodeJS.Signals) => {
    const pids = sshd.sftpServers();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, sig);
    return pids;
  };

  it(
    'its SFTP process killed mid-upload: the put fails at once (TARGET_UNREACHABLE), the next put reconnects',
    { timeout: 60_000 },
    async () => {
      const dir = path.join(sshd.root, 'killed');
      fs.mkdirSync(dir, { recursive: true });
      const t = sftp('killed', { stallTimeoutMs: 30_000 });
      await t.put('before', Buffer.from('1'));
      const src = feeding();
      const put = t.put('big', src);
      put.catch(() => undefined);
      await untilWriting(dir);
      const t0 = performance.now();
      signalServers('SIGKILL');
      src.write(crypto.randomBytes(1024 * 1024)); // what comes after is never acknowledged
      await expect(put).rejects.toMatchObject({
        code: 'TARGET_UNREACHABLE',
        message: expect.stringContaining('SFTP process ended'),
      });
      expect(performance.now() - t0).toBeLessThan(5000); // not the stall deadline: the channel closing is enough
      // a later operation on the same target opens a fresh session
      await t.put('after', Buffer.from('3'));
      expect((await t.list('')).filter((e) => !e.name.startsWith('.')).map((e) => e.name)).toEqual(['after', 'before']);
      await t.close();
    },
  );

  it(
    'its SFTP process frozen mid-upload: TARGET_STALLED after the stall deadline, not a hang; then it works again',
    { timeout: 60_000 },
    async () => {
      const dir = path.join(sshd.root, 'frozen');
      fs.mkdirSync(dir, { recursive: true });
      const t = sftp('frozen', { stallTimeoutMs: 1500 });
      const src = feeding();
      const put = t.put('big', src);
      put.catch(() => undefined);
      await untilWriting(dir);
      const t0 = performance.now();
      const frozen = signalServers('SIGSTOP');
      try {
        src.write(crypto.randomBytes(1024 * 1024));
        await expect(put).rejects.toMatchObject({ code: 'TARGET_STALLED', retryable: true });
        const took = performance.now() - t0;
        expect(took).toBeGreaterThan(1400);
        expect(took).toBeLessThan(6000);
        // a list on a fresh session is not held up by the frozen one
        expect((await t.list('')).some((e) => e.name.startsWith('.'))).toBe(true);
      } finally {
        for (const pid of frozen) process.kill(pid, 'SIGKILL');
      }
      await t.close();
    },
  );
});

describe('target URLs and host keys', () => {
  it('parses sftp URLs and refuses passwords in them', () => {
    expect(parseSftpUrl('sftp://backup@dr.example.fr:2222/srv/coffre/')).toEqual({
      host: 'dr.example.fr',
      port: 2222,
      username: 'backup',
      dir: '/srv/coffre',
    });
    expect(parseSftpUrl('sftp://b@[::1]/x').host).toBe('::1');
    expect(() => parseSftpUrl('sftp://b:hunter2@h/x')).toThrow(/password in the URL/);
    expect(() => parseSftpUrl('sftp://b:hunter2@h/x')).not.toThrow(/hunter2/);
    expect(() => parseSftpUrl('sftp://h/x')).toThrow(/needs a user/);
    expect(() => parseSftpUrl('sftp://b@h')).toThrow(/absolute directory/);
    expect(() => parseSftpUrl('http://b@h/x')).toThrow(/sftp:\/\//);
  });

  it('takes a fingerprint or a public key line', () => {
    expect(parseHostKey(sshd.hostKeyLine)).toBe(sshd.hostKeyFingerprint);
    expect(parseHostKey(` ${sshd.hostKeyFingerprint} `)).toBe(sshd.hostKeyFingerprint);
    expect(() => parseHostKey('yes')).toThrow(/--host-key/);
  });

  it('a path target whose directory vanished (unmounted volume) is unreachable, not empty', async () => {
    const d = path.join(tmpDir(), 'mnt');
    const t = new PathTarget(d);
    await expect(t.list('')).rejects.toMatchObject({ code: 'TARGET_UNREACHABLE' });
    await expect(t.put('x', Buffer.from('x'))).rejects.toMatchObject({ code: 'TARGET_UNREACHABLE' });
    expect(fs.existsSync(d)).toBe(false);
  });
});
