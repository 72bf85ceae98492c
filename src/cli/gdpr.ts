import { Option, type Command } from 'commander';
import { loadConfig, processEnv, resolveDataDir } from '../config/index.js';
import { ropaHtml } from '../privacy/index.js';
import { action, dataDirOption, type Io } from './output.js';

/** `coffre gdpr ropa`: the record of processing activities, as printable HTML on stdout. */
export function registerGdpr(program: Command, io: Io): void {
  const gdpr = program.command('gdpr').description('personal data (docs/gdpr.md)');
  gdpr
    .command('ropa')
    .description(
      'print the record of processing activities (GDPR art. 30), generated from the configuration, as printable HTML',
    )
    .addOption(dataDirOption())
    .addOption(new Option('--lang <lang>', 'language of the page').choices(['en', 'fr']).default('en'))
    .action(
      action(io, async (opts: { dataDir?: string; lang: 'en' | 'fr' }) => {
        const config = loadConfig(resolveDataDir(opts.dataDir), processEnv());
        io.out(ropaHtml(config, Date.now(), opts.lang));
      }),
    );
}
