/**
 * Fast checks of the appliance image, run by scripts/test-image-checks (a CI stage of its own):
 * shellcheck on every script; systemd-analyze verify (no output) and security (exposure ≤ 1.5)
 * on the units as installed in a Debian 12 tree; nft -c and sshd -t inside that tree; the
 * unattended-upgrades origin; and a chroot smoke test of the app as the service user with the
 * softhsm group, answering /healthz under the strict TLS policy.
 * The tree is the cached debootstrap (scripts/image/rootfs); everything is written to an overlay.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, Overlay, cachedTree, installAppliance, makeBundle, must, run, testSigningKey } from './rootfs.js';

/** Exposure threshold for coffre.service, in systemd-analyze's tenths (15 = 1.5 "OK"); measured 1.3. */
const EXPOSURE_THRESHOLD = 15;
const UNITS = ['coffre.service', 'coffre-firstboot.service', 'coffre-ssh-hostkeys.service'];

let ov: Overlay;
let tmp: string;
let bundle: string;
let key: { priv: string; pub: string };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-fast-'));
  const [tree, k] = await Promise.all([cachedTree(), testSigningKey(tmp)]);
  key = k;
  bundle = await makeBundle(key, tmp, '0.1.0');
  ov = await Overlay.create(tree);
  await installAppliance(ov, key, bundle);
}, 25 * 60_000);

afterAll(async () => {
  await ov?.destroy();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every shell script of the repository (by extension or shebang), tracked or new. */
function shellScripts(): string[] {
  const files = new Set<string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (
          !['node_modules', 'dist', '.git', '.runtime', 'output', 'data'].includes(e.name) &&
          !e.name.startsWith('output')
        )
          walk(rel);
      } else if (e.isFile()) {
        if (rel.endsWith('.sh')) files.add(rel);
        else {
          const head = fs.readFileSync(path.join(ROOT, rel)).subarray(0, 64).toString('latin1');
          if (/^#!\s*(\/usr)?\/bin\/(env\s+)?(ba|da)?sh\b/.test(head)) files.add(rel);
        }
      }
    }
  };
  for (const d of ['scripts', 'appliance', 'packer', 'compose', '.ci']) if (fs.existsSync(path.join(ROOT, d))) walk(d);
  return [...files].sort();
}

