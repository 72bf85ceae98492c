import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { initAppliance } from '../init.js';
import { CONFIG_FILE } from '../config/index.js';
import { SOFTHSM_MODULE, createSoftHsmToken, writeSoftHsmConf, type KeysFileSection } from '../keys/bootstrap.js';
import { AppError } from '../shared/errors.js';
import { seedHostnames, type Seed } from './seed.js';
import { chronySources, firewallSite, hostsFile, SHOW_ENROL_LINK, staticNetwork, sudoers } from './render.js';

export const DATA_DIR = '/var/lib/coffre/data';
export const STATUS_FILE = '/etc/coffre/firstboot.json';
export const ENROL_FILE = '/root/coffre-enrolment-link';
const SITE_NFT = '/etc/coffre/nftables.d/site.nft';
/** the HSM PIN as a systemd credential (seed `hsm.pinStore: "credential"`) */
export const PIN_CREDENTIAL = 'hsm-pin';
export const PIN_CREDENTIAL_FILE = `/etc/coffre/credentials/${PIN_CREDENTIAL}.cred`;
const PIN_DROPIN = '/etc/systemd/system/coffre.service.d/50-hsm-pin-credential.conf';
/**
 * The embedded SoftHSM2 token of the image (seed `hsm.type: "softhsm"`): outside the data
 * directory, so that a copy of the data directory (or its backup) holds no key material, and its
 * PIN is a systemd credential (sealed with the TPM2 where the machine has one), never a file.
 */
export const EMBEDDED_TOKEN_DIR = '/var/lib/coffre/softhsm';

/**
 * Encrypts the PIN as a systemd credential (the machine's credential key, and its TPM2 when it has
 * one: `systemd-creds encrypt`), readable by root only; coffre.service gets it decrypted in its
 * private $CREDENTIALS_DIRECTORY, the coffre CLI as root decrypts it for one command.
 */
function storePinCredential(pin: string): void {
  fs.mkdirSync(path.dirname(PIN_CREDENTIAL_FILE), { recursive: true, mode: 0o700 });
  try {
    execFileSync('systemd-creds', ['encrypt', `--name=${PIN_CREDENTIAL}`, '-', PIN_CREDENTIAL_FILE], {
      input: pin,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    fs.rmSync(PIN_CREDENTIAL_FILE, { force: true });
    throw new AppError(
      'FIRSTBOOT_CREDENTIAL_FAILED',
      `could not encrypt the HSM PIN as a systemd credential (${(e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? 'error'})`,
      {
        exitCode: 1,
        hint: 'use "pinStore": "file", or check systemd-creds on this machine',
      },
    );
  }
  fs.chmodSync(PIN_CREDENTIAL_FILE, 0o600);
}

export interface ApplyOptions {
  /** where the seed came from (recorded in the status file) */
  source: string;
  /** progress for the journal: never secrets */
  log: (msg: string) => void;
  /** the VM console: the only place the enrolment link is shown */
  console: (msg: string) => void;
}

export interface ApplyResult {
  url: string;
  fingerprint: string;
  applianceId: string;
  enrolUrl?: string;
}

const run = (cmd: string, args: string[], input?: string) =>
  execFileSync(cmd, args, {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(input === undefined ? {} : { input }),
  }).toString();

/** Writes a file atomically (temp name, fsync, rename) with the given mode and owner. */
function writeFile(file: string, content: string, mode = 0o644, owner?: { uid: number; gid: number }): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.coffre-tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, content);
    fs.fchmodSync(fd, mode);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function serviceUser(): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('coffre:'));
  if (!line)
    throw new AppError('FIRSTBOOT_NO_SERVICE_USER', 'the service user coffre does not exist', {
      exitCode: 1,
      hint: 'this is not a Coffre appliance image (appliance/install.sh)',
    });
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Checks a provided certificate chain and key before anything is written. */
function checkProvidedTls(s: Seed): { chain: string; key: string } | undefined {
  if (s.tls.mode !== 'provided') return undefined;
  try {
    const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(s.tls.certChain)?.[0];
    if (!first) throw new Error('no PEM certificate in certChain');
    const cert = new crypto.X509Certificate(first);
    const key = crypto.createPrivateKey(s.tls.key);
    if (!cert.checkPrivateKey(key)) throw new Error('the key does not belong to the first certificate');
    if (Date.parse(cert.validTo) < Date.now()) throw new Error(`the certificate expired on ${cert.validTo}`);
  } catch (e) {
    throw new AppError('SEED_INVALID', `tls: ${(e as Error).message}`, {
      exitCode: 2,
      hint: 'give the server certificate first, then its chain, and its private key (PEM)',
    });
  }
  return { chain: s.tls.certChain.trim() + '\n', key: s.tls.key.trim() + '\n' };
}

