import type { Command } from 'commander';
import type { Io } from './output.js';

export type Registration = (program: Command, io: Io) => void;

/**
 * Every verb of `coffre`, one loader per file (one line per module). A run loads only the file of
 * its verb: a client verb (`doc get`, `login`) does not load the server, whose modules cost most
 * of a second to import; help, and a verb not listed here, load them all (in this order).
 */
const files: { verbs: string[]; load: () => Promise<Registration[]> }[] = [
  { verbs: ['init'], load: async () => [(await import('./init.js')).registerInit] },
  { verbs: ['serve'], load: async () => [(await import('./serve.js')).registerServe] },
  { verbs: ['db'], load: async () => [(await import('./db.js')).registerDb] },
  { verbs: ['audit'], load: async () => [(await import('./audit.js')).registerAudit] },
  { verbs: ['doc'], load: async () => [(await import('./doc.js')).registerDoc] },
  { verbs: ['vault'], load: async () => [(await import('./vault.js')).registerVault] },
  {
    verbs: ['user', 'login', 'token', 'workspace'],
    load: async () => {
      const m = await import('./users.js');
      return [m.registerUsers, m.registerTokens, m.registerWorkspaces];
    },
  },
  { verbs: ['keys'], load: async () => [(await import('./keys.js')).registerKeys] },
  { verbs: ['backup', 'restore'], load: async () => [(await import('./backup.js')).registerBackup] },
  { verbs: ['incident'], load: async () => [(await import('./incident.js')).registerIncident] },
  { verbs: ['gdpr'], load: async () => [(await import('./gdpr.js')).registerGdpr] },
  { verbs: ['export', 'import'], load: async () => [(await import('./transfer.js')).registerTransfer] },
];

/** The registrations a command line needs: its verb's file (the first argument not an option), or every file. */
export async function registrationsFor(args: string[]): Promise<Registration[]> {
  const verb = args.find((a) => !a.startsWith('-'));
  const one = files.find((f) => verb !== undefined && f.verbs.includes(verb));
  return (await Promise.all((one ? [one] : files).map((f) => f.load()))).flat();
}
