import net from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { AppError } from '../shared/errors.js';

/**
 * The first-boot seed file (docs/appliance.md "Seed file"): everything the console wizard asks,
 * for automated installs. JSON, `version: 1`; unknown keys are errors; every problem is listed at
 * once. It may hold secrets (the HSM PIN, the TLS key): the appliance never logs them, stores the
 * PIN in a 0600 file, and deletes a seed file it was able to delete.
 */
const Cidr = Type.String({
  minLength: 2,
  maxLength: 64,
  description: 'an IPv4 or IPv6 network in CIDR notation, e.g. 192.0.2.0/24',
});
const HostLabel = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' });

export const SeedSchema = Type.Object(
  {
    version: Type.Literal(1),
    /** short host name (one DNS label) */
    hostname: HostLabel,
    /** DNS domain: the certificate and public URL use hostname.domain */
    domain: Type.Optional(
      Type.String({
        pattern: '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
        maxLength: 200,
      }),
    ),
    network: Type.Union(
      [
        Type.Object({ mode: Type.Literal('dhcp') }, { additionalProperties: false }),
        Type.Object(
          {
            mode: Type.Literal('static'),
            /** interface name; default: the first Ethernet interface (en*, eth*) */
            interface: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,15}$' })),
            /** address with prefix, e.g. 192.0.2.10/24 */
            address: Cidr,
            gateway: Type.Optional(Type.String()),
            dns: Type.Array(Type.String(), { default: [] }),
          },
          { additionalProperties: false },
        ),
      ],
      { default: { mode: 'dhcp' } },
    ),
    /** NTP servers; default: Debian's pool */
    ntp: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9.:-]{1,253}$' }), { minItems: 1, maxItems: 8 })),
    firewall: Type.Object(
      {
        /** who may reach HTTPS (443 → 8443) */
        httpsFrom: Type.Array(Cidr, { default: ['0.0.0.0/0', '::/0'] }),
        /** the management networks: the only sources allowed to SSH */
        sshFrom: Type.Array(Cidr, { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** OS accounts for SSH (keys only); sudo "appliance" = coffre tools and logs only, "full" = root */
    operators: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[a-z_][a-z0-9_-]{0,30}$' }),
          sshKeys: Type.Array(
            Type.String({
              pattern:
                '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\\.com|sk-ecdsa-sha2-nistp256@openssh\\.com|ssh-rsa) [A-Za-z0-9+/=]+( [^\\n]*)?$',
            }),
            { minItems: 1 },
          ),
          sudo: Type.Union([Type.Literal('appliance'), Type.Literal('full')], { default: 'appliance' }),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    tls: Type.Union(
      [
        Type.Object({ mode: Type.Literal('generate') }, { additionalProperties: false }),
        Type.Object(
          {
            mode: Type.Literal('provided'),
            /** PEM: the server certificate first, then its chain */
            certChain: Type.String({ minLength: 1 }),
            /** PEM private key (secret) */
            key: Type.String({ minLength: 1 }),
          },
          { additionalProperties: false },
        ),
      ],
      { default: { mode: 'generate' } },
    ),
    hsm: Type.Union(
      [
        Type.Object({ type: Type.Literal('softhsm') }, { additionalProperties: false }),
        Type.Object(
          {
            type: Type.Literal('pkcs11'),
            /** the vendor's PKCS#11 library */
            module: Type.String({ pattern: '^/' }),
            slot: Type.Optional(Type.Integer({ minimum: 0 })),
            tokenLabel: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
            /** user PIN (secret): stored in a 0600 file readable by the service user only */
            pin: Type.String({ minLength: 4, maxLength: 255 }),
            /**
             * where the PIN is kept: `file` (data/secrets/hsm-pin, 0600, owner coffre) or `credential`
             * (a systemd credential encrypted with the machine's credential key, and its TPM2 when
             * there is one: /etc/coffre/credentials/hsm-pin.cred, given to coffre.service only)
             */
            pinStore: Type.Union([Type.Literal('file'), Type.Literal('credential')], { default: 'file' }),
            kekLabel: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,48}$' })),
          },
          { additionalProperties: false },
        ),
      ],
      { default: { type: 'softhsm' } },
    ),
    site: Type.Object(
      {
        jurisdiction: Type.String({ pattern: '^[A-Z]{2}$' }),
        lat: Type.Number({ minimum: -90, maximum: 90 }),
        lon: Type.Number({ minimum: -180, maximum: 180 }),
        timeZone: Type.String({ default: 'UTC' }),
        name: Type.Optional(Type.String({ maxLength: 200 })),
      },
      { additionalProperties: false },
    ),
    /** the first administrator of Coffre (gets a one-time enrolment link) */
    admin: Type.Optional(
      Type.Object(
        {
          username: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }),
          email: Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Seed = Static<typeof SeedSchema>;

export interface SeedProblem {
  path: string;
  message: string;
}

/** A CIDR network: address part valid for its family, prefix within range. */
export function cidrFamily(s: string): 4 | 6 | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const fam = net.isIP(m[1]!);
  const prefix = Number(m[2]);
  if (fam === 4 && prefix <= 32) return 4;
  if (fam === 6 && prefix <= 128) return 6;
  return undefined;
}

function semanticProblems(s: Seed): SeedProblem[] {
  const out: SeedProblem[] = [];
  s.firewall.httpsFrom.forEach(
    (c, i) =>
      cidrFamily(c) || out.push({ path: `/firewall/httpsFrom/${i}`, message: `not a network in CIDR notation: ${c}` }),
  );
  s.firewall.sshFrom.forEach(
    (c, i) =>
      cidrFamily(c) || out.push({ path: `/firewall/sshFrom/${i}`, message: `not a network in CIDR notation: ${c}` }),
  );
  if (s.network.mode === 'static') {
    if (!cidrFamily(s.network.address))
      out.push({ path: '/network/address', message: `not an address with prefix: ${s.network.address}` });
    if (s.network.gateway !== undefined && !net.isIP(s.network.gateway))
      out.push({ path: '/network/gateway', message: `not an IP address: ${s.network.gateway}` });
    s.network.dns.forEach(
      (d, i) => net.isIP(d) || out.push({ path: `/network/dns/${i}`, message: `not an IP address: ${d}` }),
    );
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: s.site.timeZone });
  } catch {
    out.push({ path: '/site/timeZone', message: `unknown time zone: ${s.site.timeZone}` });
  }
  if (s.hsm.type === 'pkcs11' && s.hsm.slot === undefined && s.hsm.tokenLabel === undefined)
    out.push({ path: '/hsm', message: 'give slot or tokenLabel' });
  const names = new Set<string>();
  s.operators.forEach((o, i) => {
    if (['root', 'coffre', 'daemon', 'bin', 'sys', 'nobody'].includes(o.name) || names.has(o.name))
      out.push({ path: `/operators/${i}/name`, message: `reserved or repeated name: ${o.name}` });
    names.add(o.name);
  });
  if (s.operators.length && !s.firewall.sshFrom.length)
    out.push({ path: '/firewall/sshFrom', message: 'operators are declared but no management network may reach SSH' });
  return out;
}

const SECRET_PATHS = ['/hsm/pin', '/tls/key'];

/**
 * Parses and validates seed text. Throws AppError SEED_INVALID (exit 2) listing every problem;
 * messages name paths, never the values of secrets.
 */
export function parseSeed(text: string, source = 'seed file'): Seed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AppError('SEED_INVALID', `${source} is not valid JSON (${(e as Error).message.replace(/".*"/, '…')})`, {
      exitCode: 2,
      hint: 'see docs/appliance.md "Seed file"',
    });
  }
  return validateSeed(raw, source);
}