function editConfig(edit: (c: Record<string, unknown>) => void, owner: { uid: number; gid: number }): void {
  const file = path.join(DATA_DIR, CONFIG_FILE);
  const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(c);
  writeFile(file, JSON.stringify(c, null, 2) + '\n', 0o600, owner);
}

function chownTree(p: string, o: { uid: number; gid: number }): void {
  fs.lchownSync(p, o.uid, o.gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), o);
}

const isLive = () => fs.existsSync('/run/systemd/system');

/**
 * Applies a validated seed: creates the appliance (config, TLS, HSM token or the customer's HSM,
 * database, first admin), then the OS settings (host name, network, firewall sets, NTP, operators).
 * Refuses when an appliance already exists. On a running system, reloads what changed.
 */
export async function applySeed(s: Seed, o: ApplyOptions): Promise<ApplyResult> {
  if (fs.existsSync(path.join(DATA_DIR, CONFIG_FILE))) {
    throw new AppError(
      'APPLIANCE_EXISTS',
      `an appliance already exists in ${DATA_DIR}; the first-boot set-up has nothing to do`,
      { exitCode: 2, hint: 'change settings with the coffre command' },
    );
  }
  const owner = serviceUser();
  const tls = checkProvidedTls(s);
  const site = firewallSite(s);
  // check the firewall sets with the real ruleset before writing anything
  const probe = `${SITE_NFT}.check`;
  writeFile(probe, site);
  try {
    run(
      'nft',
      ['-c', '-f', '-'],
      fs.readFileSync('/etc/nftables.conf', 'utf8').replace('/etc/coffre/nftables.d/*.nft', probe),
    );
  } catch (e) {
    throw new AppError(
      'SEED_INVALID',
      `firewall: nft refuses the networks (${(e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? 'error'})`,
      { exitCode: 2 },
    );
  } finally {
    fs.rmSync(probe, { force: true });
  }

  // 1. the appliance
  let hsm: KeysFileSection | undefined;
  const pinTmp = '/run/coffre-firstboot-hsm-pin';
  if (s.hsm.type === 'pkcs11') {
    writeFile(pinTmp, s.hsm.pin + '\n', 0o600);
    hsm = {
      type: 'pkcs11',
      module: s.hsm.module,
      pinFile: pinTmp,
      kekLabel: s.hsm.kekLabel ?? 'coffre-kek',
      ...(s.hsm.slot !== undefined ? { slot: s.hsm.slot } : {}),
      ...(s.hsm.tokenLabel ? { tokenLabel: s.hsm.tokenLabel } : {}),
    } as KeysFileSection;
    o.log(
      `testing the HSM (${s.hsm.module}${s.hsm.tokenLabel ? `, token ${s.hsm.tokenLabel}` : `, slot ${s.hsm.slot}`})…`,
    );
  }
  // the pin a systemd credential will keep: the customer HSM's (pinStore credential) or the embedded token's
  let credentialPin: string | undefined =
    s.hsm.type === 'pkcs11' && s.hsm.pinStore === 'credential' ? s.hsm.pin : undefined;
  if (s.hsm.type === 'softhsm') {
    fs.rmSync(EMBEDDED_TOKEN_DIR, { recursive: true, force: true }); // a token of an appliance that was never set up
    const conf = path.join(EMBEDDED_TOKEN_DIR, 'softhsm2.conf');
    writeSoftHsmConf(conf, path.join(EMBEDDED_TOKEN_DIR, 'tokens'));
    const label = `coffre-${crypto.randomBytes(4).toString('hex')}`;
    o.log('creating the embedded SoftHSM2 token (evaluation only: see docs/hsm.md)…');
    createSoftHsmToken(conf, label, pinTmp);
    credentialPin = fs.readFileSync(pinTmp, 'utf8').trim();
    hsm = {
      type: 'pkcs11',
      module: SOFTHSM_MODULE,
      tokenLabel: label,
      pinFile: pinTmp,
      softhsmConfFile: conf,
      kekLabel: 'coffre-kek',
    };
  }
  const hostnames = seedHostnames(s);
  let r;
  try {
    r = await initAppliance({
      dataDir: DATA_DIR,
      port: 8443,
      jurisdiction: s.site.jurisdiction,
      lat: s.site.lat,
      lon: s.site.lon,
      timeZone: s.site.timeZone,
      hostnames,
      // users come through 443 (redirected to 8443 by the firewall): the enrolment link too
      publicUrl: `https://${hostnames[0]}`,
      admin: s.admin?.username,
      adminEmail: s.admin?.email,
      actor: 'local:firstboot',
      hsm,
      progress: o.log,
    });
    if (credentialPin !== undefined) storePinCredential(credentialPin);
    else if (s.hsm.type === 'pkcs11') {
      fs.mkdirSync(path.join(DATA_DIR, 'secrets'), { recursive: true, mode: 0o700 });
      writeFile(path.join(DATA_DIR, 'secrets', 'hsm-pin'), s.hsm.pin + '\n', 0o600, owner);
    }
  } catch (e) {
    // nothing half-made: the appliance initAppliance created goes with the PIN it could not store
    if (r) fs.rmSync(DATA_DIR, { recursive: true, force: true });
    if (s.hsm.type === 'softhsm') fs.rmSync(EMBEDDED_TOKEN_DIR, { recursive: true, force: true });
    throw e;
  } finally {
    fs.rmSync(pinTmp, { force: true });
  }
  editConfig((c) => {
    const http = (c.http ?? {}) as Record<string, unknown>;
    // users come through 443 (redirected to 8443 by the firewall)
    http.publicUrl = `https://${hostnames[0]}`;
    c.http = http;
    if (s.site.name) (c.site as Record<string, unknown>).name = s.site.name;
    if (credentialPin !== undefined) (c.keys as Record<string, unknown>).pinFile = `credential:${PIN_CREDENTIAL}`;
    else if (s.hsm.type === 'pkcs11') (c.keys as Record<string, unknown>).pinFile = 'secrets/hsm-pin';
  }, owner);
  if (s.hsm.type === 'softhsm') chownTree(EMBEDDED_TOKEN_DIR, owner);
  if (credentialPin !== undefined) {
    writeFile(
      PIN_DROPIN,
      `# written by coffre-firstboot: the HSM PIN (keys.pinFile "credential:${PIN_CREDENTIAL}")\n[Service]\nLoadCredentialEncrypted=${PIN_CREDENTIAL}:${PIN_CREDENTIAL_FILE}\n`,
    );
  }
  let fingerprint = r.fingerprint;
  if (tls) {
    writeFile(path.join(DATA_DIR, 'tls', 'cert.pem'), tls.chain, 0o644, owner);
    writeFile(path.join(DATA_DIR, 'tls', 'key.pem'), tls.key, 0o600, owner);
    fingerprint = new crypto.X509Certificate(tls.chain).fingerprint256;
  }
  chownTree(DATA_DIR, owner);
  o.log(`appliance ${r.applianceId} created`);

  // 2. the operating system
  writeFile('/etc/hostname', `${s.hostname}\n`);
  writeFile('/etc/hosts', hostsFile(s));
  const net = staticNetwork(s);
  if (net) {
    writeFile('/etc/systemd/network/40-coffre.network', net);
    fs.rmSync('/etc/systemd/network/50-coffre-dhcp.network', { force: true });
  }
  writeFile(SITE_NFT, site);
  const ntp = chronySources(s);
  if (ntp) {
    writeFile('/etc/chrony/sources.d/coffre.sources', ntp);
    const conf = '/etc/chrony/chrony.conf';
    if (fs.existsSync(conf))
      writeFile(
        conf,
        fs
          .readFileSync(conf, 'utf8')
          .replace(/^(pool .*)$/gm, '# $1  (replaced by /etc/chrony/sources.d/coffre.sources)'),
      );
  }
  for (const op of s.operators) {
    const exists = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((l) => l.startsWith(`${op.name}:`));
    if (!exists)
      run('useradd', [
        '--create-home',
        '--shell',
        '/bin/bash',
        '--groups',
        'coffre-ssh,systemd-journal,adm',
        '--comment',
        'Coffre operator',
        op.name,
      ]);
    run('passwd', ['--lock', op.name]);
    const home = `/home/${op.name}`;
    const ids = { uid: Number(run('id', ['-u', op.name]).trim()), gid: Number(run('id', ['-g', op.name]).trim()) };
    fs.mkdirSync(`${home}/.ssh`, { recursive: true, mode: 0o700 });
    fs.chownSync(`${home}/.ssh`, ids.uid, ids.gid);
    writeFile(`${home}/.ssh/authorized_keys`, op.sshKeys.join('\n') + '\n', 0o600, ids);
  }
  if (s.operators.length) {
    const rules = sudoers(s);
    const tmp = '/etc/sudoers.d/.coffre-operators.check';
    writeFile(tmp, rules, 0o440);
    try {
      run('visudo', ['-c', '-q', '-f', tmp]);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    writeFile('/etc/sudoers.d/coffre-operators', rules, 0o440);
  }

  // 3. status (no secrets) and the enrolment link (console and a root-only file, never the journal)
  const status = {
    version: 1,
    completedAt: new Date().toISOString(),
    source: o.source,
    hostname: s.hostname,
    hostnames,
    applianceId: r.applianceId,
    url: `https://${hostnames[0]}`,
    certificateSha256: fingerprint,
    hsm: s.hsm.type,
    operators: s.operators.map((x) => x.name),
    firewall: s.firewall,
  };
  writeFile(STATUS_FILE, JSON.stringify(status, null, 2) + '\n', 0o644);
  if (r.enrolUrl) {
    writeFile(ENROL_FILE, `${r.enrolUrl}\n`, 0o600);
    o.console(
      `\n  First administrator (${s.admin?.username}): open this one-time link within 24 h to choose a password:\n  ${r.enrolUrl}\n  (also in ${ENROL_FILE}, readable by root only)\n`,
    );
    // the journal says where the link is, never the link itself
    o.log(
      `the first administrator's one-time enrolment link (${s.admin?.username}) is on the console and in ${ENROL_FILE}; an operator shows it with: sudo ${SHOW_ENROL_LINK}`,
    );
  }
  o.console(`\n  Coffre is set up: https://${hostnames[0]}\n  certificate SHA-256: ${fingerprint}\n`);

  if (isLive()) {
    const reload = (args: string[]) => {
      try {
        run('systemctl', args);
      } catch (e) {
        o.log(`systemctl ${args.join(' ')} failed: ${(e as { stderr?: Buffer }).stderr?.toString().trim() ?? ''}`);
        throw new AppError('FIRSTBOOT_RELOAD_FAILED', `could not apply: systemctl ${args.join(' ')}`, {
          exitCode: 1,
          hint: 'see journalctl -b',
        });
      }
    };
    run('hostname', [s.hostname]);
    if (credentialPin !== undefined) reload(['daemon-reload']);
    reload(['reload-or-restart', 'nftables.service']);
    if (net) reload(['restart', 'systemd-networkd.service']);
    if (ntp) reload(['restart', 'chrony.service']);
  }
  return {
    url: `https://${hostnames[0]}`,
    fingerprint,
    applianceId: r.applianceId,
    ...(r.enrolUrl ? { enrolUrl: r.enrolUrl } : {}),
  };
}
