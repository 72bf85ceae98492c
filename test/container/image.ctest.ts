/**
 * The container image under podman (runc) through testcontainers, as compose/compose.yaml runs it:
 * read-only root file system, every capability dropped, no-new-privileges, an init, core size 0,
 * /tmp on tmpfs, data and token in two volumes. It must answer /healthz over HTTPS with the strict
 * TLS policy, as the unprivileged user with the softhsm group, keep its appliance across a restart,
 * and the evaluation SFTP target must accept the backup key.
 * Needs: scripts/test-container (it starts `podman system service` and sets DOCKER_HOST).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import SftpClient from 'ssh2-sftp-client';

const IMAGE = process.env.COFFRE_IMAGE ?? 'localhost/coffre:latest';
const SFTP_IMAGE = process.env.COFFRE_SFTP_IMAGE ?? 'localhost/coffre-sftp:latest';

/** GenericContainer with the compose file's hardening that testcontainers has no method for. */
class HardenedContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    this.hostConfig.ReadonlyRootfs = true;
    this.hostConfig.Init = true;
    this.withDroppedCapabilities('ALL')
      .withSecurityOpt('no-new-privileges:true')
      .withUlimits({
        core: { hard: 0, soft: 0 },
        nofile: { hard: 8192, soft: 8192 },
        nproc: { hard: 4096, soft: 4096 },
      })
      .withTmpFs({ '/tmp': 'rw,size=64m,mode=1777' });
  }
}

let coffre: StartedTestContainer;
let tmp: string;

const sh = async (c: StartedTestContainer, script: string) => {
  const r = await c.exec(['sh', '-c', script]);
  return { code: r.exitCode, out: r.output };
};

function get(
  port: number,
  ca: Buffer,
): Promise<{ status: number; body: string; protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', agent: false }, (r) => {
        const s = r.socket as tls.TLSSocket;
        const protocol = s.getProtocol();
        const cipher = s.getCipher().name;
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body, protocol, cipher }));
      })
      .on('error', reject);
  });
}

beforeAll(async () => {
  expect(process.env.DOCKER_HOST, 'run through scripts/test-container').toMatch(/^unix:\/\//);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-ctest-'));
  coffre = await new HardenedContainer(IMAGE)
    .withEnvironment({
      COFFRE_JURISDICTION: 'FR',
      COFFRE_LAT: '45.76',
      COFFRE_LON: '4.84',
      COFFRE_TZ: 'Europe/Paris',
      COFFRE_HOSTNAME: 'localhost',
    })
    .withExposedPorts(8443)
    .withWaitStrategy(Wait.forLogMessage(/"event":"appliance\.started"/))
    .withStartupTimeout(180_000)
    .start();
});

afterAll(async () => {
  await coffre?.stop({ remove: true, removeVolumes: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the Coffre container', () => {
  it('answers /healthz over HTTPS with TLS 1.3 and a 256-bit suite, certificate verified', async () => {
    const ca = Buffer.from((await sh(coffre, 'cat /var/lib/coffre/data/tls/cert.pem')).out);
    const r = await get(coffre.getMappedPort(8443), ca);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
    expect(r.protocol).toBe('TLSv1.3');
    expect(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']).toContain(r.cipher);
  });

  it('runs as coffre with the softhsm group, no capabilities, no new privileges, core size 0', async () => {
    const r = await sh(
      coffre,
      'for p in /proc/[0-9]*; do if grep -q "dist/src/cli/main.js" $p/cmdline 2>/dev/null; then grep -E "^(Uid|Groups|CapEff|CapBnd|NoNewPrivs):" $p/status; grep "Max core" $p/limits; break; fi; done; id -G coffre; getent group softhsm',
    );
    expect(r.out).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
    expect(r.out).toMatch(/^CapEff:\s+0+$/m);
    expect(r.out).toMatch(/^CapBnd:\s+0+$/m);
    expect(r.out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.out).toMatch(/^Max core file size\s+0\s+0\s/m);
    const softhsmGid = /^softhsm:x:(\d+):/m.exec(r.out)?.[1];
    expect(softhsmGid).toBeDefined();
    expect(/^Groups:\s*(.*)$/m.exec(r.out)![1]!.trim().split(/\s+/)).toContain(softhsmGid);
  });

  it('has a read-only root file system; only the volumes and /tmp are writable', async () => {
    expect((await sh(coffre, 'touch /opt/coffre/x')).code).not.toBe(0);
    expect((await sh(coffre, 'touch /etc/x')).code).not.toBe(0);
    expect((await sh(coffre, 'touch /var/lib/coffre/data/.w && rm /var/lib/coffre/data/.w && touch /tmp/x')).code).toBe(
      0,
    );
  });

  it('keeps the SoftHSM2 token in its own volume, separate from the data', async () => {
    const cfg = JSON.parse((await sh(coffre, 'cat /var/lib/coffre/data/config.json')).out) as {
      keys: { softhsmConfFile: string; pinFile: string };
    };
    expect(cfg.keys.softhsmConfFile).toBe('/var/lib/coffre/token/softhsm2.conf');
    expect((await sh(coffre, 'ls /var/lib/coffre/token/tokens | wc -l')).out.trim()).toBe('1');
    expect((await sh(coffre, 'test -e /var/lib/coffre/data/softhsm')).code).not.toBe(0);
    const mounts = (await sh(coffre, 'cat /proc/self/mounts')).out;
    expect(mounts).toMatch(/ \/var\/lib\/coffre\/data /);
    expect(mounts).toMatch(/ \/var\/lib\/coffre\/token /);
    expect(mounts).toMatch(/^\S+ \/ \S+ ro[,\s]/m);
  });

  it('keeps its appliance (same certificate) across a restart', async () => {
    const before = (await sh(coffre, 'cat /var/lib/coffre/data/tls/cert.pem')).out;
    await coffre.restart();
    // wait for the server again
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        const r = await get(coffre.getMappedPort(8443), Buffer.from(before));
        if (r.status === 200) break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect((await sh(coffre, 'cat /var/lib/coffre/data/tls/cert.pem')).out).toBe(before);
  });
});

describe('the evaluation SFTP target', () => {
  it('accepts the backup key only, for SFTP, as an unprivileged sshd', async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'backup-key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'other-key')]);
    fs.chmodSync(path.join(tmp, 'backup-key.pub'), 0o644);
    const sftp = await new HardenedContainer(SFTP_IMAGE)
      .withBindMounts([
        { source: path.join(tmp, 'backup-key.pub'), target: '/run/secrets/sftp_authorized_keys', mode: 'ro' },
      ])
      .withExposedPorts(2222)
      .withWaitStrategy(Wait.forListeningPorts())
      .start();
    try {
      const c = new SftpClient();
      await c.connect({
        host: '127.0.0.1',
        port: sftp.getMappedPort(2222),
        username: 'sftp',
        privateKey: fs.readFileSync(path.join(tmp, 'backup-key')),
      });
      await c.put(Buffer.from('backup bytes'), 'probe.bin');
      expect((await c.list('.')).map((f) => f.name)).toContain('probe.bin');
      await c.end();
      const other = new SftpClient();
      await expect(
        other.connect({
          host: '127.0.0.1',
          port: sftp.getMappedPort(2222),
          username: 'sftp',
          privateKey: fs.readFileSync(path.join(tmp, 'other-key')),
        }),
      ).rejects.toThrow();
      await other.end().catch(() => undefined);
    } finally {
      await sftp.stop({ remove: true, removeVolumes: true });
    }
  });
});