describe('scripts', () => {
  it('shellcheck passes on every shell script, including the release wrapper', async () => {
    const scripts = shellScripts();
    expect(scripts).toEqual(
      expect.arrayContaining([
        'scripts/test',
        'scripts/image/rootfs',
        'appliance/sbin/coffre-update',
        'appliance/install.sh',
      ]),
    );
    const wrapper = ov.file('opt/coffre/current/bin/coffre');
    const r = await run('shellcheck', ['-x', '-S', 'style', ...scripts, wrapper]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('packer', () => {
  it('packer validate accepts the template with a fresh output dir (and the check can fail)', async () => {
    const out = path.join(tmp, 'packer-output-fresh');
    const vars = {
      PKR_VAR_base_image: path.join(tmp, 'base.qcow2'),
      PKR_VAR_base_checksum: 'sha256:' + '0'.repeat(64),
      PKR_VAR_ssh_private_key_file: path.join(tmp, 'build-key'),
      PKR_VAR_bundle: path.join(tmp, 'coffre.bundle'),
      PKR_VAR_update_key: path.join(tmp, 'test.pub.pem'),
      PKR_VAR_output_dir: out,
      CHECKPOINT_DISABLE: '1',
      PACKER_CACHE_DIR: path.join(tmp, 'packer_cache'),
    };
    for (const f of ['base.qcow2', 'coffre.bundle']) fs.writeFileSync(path.join(tmp, f), 'placeholder\n');
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', vars.PKR_VAR_ssh_private_key_file]);
    const ok = await run('packer', ['validate', 'packer/coffre.pkr.hcl'], { env: { ...process.env, ...vars } });
    expect(ok.stdout + ok.stderr).not.toMatch(/error/i);
    expect(ok.code).toBe(0);
    // Packer 1.6.6 refuses an existing output directory: proof the validation really ran
    fs.mkdirSync(out);
    const taken = await run('packer', ['validate', 'packer/coffre.pkr.hcl'], { env: { ...process.env, ...vars } });
    expect(taken.code).not.toBe(0);
  });
});

describe('compose', () => {
  it('docker-compose config -q and dclint accept the compose file (default and eval profiles)', async () => {
    for (const args of [
      ['-f', 'compose/compose.yaml', 'config', '-q'],
      ['-f', 'compose/compose.yaml', '--profile', 'eval', 'config', '-q'],
    ]) {
      const r = await run('docker-compose', args);
      expect(r.stdout + r.stderr, args.join(' ')).toBe('');
      expect(r.code).toBe(0);
    }
    // docker-compose v1 rejects the top-level `name` that dclint asks for: that one rule is off
    const lint = await run(process.execPath, [
      'node_modules/dclint/bin/dclint.cjs',
      'compose/compose.yaml',
      '--max-warnings',
      '0',
      '--disable-rule',
      'require-project-name-field',
    ]);
    expect(lint.stdout + lint.stderr).not.toMatch(/error|warning/);
    expect(lint.code).toBe(0);
  });

  it('dclint would catch a port published on every interface (the check can fail)', async () => {
    const bad = path.join(tmp, 'compose.yaml');
    fs.writeFileSync(
      bad,
      fs.readFileSync(path.join(ROOT, 'compose/compose.yaml'), 'utf8').replace("'127.0.0.1:8443:8443'", "'8443:8443'"),
    );
    const lint = await run(process.execPath, [
      'node_modules/dclint/bin/dclint.cjs',
      bad,
      '--disable-rule',
      'require-project-name-field',
    ]);
    expect(lint.code).not.toBe(0);
    expect(lint.stdout + lint.stderr).toMatch(/no-unbound-port-interfaces/);
  });
});

describe('coffre-update refuses what is not a signed release', () => {
  const update = (file: string) =>
    run(path.join(ROOT, 'appliance/sbin/coffre-update'), ['--root', ov.root, '--no-restart', file]);
  const unpack = (dir: string) => {
    fs.mkdirSync(dir);
    return must('tar', ['-xf', bundle, '-C', dir]);
  };
  const repack = (dir: string, out: string) =>
    must('tar', ['-cf', out, '-C', dir, 'manifest', 'manifest.sig', 'payload.tar.gz']);

  it('a payload changed by one byte: exit 2 UPDATE_BAD_BUNDLE, the current release stays', async () => {
    const t = path.join(tmp, 'tampered.bundle');
    const b = fs.readFileSync(bundle);
    b[3000] = (b[3000]! + 1) % 256;
    fs.writeFileSync(t, b);
    const r = await update(t);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^UPDATE_BAD_BUNDLE: payload does not match the signed manifest/m);
    expect(fs.readlinkSync(ov.file('opt/coffre/current'))).toBe('releases/0.1.0');
  });

  it('a manifest signed by an untrusted key, or edited after signing: exit 2 UPDATE_BAD_SIGNATURE', async () => {
    const other = await testSigningKey(tmp, 'untrusted');
    const d = path.join(tmp, 'resigned');
    await unpack(d);
    const manifest = fs.readFileSync(path.join(d, 'manifest'), 'utf8').replace('version=0.1.0', 'version=9.9.9');
    fs.writeFileSync(path.join(d, 'manifest'), manifest);
    await repack(d, path.join(tmp, 'edited.bundle'));
    const edited = await update(path.join(tmp, 'edited.bundle'));
    expect(edited.code).toBe(2);
    expect(edited.stderr).toMatch(/^UPDATE_BAD_SIGNATURE: /m);
    await must('openssl', [
      'pkeyutl',
      '-sign',
      '-inkey',
      other.priv,
      '-rawin',
      '-in',
      path.join(d, 'manifest'),
      '-out',
      path.join(d, 'manifest.sig'),
    ]);
    await repack(d, path.join(tmp, 'untrusted.bundle'));
    const untrusted = await update(path.join(tmp, 'untrusted.bundle'));
    expect(untrusted.code).toBe(2);
    expect(untrusted.stderr).toMatch(/^UPDATE_BAD_SIGNATURE: /m);
    expect(fs.readdirSync(ov.file('opt/coffre/releases')).filter((f) => !f.startsWith('.'))).toEqual(['0.1.0']);
  });

  it('the same release again is nothing to do (exit 0)', async () => {
    const r = await update(bundle);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('already the current release: nothing to do');
  });
});

describe('systemd units in the Debian 12 tree', () => {
  it('systemd-analyze verify prints nothing', async () => {
    // verify exits 0 even on parse errors: any output is a failure
    const r = await run('systemd-analyze', ['verify', `--root=${ov.root}`, ...UNITS]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('verify would have caught a broken unit (the check can fail)', async () => {
    const broken = ov.file('usr/local/lib/systemd/system/coffre-broken-probe.service');
    fs.writeFileSync(
      broken,
      fs
        .readFileSync(ov.file('usr/local/lib/systemd/system/coffre.service'), 'utf8')
        .replace('ExecStart=/opt', 'ExecStart=/nonexistent/opt') + 'NoSuchKey=1\n',
    );
    try {
      const r = await run('systemd-analyze', ['verify', `--root=${ov.root}`, 'coffre-broken-probe.service']);
      expect(r.stdout + r.stderr).toMatch(/NoSuchKey|not executable/);
    } finally {
      fs.rmSync(broken);
    }
  });

  it(`coffre.service exposure is at most ${EXPOSURE_THRESHOLD / 10} (systemd-analyze security --offline)`, async () => {
    const r = await run('systemd-analyze', [
      'security',
      '--offline=yes',
      `--root=${ov.root}`,
      `--threshold=${EXPOSURE_THRESHOLD}`,
      '--no-pager',
      'coffre.service',
    ]);
    const level = /Overall exposure level for coffre\.service: ([\d.]+)/.exec(r.stdout)?.[1];
    expect(level, r.stdout + r.stderr).toBeDefined();
    expect(Number(level)).toBeLessThanOrEqual(EXPOSURE_THRESHOLD / 10);
    expect(r.code).toBe(0);
  });

  it('coffre.service has its sandbox (docs/appliance.md)', () => {
    const unit = fs.readFileSync(ov.file('usr/local/lib/systemd/system/coffre.service'), 'utf8');
    const settings = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
    }
    const one = (k: string) => settings.get(k)?.at(-1);
    expect(one('User')).toBe('coffre');
    expect(one('SupplementaryGroups')).toBe('softhsm');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ReadWritePaths')).toBe('/var/lib/coffre/data');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('LimitCORE')).toBe('0');
    expect(settings.get('SystemCallFilter')?.[0]).toBe('@system-service @pkey');
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
    expect(one('RestrictAddressFamilies')).toBe('AF_INET AF_INET6 AF_UNIX AF_NETLINK');
    expect(one('MemoryDenyWriteExecute')).toBe('no');
    for (const k of [
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'ProtectKernelTunables',
      'ProtectKernelModules',
      'ProtectKernelLogs',
      'ProtectControlGroups',
      'RestrictSUIDSGID',
      'LockPersonality',
    ]) {
      expect(one(k), k).toBe('yes');
    }
  });

  it('the units are enabled in the tree', () => {
    for (const link of [
      'etc/systemd/system/multi-user.target.wants/coffre.service',
      'etc/systemd/system/multi-user.target.wants/coffre-firstboot.service',
      'etc/systemd/system/sysinit.target.wants/nftables.service',
      'etc/systemd/system/ssh.service.requires/coffre-ssh-hostkeys.service',
    ]) {
      // absolute links into the tree: check the link, not its target on this machine
      expect(fs.lstatSync(ov.file(link), { throwIfNoEntry: false })?.isSymbolicLink(), link).toBe(true);
    }
    expect(fs.readlinkSync(ov.file('etc/systemd/system/swap.target'))).toBe('/dev/null');
  });
});

describe('host hardening in the Debian 12 tree', () => {
  it('nft -c accepts the firewall, also with a site file, and rejects a broken one (inside the chroot)', async () => {
    expect((await ov.chroot(['nft', '-c', '-f', '/etc/nftables.conf'])).stderr).toBe('');
    const site = ov.file('etc/coffre/nftables.d/site.nft');
    fs.writeFileSync(
      site,
      'add element inet coffre mgmt_v4 { 10.0.2.2/32, 192.0.2.0/24 }\nadd element inet coffre https_v4 { 0.0.0.0/0 }\nadd element inet coffre https_v6 { ::/0 }\n',
    );
    try {
      const ok = await ov.chroot(['nft', '-c', '-f', '/etc/nftables.conf']);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      fs.writeFileSync(site, 'add element inet coffre mgmt_v4 { 10.0.2.300/32 }\n');
      const bad = await ov.chroot(['nft', '-c', '-f', '/etc/nftables.conf']);
      expect(bad.code).not.toBe(0);
    } finally {
      fs.rmSync(site);
    }
  });

  it('sshd -t accepts the configuration; keys only, no root login, no forwarding', async () => {
    await must('chroot', [ov.root, 'ssh-keygen', '-A']);
    fs.mkdirSync(ov.file('run/sshd'), { recursive: true, mode: 0o755 });
    try {
      const t = await ov.chroot(['/usr/sbin/sshd', '-t']);
      expect(t.stderr).toBe('');
      expect(t.code).toBe(0);
      const T = await ov.chroot(['/usr/sbin/sshd', '-T', '-C', 'user=alice,host=h,addr=192.0.2.1']);
      const eff = new Map(T.stdout.split('\n').map((l) => [l.split(' ')[0]!, l.slice(l.indexOf(' ') + 1)]));
      expect(eff.get('permitrootlogin')).toBe('no');
      expect(eff.get('passwordauthentication')).toBe('no');
      expect(eff.get('kbdinteractiveauthentication')).toBe('no');
      expect(eff.get('authenticationmethods')).toBe('publickey');
      expect(eff.get('allowgroups')).toBe('coffre-ssh');
      expect(eff.get('allowtcpforwarding')).toBe('no');
      expect(eff.get('x11forwarding')).toBe('no');
    } finally {
      for (const f of fs.readdirSync(ov.file('etc/ssh')))
        if (f.startsWith('ssh_host_')) fs.rmSync(ov.file(`etc/ssh/${f}`));
    }
  });

  it('unattended-upgrades takes Debian-Security only', async () => {
    const r = await must('chroot', [ov.root, 'apt-config', 'dump', 'Unattended-Upgrade::Origins-Pattern']);
    const origins = r.stdout.split('\n').filter((l) => l.startsWith('Unattended-Upgrade::Origins-Pattern::'));
    expect(origins).toEqual([
      'Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
    ]);
  });

  it('core dumps are off and the kernel settings parse', () => {
    const sysctl = fs.readFileSync(ov.file('etc/sysctl.d/60-coffre.conf'), 'utf8');
    expect(sysctl).toMatch(/^fs\.suid_dumpable = 0$/m);
    expect(fs.readFileSync(ov.file('etc/systemd/coredump.conf.d/coffre.conf'), 'utf8')).toMatch(/^Storage=none$/m);
    expect(fs.readFileSync(ov.file('etc/security/limits.d/coffre.conf'), 'utf8')).toMatch(/^\*\s+hard\s+core\s+0$/m);
  });
});

describe('the app in the tree (chroot smoke test)', () => {
  it('coffre-firstboot refuses an invalid seed with exit 2, without showing its secrets, and creates nothing', async () => {
    await ov.mountPseudo();
    fs.writeFileSync(
      ov.file('tmp/bad-seed.json'),
      JSON.stringify({
        version: 1,
        hostname: 'Bad_Host',
        site: { jurisdiction: 'FR', lat: 0, lon: 0 },
        hsm: { type: 'pkcs11', module: '/nope.so', pin: 12345678 },
      }),
    );
    const r = await ov.chroot(['/usr/local/sbin/coffre-firstboot', '--seed', '/tmp/bad-seed.json'], {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^SEED_INVALID: 2 problem\(s\) in \/tmp\/bad-seed\.json/);
    expect(r.stderr).toMatch(/\/hostname: /);
    expect(r.stderr).toMatch(/\/hsm: /);
    expect(r.stderr).not.toContain('12345678');
    expect(fs.existsSync(ov.file('var/lib/coffre/data'))).toBe(false);
    expect(fs.existsSync(ov.file('etc/coffre/firstboot.json'))).toBe(false);
  });

  it('coffre-firstboot applies a seed file: appliance, host name, firewall sets, operator, status; deletes the seed', async () => {
    const key =
      (await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'op', '-f', path.join(tmp, 'op')])) &&
      fs.readFileSync(path.join(tmp, 'op.pub'), 'utf8').trim();
    const seed = {
      version: 1,
      hostname: 'coffre-fc',
      domain: 'example.test',
      firewall: { sshFrom: ['10.0.2.2/32', '2001:db8::/64'] },
      operators: [{ name: 'ops', sshKeys: [key] }],
      ntp: ['ntp.example.test'],
      site: { jurisdiction: 'FR', lat: 45.76, lon: 4.84, timeZone: 'Europe/Paris' },
      admin: { username: 'alice', email: 'alice@example.test' },
    };
    fs.writeFileSync(ov.file('etc/coffre/seed.json'), JSON.stringify(seed), { mode: 0o600 });
    const r = await ov.chroot(['/usr/local/sbin/coffre-firstboot'], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(ov.file('etc/coffre/seed.json'))).toBe(false);
    const status = JSON.parse(fs.readFileSync(ov.file('etc/coffre/firstboot.json'), 'utf8')) as Record<string, unknown>;
    expect(status).toMatchObject({
      version: 1,
      source: '/etc/coffre/seed.json',
      hostname: 'coffre-fc',
      url: 'https://coffre-fc.example.test',
      hsm: 'softhsm',
      operators: ['ops'],
    });
    const config = JSON.parse(fs.readFileSync(ov.file('var/lib/coffre/data/config.json'), 'utf8')) as {
      http: { publicUrl: string; hostnames: string[] };
      site: { timeZone: string };
    };
    expect(config.http.publicUrl).toBe('https://coffre-fc.example.test');
    expect(config.http.hostnames).toEqual(['coffre-fc.example.test', 'coffre-fc']);
    expect(config.site.timeZone).toBe('Europe/Paris');
    // the embedded token lives outside the data dir, its PIN a systemd credential: a copy of the data dir holds no key
    const keys = (config as unknown as { keys: { pinFile: string; softhsmConfFile: string } }).keys;
    expect(keys).toMatchObject({
      pinFile: 'credential:hsm-pin',
      softhsmConfFile: '/var/lib/coffre/softhsm/softhsm2.conf',
    });
    expect(fs.existsSync(ov.file('var/lib/coffre/data/softhsm'))).toBe(false);
    expect(fs.existsSync(ov.file('var/lib/coffre/data/secrets/hsm-pin'))).toBe(false);
    expect(fs.readdirSync(ov.file('var/lib/coffre/softhsm/tokens')).length).toBe(1);
    expect(fs.statSync(ov.file('etc/coffre/credentials/hsm-pin.cred')).mode & 0o077).toBe(0);
    expect(fs.readFileSync(ov.file('etc/systemd/system/coffre.service.d/50-hsm-pin-credential.conf'), 'utf8')).toMatch(
      /^LoadCredentialEncrypted=hsm-pin:\/etc\/coffre\/credentials\/hsm-pin\.cred$/m,
    );
    expect(fs.readFileSync(ov.file('etc/hostname'), 'utf8')).toBe('coffre-fc\n');
    expect(fs.readFileSync(ov.file('etc/coffre/nftables.d/site.nft'), 'utf8')).toContain(
      'add element inet coffre mgmt_v6 { 2001:db8::/64 }',
    );
    expect((await ov.chroot(['nft', '-c', '-f', '/etc/nftables.conf'])).code).toBe(0);
    expect(fs.readFileSync(ov.file('home/ops/.ssh/authorized_keys'), 'utf8')).toBe(key + '\n');
    expect((await must('chroot', [ov.root, 'id', '-nG', 'ops'])).stdout).toMatch(/\bcoffre-ssh\b/);
    expect((await must('chroot', [ov.root, 'visudo', '-c', '-q'])).code).toBe(0);
    expect(fs.readFileSync(ov.file('etc/chrony/sources.d/coffre.sources'), 'utf8')).toContain(
      'server ntp.example.test iburst',
    );
    // the first administrator's link: in a root-only file, shown to operators on request, never in the log
    const enrol = fs.statSync(ov.file('root/coffre-enrolment-link'));
    expect([enrol.uid, enrol.mode & 0o777]).toEqual([0, 0o600]);
    const link = fs.readFileSync(ov.file('root/coffre-enrolment-link'), 'utf8').trim();
    expect(link).toMatch(/^https:\/\/coffre-fc\.example\.test\/#\/enrol\/[A-Za-z0-9_-]{20,}$/);
    const token = link.split('/').pop()!;
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(r.stdout).toContain('sudo /usr/local/sbin/coffre-firstboot --enrolment-link');
    const shown = await ov.chroot(['/usr/local/sbin/coffre-firstboot', '--enrolment-link'], { timeoutMs: 60_000 });
    expect([shown.code, shown.stdout.split('\n')[0]]).toEqual([0, link]);
    const notRoot = await ov.chroot(
      [
        'setpriv',
        '--reuid=coffre',
        '--regid=coffre',
        '--clear-groups',
        '/usr/local/sbin/coffre-firstboot',
        '--enrolment-link',
      ],
      { timeoutMs: 60_000 },
    );
    expect([notRoot.code, notRoot.stdout]).toEqual([1, '']);
    expect(notRoot.stderr).toMatch(/^ENROLMENT_LINK_UNAVAILABLE: cannot read \/root\/coffre-enrolment-link \(EACCES\)/);
    expect(fs.readFileSync(ov.file('etc/sudoers.d/coffre-operators'), 'utf8')).toContain(
      ', /usr/local/sbin/coffre-firstboot --enrolment-link,',
    );
    // every file of the appliance belongs to the service user and is private
    const uid = Number((await must('chroot', [ov.root, 'id', '-u', 'coffre'])).stdout.trim());
    const walk = (p: string): string[] => [
      p,
      ...(fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((e) => walk(path.join(p, e))) : []),
    ];
    for (const f of walk(ov.file('var/lib/coffre/data'))) {
      const st = fs.statSync(f);
      expect(st.uid, f).toBe(uid);
      expect(st.mode & 0o077, f).toBe(0);
    }
    // a second run has nothing to do
    const again = await ov.chroot(['/usr/local/sbin/coffre-firstboot'], { timeoutMs: 60_000 });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
  });

  it('runs as the service user with the softhsm group and answers /healthz under the strict TLS policy', async () => {
    const caFile = '/var/lib/coffre/data/tls/cert.pem';
    const data = fs.statSync(ov.file('var/lib/coffre/data/config.json'));
    const uid = Number((await must('chroot', [ov.root, 'id', '-u', 'coffre'])).stdout.trim());
    const softhsmGid = Number((await must('chroot', [ov.root, 'getent', 'group', 'softhsm'])).stdout.split(':')[2]);
    expect(data.uid).toBe(uid);
    expect(data.mode & 0o077).toBe(0);

    const child = ov.spawnChroot([
      '/usr/local/bin/coffre',
      'serve',
      '--data-dir',
      '/var/lib/coffre/data',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    let out = '';
    let errOut = '';
    child.stderr!.on('data', (d: Buffer) => (errOut += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no "appliance.started" line in 60 s:\n${out}\n${errOut}`)),
          60_000,
        );
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"event":"appliance\.started","url":"([^"]+)"/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}:\n${out}\n${errOut}`)));
      });
      // the serving process: the service user, with the softhsm group, no capabilities
      const pid = (
        await must('pgrep', ['-f', '-n', 'coffre.mjs serve --data-dir /var/lib/coffre/data --port 0'])
      ).stdout.trim();
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
      expect(
        status
          .match(/^Groups:\s*(.*)$/m)![1]!
          .trim()
          .split(/\s+/)
          .map(Number),
      ).toContain(softhsmGid);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);

      const ca = fs.readFileSync(ov.file(caFile));
      const u = new URL(url);
      const res = await new Promise<{ status: number; body: string; protocol: string | null; cipher: string }>(
        (resolve, reject) => {
          https
            .get(
              { host: u.hostname, port: u.port, path: '/healthz', ca, servername: 'localhost', agent: false },
              (r) => {
                const s = r.socket as tls.TLSSocket;
                const protocol = s.getProtocol();
                const cipher = s.getCipher().name;
                let body = '';
                r.on('data', (c: Buffer) => (body += c.toString()));
                r.on('end', () => resolve({ status: r.statusCode ?? 0, body, protocol, cipher }));
              },
            )
            .on('error', reject);
        },
      );
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
      expect(res.protocol).toBe('TLSv1.3');
      expect(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']).toContain(res.cipher);
      // a 128-bit suite is refused
      const weak = await new Promise<string>((resolve) => {
        const s = tls.connect(
          {
            host: u.hostname,
            port: Number(u.port),
            ca,
            servername: 'localhost',
            maxVersion: 'TLSv1.2',
            ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
          },
          () => {
            resolve('connected');
            s.end();
          },
        );
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(weak).not.toBe('connected');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('a customer HSM whose PIN the seed keeps as a systemd credential: encrypted at rest, given to the unit and to the CLI as root', async () => {
    // start again from an appliance that is not set up; a SoftHSM2 token in /var/lib/softhsm stands in for the customer's HSM
    fs.rmSync(ov.file('var/lib/coffre/data'), { recursive: true, force: true });
    const softhsmGid = (await must('chroot', [ov.root, 'getent', 'group', 'softhsm'])).stdout.split(':')[2]!;
    const asCoffre = ['setpriv', '--reuid=coffre', '--regid=coffre', `--groups=${softhsmGid}`];
    const pin = '24681357';
    expect(
      (
        await ov.chroot([
          ...asCoffre,
          'softhsm2-util',
          '--init-token',
          '--free',
          '--label',
          'credtest',
          '--pin',
          pin,
          '--so-pin',
          '97531864',
        ])
      ).code,
    ).toBe(0);
    const seed = {
      version: 1,
      hostname: 'coffre-cred',
      site: { jurisdiction: 'FR', lat: 45.76, lon: 4.84 },
      hsm: {
        type: 'pkcs11',
        module: '/usr/lib/softhsm/libsofthsm2.so',
        tokenLabel: 'credtest',
        pin,
        pinStore: 'credential',
      },
    };
    fs.writeFileSync(ov.file('tmp/cred-seed.json'), JSON.stringify(seed), { mode: 0o600 });
    const r = await ov.chroot(['/usr/local/sbin/coffre-firstboot', '--seed', '/tmp/cred-seed.json'], {
      timeoutMs: 120_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(pin);
    // the KEK was made by root during the set-up: the token's files go to the service user, as a real HSM needs no such step
    await must('chroot', [ov.root, 'chown', '-R', 'coffre:softhsm', '/var/lib/softhsm/tokens']);

    const config = JSON.parse(fs.readFileSync(ov.file('var/lib/coffre/data/config.json'), 'utf8')) as {
      keys: { pinFile: string; type: string };
    };
    expect(config.keys).toMatchObject({ type: 'pkcs11', pinFile: 'credential:hsm-pin' });
    expect(fs.existsSync(ov.file('var/lib/coffre/data/secrets/hsm-pin'))).toBe(false);
    const cred = fs.statSync(ov.file('etc/coffre/credentials/hsm-pin.cred'));
    expect([cred.uid, cred.mode & 0o777]).toEqual([0, 0o600]);
    expect(fs.readFileSync(ov.file('etc/coffre/credentials/hsm-pin.cred')).includes(pin)).toBe(false);
    expect(fs.readFileSync(ov.file('etc/systemd/system/coffre.service.d/50-hsm-pin-credential.conf'), 'utf8')).toMatch(
      /^LoadCredentialEncrypted=hsm-pin:\/etc\/coffre\/credentials\/hsm-pin\.cred$/m,
    );
    const verify = await run('systemd-analyze', ['verify', `--root=${ov.root}`, 'coffre.service']);
    expect(verify.stdout + verify.stderr).toBe('');
    // what the unit does: the credential decrypted into a private directory, the PIN read from it
    const decrypted = await ov.chroot([
      'systemd-creds',
      'decrypt',
      '--name=hsm-pin',
      '/etc/coffre/credentials/hsm-pin.cred',
      '-',
    ]);
    expect([decrypted.code, decrypted.stdout]).toEqual([0, pin]);
    // the CLI as root decrypts it for one command (the HSM answers); without it the service user has no PIN
    const status = await ov.chroot(['/usr/local/bin/coffre', 'keys', 'status', '--json'], { timeoutMs: 120_000 });
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ up: true, token: { label: 'credtest' } });
    expect(fs.readdirSync(ov.file('run')).filter((f) => f.startsWith('coffre-cli-credentials'))).toEqual([]);
    const noCred = await ov.chroot([...asCoffre, '/opt/coffre/current/bin/coffre', 'keys', 'status'], {
      timeoutMs: 120_000,
    });
    expect(noCred.code, noCred.stderr).toBe(6); // KEYS_UNAVAILABLE: unreachable (docs/cli.md)
    expect(noCred.stderr).toMatch(/^KEYS_UNAVAILABLE: cannot read the HSM PIN file \S*credential:hsm-pin /m);
  });
});
