import { describe, expect, it } from 'vitest';
import { registrationsFor } from '../../src/cli/commands.js';

describe('coffre loads only the file of its verb', () => {
  it('a client verb loads its own file; help and unknown verbs load every file', async () => {
    const all = await registrationsFor(['--help']);
    expect(all.length).toBeGreaterThan(8);
    expect((await registrationsFor(['doc', 'get', 'x', '-o', 'y'])).map((r) => r.name)).toEqual(['registerDoc']);
    expect((await registrationsFor(['login', '--username', 'u'])).map((r) => r.name)).toEqual([
      'registerUsers',
      'registerTokens',
      'registerWorkspaces',
    ]);
    expect((await registrationsFor(['restore', '--from', 'x'])).map((r) => r.name)).toEqual(['registerBackup']);
    expect(await registrationsFor(['no-such-verb'])).toHaveLength(all.length);
    expect(await registrationsFor([])).toHaveLength(all.length);
  });
});
