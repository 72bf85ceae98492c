import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseSeed, validateSeed } from '../../src/firstboot/seed.js';
import { firewallSite, staticNetwork, sudoers, hostsFile, chronySources } from '../../src/firstboot/render.js';
import { Prompter, runWizard } from '../../src/firstboot/wizard.js';
import { isAppError } from '../../src/shared/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk5cCwzWmXvZ8d0nU6Q5gVbXbW3xQ2b8l9Q2v8kQmJd op@example';
const minimal = { version: 1, hostname: 'vault1', site: { jurisdiction: 'FR', lat: 45.76, lon: 4.84 } };

function problems(raw: unknown): string[] {
  try {
    validateSeed(raw);
  } catch (e) {
    if (isAppError(e)) return (e.details as { path: string }[]).map((p) => p.path);
    throw e;
  }
  return [];
}

describe('seed file', () => {
  it('fills defaults: DHCP, generated certificate, SoftHSM2, HTTPS from anywhere, SSH from nowhere', () => {
    const s = validateSeed(minimal);
    expect(s.network).toEqual({ mode: 'dhcp' });
    expect(s.tls).toEqual({ mode: 'generate' });
    expect(s.hsm).toEqual({ type: 'softhsm' });
    expect(s.firewall).toEqual({ httpsFrom: ['0.0.0.0/0', '::/0'], sshFrom: [] });
    expect(s.site.timeZone).toBe('UTC');
  });

  it('lists every problem at once, with paths', () => {
    const p = problems({
      version: 1,
      hostname: 'Bad_Name',
      site: { jurisdiction: 'fr', lat: 91, lon: 0 },
      firewall: { sshFrom: ['10.0.0.0/33'] },
      extra: true,
    });
    expect(p).toEqual(expect.arrayContaining(['/hostname', '/site/jurisdiction', '/site/lat', '/extra']));
  });

  it('checks networks, addresses, time zone and operators semantically', () => {
    const p = problems({
      ...minimal,
      site: { ...minimal.site, timeZone: 'Mars/Olympus' },
      network: { mode: 'static', address: '192.0.2.300/24', gateway: 'gw', dns: ['1.1.1.1'] },
      firewall: { sshFrom: ['10.0.0.0/33'] },
      operators: [{ name: 'root', sshKeys: [KEY] }],
    });
    expect(p).toEqual(
      expect.arrayContaining([
        '/site/timeZone',
        '/network/address',
        '/network/gateway',
        '/firewall/sshFrom/0',
        '/operators/0/name',
      ]),
    );
  });

  it('refuses operators when no management network may reach SSH', () => {
    expect(problems({ ...minimal, operators: [{ name: 'ops', sshKeys: [KEY] }] })).toEqual(['/firewall/sshFrom']);
  });

  it('never echoes a secret in its errors', () => {
    const pin = 'x'.repeat(300); // too long: invalid
    try {
      parseSeed(JSON.stringify({ ...minimal, hsm: { type: 'pkcs11', module: '/usr/lib/x.so', tokenLabel: 't', pin } }));
      expect.unreachable();
    } catch (e) {
      expect(isAppError(e) && e.code).toBe('SEED_INVALID');
      expect((e as Error).message).not.toContain(pin);
      expect((e as Error).message).toContain('/hsm');
    }
  });

  it('a customer HSM needs a slot or a token label', () => {
    expect(problems({ ...minimal, hsm: { type: 'pkcs11', module: '/usr/lib/x.so', pin: '123456' } })).toEqual(['/hsm']);
    // the PIN is kept in a 0600 file unless the seed asks for a systemd credential
    expect(
      validateSeed({ ...minimal, hsm: { type: 'pkcs11', module: '/usr/lib/x.so', slot: 0, pin: '123456' } }).hsm,
    ).toMatchObject({ pinStore: 'file' });
    expect(
      validateSeed({
        ...minimal,
        hsm: { type: 'pkcs11', module: '/usr/lib/x.so', slot: 0, pin: '123456', pinStore: 'credential' },
      }).hsm,
    ).toMatchObject({ pinStore: 'credential' });
    expect(
      problems({
        ...minimal,
        hsm: { type: 'pkcs11', module: '/usr/lib/x.so', slot: 0, pin: '123456', pinStore: 'tpm' },
      }),
    ).toEqual(['/hsm']);
  });

  it('rejects text that is not JSON with exit code 2', () => {
    try {
      parseSeed('{ "version": 1, ');
      expect.unreachable();
    } catch (e) {
      expect(isAppError(e) && e.exitCode).toBe(2);
    }
  });
});

