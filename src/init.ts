import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { CONFIG_FILE, validateConfig, type ConfigFile } from './config/index.js';
import { openDatabase, migrateToLatest } from './db/index.js';
import { makeSelfSigned } from './http/index.js';
import { bootstrapKeys, type KeysFileSection } from './keys/bootstrap.js';
import { AppError } from './shared/errors.js';
import { checkFirstAdminArgs, createFirstAdmin } from './auth/first-admin.js';
import { createLogger } from './shared/logger.js';
import { systemClock } from './shared/clock.js';
import { createKeyProvider } from './keys/registry.js';
import { HsmSealer } from './seals/index.js';

export interface InitOptions {
  dataDir: string;
  port?: number | undefined;
  jurisdiction: string;
  lat?: number | undefined;
  lon?: number | undefined;
  timeZone: string;
  hostnames: string[];
  /** the URL users reach (links in e-mails); default https://<first host name>:<port> */
  publicUrl?: string | undefined;
  admin?: string | undefined;
  adminEmail?: string | undefined;
  actor: string;
  /** an existing HSM token to use (customer HSM; tests) instead of creating the default SoftHSM2 one */
  hsm?: KeysFileSection | undefined;
  progress?: (msg: string) => void;
}

export interface InitResult {
  dataDir: string;
  applianceId: string;
  url: string;
  caFile: string;
  fingerprint: string;
  enrolUrl?: string;
}

/**
 * Creates a new appliance in `dataDir`. Refuses (exit 2) when an appliance is already there or the
 * directory holds anything else; on any failure removes everything it created, so a failed init
 * leaves nothing behind. `config.json` is written last: its presence means "an appliance is here".
 */
export async function initAppliance(o: InitOptions): Promise<InitResult> {
  const say = o.progress ?? (() => undefined);
  const dir = path.resolve(o.dataDir);
  const jurisdiction = o.jurisdiction.toUpperCase();
  if (!/^[A-Z]{2}$/.test(jurisdiction))
    throw new AppError('USAGE', `--jurisdiction must be an ISO 3166-1 alpha-2 code (got "${o.jurisdiction}")`, {
      exitCode: 2,
      hint: 'e.g. --jurisdiction FR',
    });
  try {
    new Intl.DateTimeFormat('en', { timeZone: o.timeZone });
  } catch {
    throw new AppError('USAGE', `--tz: unknown time zone "${o.timeZone}"`, {
      exitCode: 2,
      hint: 'use an IANA name such as Europe/Paris',
    });
  }
  for (const h of o.hostnames) {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(h))
      throw new AppError('USAGE', `--hostname: invalid host name "${h}"`, {
        exitCode: 2,
        hint: 'use a DNS name such as coffre.example.org',
      });
  }
  checkFirstAdminArgs(o.admin, o.adminEmail);
  if (fs.existsSync(path.join(dir, CONFIG_FILE))) {
    throw new AppError('APPLIANCE_EXISTS', `an appliance already exists in ${dir}; nothing was changed`, {
      exitCode: 2,
      hint: 'use another --data-dir, or `coffre serve` to run this one',
    });
  }
  let createdDir = false;
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory())
      throw new AppError('USAGE', `${dir} is not a directory`, { exitCode: 2, hint: 'pass a directory to --data-dir' });
    if (fs.readdirSync(dir).length)
      throw new AppError('DATA_DIR_NOT_EMPTY', `${dir} is not empty; nothing was changed`, {
        exitCode: 2,
        hint: 'init needs an empty or absent directory',
      });
  } else {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    createdDir = true;
  }
  const cleanup = () => {
    if (createdDir) fs.rmSync(dir, { recursive: true, force: true });
    else for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  };
  try {
    const applianceId = crypto.randomUUID();
    say('creating the TLS certificate (ECDSA P-256, self-signed)…');
    const cert = await makeSelfSigned(o.hostnames);
    fs.mkdirSync(path.join(dir, 'tls'), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'tls', 'cert.pem'), cert.certPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'tls', 'key.pem'), cert.keyPem, { mode: 0o600 });

    say('creating the HSM token and the key-encryption key…');
    const keys = await bootstrapKeys(dir, applianceId, o.hsm);

    const port = o.port ?? 8443;
    const publicHost = o.hostnames[0] ?? '127.0.0.1';
    const raw: Partial<ConfigFile> & Record<string, unknown> = {
      version: 1,
      applianceId,
      http: {
        port,
        hostnames: o.hostnames,
        publicUrl: o.publicUrl ?? `https://${publicHost}:${port}`,
      } as ConfigFile['http'],
      site: { jurisdiction, lat: o.lat ?? 48.8566, lon: o.lon ?? 2.3522, timeZone: o.timeZone } as ConfigFile['site'],
      keys: keys.keys as ConfigFile['keys'],
    };
    const config = validateConfig(raw, dir, {}, 'new configuration');

    say('creating the database…');
    const db = openDatabase(config.database);
    let enrolUrl: string | undefined;
    try {
      await migrateToLatest(db.db);
      await db.db
        .insertInto('appliance_meta')
        .values([
          { key: 'appliance_id', value: applianceId },
          { key: 'created_at', value: new Date().toISOString() },
          { key: 'created_by', value: o.actor },
        ])
        .execute();
      say('creating the sealing key in the HSM (ECDSA P-256) and its self-signed certificate…');
      const provider = await createKeyProvider(config.keys);
      try {
        await new HsmSealer({
          db: db.db,
          keys: provider,
          clock: systemClock,
          identity: { applianceId, organisation: config.site.name },
        }).ensure();
      } finally {
        await provider.close();
      }
      if (o.admin && o.adminEmail) {
        say(`creating the first administrator (${o.admin})…`);
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        enrolUrl = (
          await createFirstAdmin({
            config,
            db: db.db,
            clock: systemClock,
            log,
            actor: o.actor,
            username: o.admin,
            email: o.adminEmail,
          })
        ).enrolUrl;
      }
    } finally {
      await db.close();
    }

    const tmp = path.join(dir, `.${CONFIG_FILE}.tmp`);
    const fd = fs.openSync(tmp, 'w', 0o600);
    fs.writeSync(fd, JSON.stringify(raw, null, 2) + '\n');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, path.join(dir, CONFIG_FILE));
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
    return {
      dataDir: dir,
      applianceId,
      url: `https://${publicHost}:${port}`,
      caFile: path.join(dir, 'tls', 'cert.pem'),
      fingerprint: cert.fingerprint256,
      ...(enrolUrl ? { enrolUrl } : {}),
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}
