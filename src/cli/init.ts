import type { Command } from 'commander';
import { Option } from 'commander';
import path from 'node:path';
import { initAppliance } from '../init.js';
import type { KeysFileSection } from '../keys/bootstrap.js';
import { errors } from '../shared/errors.js';
import { loadConfig, resolveDataDir } from '../config/index.js';
import { embeddedTokenNotice } from '../keys/embedded.js';
import { action, dataDirOption, emit, jsonOption, localActor, parseNumber, type Io } from './output.js';

export function registerInit(program: Command, io: Io): void {
  program
    .command('init')
    .description('create a new appliance: config, database, TLS certificate, HSM token and key-encryption key')
    .addOption(dataDirOption())
    .addOption(new Option('--port <n>', 'HTTPS port').argParser(parseNumber('--port', 1, 65535, true)))
    .option('--jurisdiction <CC>', 'ISO 3166-1 alpha-2 code of the site (e.g. FR)', 'FR')
    .addOption(new Option('--lat <deg>', 'site latitude').argParser(parseNumber('--lat', -90, 90)))
    .addOption(new Option('--lon <deg>', 'site longitude').argParser(parseNumber('--lon', -180, 180)))
    .option('--tz <zone>', 'IANA time zone for schedules and weekday slots', 'UTC')
    .option('--hostname <name...>', 'host names for the certificate and the public URL')
    .option('--admin <user>', 'first administrator: prints a one-time enrolment link')
    .option('--admin-email <email>', "first administrator's e-mail address")
    .option(
      '--hsm-module <path>',
      'customer HSM: its PKCS#11 library (default: a new SoftHSM2 token under the data dir)',
    )
    .option('--hsm-token <label>', 'customer HSM: token label')
    .addOption(
      new Option('--hsm-slot <n>', 'customer HSM: slot id (instead of, or checked with, --hsm-token)').argParser(
        parseNumber('--hsm-slot', 0, 2 ** 32 - 1, true),
      ),
    )
    .option('--hsm-pin-file <file>', 'customer HSM: file holding the user PIN (0600; never the PIN itself)')
    .option('--kek-label <label>', 'label prefix of the key-encryption key (versions are <label>-<n>)')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (opts: {
          dataDir?: string;
          port?: number;
          jurisdiction: string;
          lat?: number;
          lon?: number;
          tz: string;
          hostname?: string[];
          admin?: string;
          adminEmail?: string;
          hsmModule?: string;
          hsmToken?: string;
          hsmSlot?: number;
          hsmPinFile?: string;
          kekLabel?: string;
          json?: boolean;
        }) => {
          const hsm = hsmOption(opts);
          const r = await initAppliance({
            ...(hsm ? { hsm } : {}),
            dataDir: resolveDataDir(opts.dataDir),
            port: opts.port,
            jurisdiction: opts.jurisdiction,
            lat: opts.lat,
            lon: opts.lon,
            timeZone: opts.tz,
            hostnames: opts.hostname ?? [],
            admin: opts.admin,
            adminEmail: opts.adminEmail,
            actor: localActor(),
            progress: (m) => io.err(m),
          });
          const obj: Record<string, unknown> = {
            url: r.url,
            caFile: r.caFile,
            fingerprint: r.fingerprint,
            dataDir: r.dataDir,
            applianceId: r.applianceId,
          };
          if (r.enrolUrl) obj.enrolUrl = r.enrolUrl;
          // the embedded SoftHSM2 token: said plainly, every time (stderr; and in the JSON)
          const embedded = embeddedTokenNotice(loadConfig(r.dataDir).keys);
          if (embedded) {
            io.err(embedded.message);
            obj.embeddedToken = embedded;
          }
          emit(io, opts.json, obj, () =>
            [
              `Appliance created in ${r.dataDir}`,
              `  URL:         ${r.url}`,
              `  certificate: ${r.caFile}`,
              `  SHA-256:     ${r.fingerprint}`,
              ...(r.enrolUrl ? [`  enrol ${opts.admin}: ${r.enrolUrl}`, '  (one-time link, valid 24 h)'] : []),
            ].join('\n'),
          );
        },
      ),
    );
}

/** The customer-HSM flags of `coffre init` as a keys section, or undefined for the default SoftHSM2. */
function hsmOption(o: {
  hsmModule?: string;
  hsmToken?: string;
  hsmSlot?: number;
  hsmPinFile?: string;
  kekLabel?: string;
}): KeysFileSection | undefined {
  if (o.hsmModule === undefined) {
    if (o.hsmToken !== undefined || o.hsmSlot !== undefined || o.hsmPinFile !== undefined || o.kekLabel !== undefined) {
      throw errors.usage(
        '--hsm-token, --hsm-slot, --hsm-pin-file and --kek-label need --hsm-module',
        'give the PKCS#11 library of the HSM',
      );
    }
    return undefined;
  }
  if (o.hsmPinFile === undefined || (o.hsmToken === undefined && o.hsmSlot === undefined)) {
    throw errors.usage('--hsm-module needs --hsm-pin-file and --hsm-token (or --hsm-slot)', 'see coffre init --help');
  }
  return {
    type: 'pkcs11',
    module: path.resolve(o.hsmModule),
    pinFile: path.resolve(o.hsmPinFile),
    kekLabel: o.kekLabel ?? 'coffre-kek',
    ...(o.hsmToken !== undefined ? { tokenLabel: o.hsmToken } : {}),
    ...(o.hsmSlot !== undefined ? { slot: o.hsmSlot } : {}),
  };
}