describe('rendered OS files', () => {
  const s = validateSeed({
    ...minimal,
    domain: 'example.org',
    network: {
      mode: 'static',
      interface: 'ens3',
      address: '192.0.2.10/24',
      gateway: '192.0.2.1',
      dns: ['192.0.2.53', '2001:db8::53'],
    },
    firewall: { httpsFrom: ['192.0.2.0/24', '2001:db8::/32'], sshFrom: ['10.1.0.0/16'] },
    ntp: ['ntp1.example.org'],
    operators: [
      { name: 'ops', sshKeys: [KEY] },
      { name: 'root2', sshKeys: [KEY], sudo: 'full' },
    ],
  });

  it('splits firewall networks by family into the nftables sets', () => {
    expect(
      firewallSite(s)
        .split('\n')
        .filter((l) => l.startsWith('add')),
    ).toEqual([
      'add element inet coffre https_v4 { 192.0.2.0/24 }',
      'add element inet coffre https_v6 { 2001:db8::/32 }',
      'add element inet coffre mgmt_v4 { 10.1.0.0/16 }',
    ]);
  });

  it('writes a networkd file for a static address', () => {
    expect(staticNetwork(s)).toContain('Name=ens3\n');
    expect(staticNetwork(s)).toContain('Address=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\nDNS=2001:db8::53\n');
    expect(staticNetwork(validateSeed(minimal))).toBeUndefined();
  });

  it('names the host, NTP servers, and limits sudo for appliance operators', () => {
    expect(hostsFile(s)).toContain('127.0.1.1\tvault1.example.org vault1\n');
    expect(chronySources(s)).toContain('server ntp1.example.org iburst');
    const rules = sudoers(s);
    expect(rules).toMatch(/^ops ALL=\(root\) NOPASSWD: \/usr\/local\/bin\/coffre, /m);
    expect(rules).not.toMatch(/^ops .*NOPASSWD: ALL$/m);
    expect(rules).toMatch(/^root2 ALL=\(ALL:ALL\) NOPASSWD: ALL$/m);
  });
});

describe('console wizard', () => {
  const answer = (lines: string[]) => {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = '';
    output.on('data', (d: Buffer) => (shown += d.toString()));
    const echo: boolean[] = [];
    const p = new Prompter(input, output, (on) => echo.push(on));
    input.write(lines.join('\n') + '\n');
    return { p, shown: () => shown, echo };
  };

  it('turns answers into the same seed a file would give, PIN typed without echo', async () => {
    const { p, echo } = answer([
      'vault1',
      'example.org',
      'static',
      '192.0.2.10/24',
      '192.0.2.1',
      '192.0.2.53',
      '',
      '',
      '10.1.0.0/16',
      'ops',
      KEY,
      '',
      '',
      'pkcs11',
      '/usr/lib/vendor/pkcs11.so',
      'coffre',
      '123456',
      'credential',
      'de',
      '52.52',
      '13.40',
      'Europe/Berlin',
      'alice',
      'alice@example.org',
      'yes',
    ]);
    const s = await runWizard(p);
    expect(s.hostname).toBe('vault1');
    expect(s.network).toEqual({ mode: 'static', address: '192.0.2.10/24', gateway: '192.0.2.1', dns: ['192.0.2.53'] });
    expect(s.firewall).toEqual({ httpsFrom: ['0.0.0.0/0', '::/0'], sshFrom: ['10.1.0.0/16'] });
    expect(s.operators).toEqual([{ name: 'ops', sshKeys: [KEY], sudo: 'appliance' }]);
    expect(s.hsm).toEqual({
      type: 'pkcs11',
      module: '/usr/lib/vendor/pkcs11.so',
      tokenLabel: 'coffre',
      pin: '123456',
      pinStore: 'credential',
    });
    expect(s.site).toEqual({ jurisdiction: 'DE', lat: 52.52, lon: 13.4, timeZone: 'Europe/Berlin' });
    expect(s.admin).toEqual({ username: 'alice', email: 'alice@example.org' });
    expect(echo).toEqual([false, true]);
  });

  it('shows the problems and asks again when answers do not validate', async () => {
    const round = (tz: string) => ['vault1', '', 'dhcp', '', '', '', 'generate', 'softhsm', 'FR', '45', '4', tz, '-'];
    const { p, shown } = answer([...round('Nowhere/Land'), ...round('Europe/Paris'), 'yes']);
    const s = await runWizard(p);
    expect(shown()).toContain('/site/timeZone: unknown time zone: Nowhere/Land');
    expect(s.site.timeZone).toBe('Europe/Paris');
    expect(s.admin).toBeUndefined();
  });
});
