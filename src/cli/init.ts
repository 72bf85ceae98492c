import type { Command } from 'commander';
import { Option } from 'commander';
import { initAppliance } from '../init.js';
import { resolveDataDir } from '../config/index.js';
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
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; port?: number; jurisdiction: string; lat?: number; lon?: number; tz: string; hostname?: string[]; admin?: string; adminEmail?: string; json?: boolean }) => {
        const r = await initAppliance({
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
        const obj: Record<string, unknown> = { url: r.url, caFile: r.caFile, fingerprint: r.fingerprint, dataDir: r.dataDir, applianceId: r.applianceId };
        if (r.enrolUrl) obj.enrolUrl = r.enrolUrl;
        emit(io, opts.json, obj, () =>
          [
            `Appliance created in ${r.dataDir}`,
            `  URL:         ${r.url}`,
            `  certificate: ${r.caFile}`,
            `  SHA-256:     ${r.fingerprint}`,
            ...(r.enrolUrl ? [`  enrol ${opts.admin}: ${r.enrolUrl}`, '  (one-time link, valid 24 h)'] : []),
          ].join('\n'),
        );
      }),
    );
}