export function validateSeed(raw: unknown, source = 'seed'): Seed {
  const problems: SeedProblem[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    problems.push({ path: '', message: 'must be a JSON object' });
  else {
    const withDefaults = Value.Default(SeedSchema, structuredClone(raw));
    for (const e of Value.Errors(SeedSchema, withDefaults)) {
      if (problems.some((p) => p.path === e.path || (e.path.startsWith(p.path + '/') && p.path !== ''))) continue;
      const secret = SECRET_PATHS.some((p) => e.path.startsWith(p));
      problems.push({ path: e.path, message: secret ? 'invalid value (not shown: secret)' : e.message });
    }
    if (!problems.length) {
      const seed = withDefaults as Seed;
      problems.push(...semanticProblems(seed));
      if (!problems.length) return seed;
    }
  }
  throw new AppError(
    'SEED_INVALID',
    `${problems.length} problem(s) in ${source}:\n` +
      problems.map((p) => `  ${p.path || '/'}: ${p.message}`).join('\n'),
    {
      exitCode: 2,
      hint: 'fix the seed file (docs/appliance.md "Seed file"); nothing was changed',
      details: problems,
    },
  );
}

/** The host names the certificate covers: fqdn first (public URL), then the short name. */
export function seedHostnames(s: Seed): string[] {
  return s.domain ? [`${s.hostname}.${s.domain}`, s.hostname] : [s.hostname];
}
