import fs from 'node:fs';
import path from 'node:path';
import { solveProof } from '../auth/proof.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Appliance } from '../main.js';
import { withAppliance } from './local.js';
import { errors } from '../shared/errors.js';
import { userView } from '../auth/index.js';
import { Links } from '../auth/links.js';
import { action, dataDirOption, emit, jsonOption, localActor, type Io } from './output.js';
import { Client, clientFromEnv, readStdinSecret, stdinLines } from './client.js';
import { processEnv } from '../config/index.js';
import { AppError } from '../shared/errors.js';

const local = <T>(dataDir: string | undefined, fn: (a: Appliance) => Promise<T>): Promise<T> =>
  withAppliance(dataDir, fn);

async function findUser(a: Appliance, name: string) {
  const u = await a.identity.users.byUsername(name);
  if (!u) throw new AppError('NOT_FOUND', `no user named "${name}"`, { exitCode: 2 });
  return u;
}

/** `coffre user …`: invite/list/disable act on the local data dir; enrol is a client command. */
export function registerUsers(program: Command, io: Io): void {
  const user = program.command('user').description('users: invite, enrol, list, disable');
  user
    .command('invite <username>')
    .description('create a user and print their one-time enrolment link (24 h, single use)')
    .requiredOption('--email <email>', 'their e-mail address (encrypted at rest)')
    .requiredOption('--role <role>', 'admin, backup-operator, auditor, member or records-manager')
    .option('--phone <number>', 'mobile number for SMS codes (+33…)')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          username: string,
          opts: { email: string; role: string; phone?: string; dataDir?: string; json?: boolean },
        ) => {
          await local(opts.dataDir, async (a) => {
            const r = await a.identity.accounts.invite(
              { username, email: opts.email, role: opts.role, phone: opts.phone },
              localActor(),
              {},
            );
            emit(
              io,
              opts.json,
              {
                id: r.user.id,
                username: r.user.username,
                role: r.user.role,
                enrolUrl: r.enrolUrl,
                expiresAt: new Date(r.expiresAt).toISOString(),
              },
              () =>
                [
                  `invited ${r.user.username} (${r.user.role})`,
                  `  enrolment link (one use, valid 24 h): ${r.enrolUrl}`,
                ].join('\n'),
            );
          });
        },
      ),
    );
  user
    .command('list')
    .description('list users (no addresses, no secrets)')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        await local(opts.dataDir, async (a) => {
          const users = (await a.identity.users.list()).map(userView);
          emit(
            io,
            opts.json,
            { users },
            () =>
              users
                .map(
                  (u) =>
                    `${u.username.padEnd(24)} ${u.role.padEnd(16)} ${u.state.padEnd(9)} ${u.mfaMethod ?? '-'}  last sign-in ${u.lastLoginAt ?? 'never'}`,
                )
                .join('\n') || 'no users',
          );
        });
      }),
    );
  user
    .command('disable <username>')
    .description('disable a user: ends their sessions and revokes their API tokens')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (username: string, opts: { dataDir?: string; json?: boolean }) => {
        await local(opts.dataDir, async (a) => {
          const u = await findUser(a, username);
          await a.identity.accounts.setState(u.id, 'disabled', localActor(), {});
          emit(io, opts.json, { id: u.id, username: u.username, state: 'disabled' }, `disabled ${u.username}`);
        });
      }),
    );
  user
    .command('reset <username>')
    .description(
      'start a password reset the user completes with their own second factor (the link is e-mailed when a mail server is configured)',
    )
    .option(
      '--lost-factor',
      'the user lost password and second factor: request (first admin) or approve (a second, different admin) an account recovery',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (username: string, opts: { lostFactor?: boolean; dataDir?: string; json?: boolean }) => {
        await local(opts.dataDir, async (a) => {
          const u = await findUser(a, username);
          if (opts.lostFactor) {
            const r = await a.identity.accounts.recover(u.id, localActor(), {});
            if (r.status === 'requested') {
              return emit(
                io,
                opts.json,
                { id: u.id, username: u.username, status: r.status },
                `recovery of ${u.username} requested; a different admin must approve it (coffre user reset ${u.username} --lost-factor)`,
              );
            }
            return emit(
              io,
              opts.json,
              {
                id: u.id,
                username: u.username,
                status: r.status,
                mailed: r.mailed,
                ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
                expiresAt: new Date(r.expiresAt).toISOString(),
              },
              () =>
                [
                  `recovery of ${u.username} approved: the link replaces their second factor`,
                  r.mailed
                    ? '  the link was e-mailed to the user'
                    : `  give this link to the user in person (one use, valid 24 h): ${r.resetUrl}`,
                ].join('\n'),
            );
          }
          const r = await a.identity.accounts.adminReset(u.id, localActor(), {});
          emit(
            io,
            opts.json,
            {
              id: u.id,
              username: u.username,
              mailed: r.mailed,
              ...(r.resetUrl ? { resetUrl: r.resetUrl } : {}),
              expiresAt: new Date(r.expiresAt).toISOString(),
              codeRequired: r.codeRequired,
            },
            () =>
              [
                `password reset started for ${u.username}`,
                r.mailed
                  ? '  the link was e-mailed to the user'
                  : `  give this link to the user (one use, valid 24 h): ${r.resetUrl}`,
                ...(r.codeRequired ? ['  it works only with a code from their own authenticator app'] : []),
              ].join('\n'),
          );
        });
      }),
    );
  user
    .command('role <username> <role>')
    .description(
      "change a user's role (ends their sessions, revokes their API tokens); a role that requires a second factor waits until they set one up",
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (username: string, role: string, opts: { dataDir?: string; json?: boolean }) => {
        await local(opts.dataDir, async (a) => {
          const u = await findUser(a, username);
          // said before the change: the role may not take effect at once
          if (a.identity.accounts.roleWaitsForFactor(u, role) && u.role !== role)
            io.err(
              `note: ${u.username} has no second factor; the role ${role} requires one and takes effect once they set it up (they stay ${u.role} until then)\n`,
            );
          const r = await a.identity.accounts.setRole(u.id, role, localActor(), {});
          emit(
            io,
            opts.json,
            { id: u.id, username: u.username, role: r.role, pendingRole: r.pendingRole },
            r.pendingRole
              ? `${u.username} stays ${r.role} until they set up a second factor; then ${r.pendingRole}`
              : `${u.username} is now ${r.role}`,
          );
        });
      }),
    );
  user
    .command('export <username>')
    .description(
      'everything the appliance holds about a person (profile, memberships, sessions and tokens metadata, second-factor kind, audit records), as a zip of JSON and CSV (audited)',
    )
    .requiredOption('--out <file>', 'the zip to write (refused if it exists)')
    .option('--id', 'the argument is the user id (an erased user has no name left)')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (who: string, opts: { out: string; id?: boolean; dataDir?: string; json?: boolean }) => {
        const out = path.resolve(opts.out);
        if (fs.existsSync(out)) throw errors.usage(`${opts.out} exists; give a new file name`);
        if (!fs.existsSync(path.dirname(out))) throw errors.usage(`the directory of ${opts.out} does not exist`);
        await local(opts.dataDir, async (a) => {
          const id = opts.id ? who : (await findUser(a, who)).id;
          const r = await a.privacy.exportZip(id, localActor(), {});
          // written under a temporary name, fsynced, then renamed: a half-written zip never has the final name
          const partial = `${out}.partial-${process.pid}`;
          const fd = fs.openSync(partial, 'wx', 0o600);
          try {
            fs.writeSync(fd, r.zip);
            fs.fsyncSync(fd);
          } finally {
            fs.closeSync(fd);
          }
          fs.renameSync(partial, out);
          emit(io, opts.json, { id: r.userId, out, bytes: r.zip.length }, `wrote ${out} (${r.zip.length} bytes)`);
        });
      }),
    );
  user
    .command('erase <username>')
    .description(
      'erase a person (GDPR art. 17): e-mail and phone crypto-shredded, name, sessions, tokens and sign-in traces removed; the id stays in the audit trail, which keeps verifying',
    )
    .option('--transfer-to <username>', 'the new owner of the workspaces this person alone owns')
    .option(
      '--trash',
      'send the workspaces this person alone owns to the trash (purged after vault.trashRetentionDays) instead',
    )
    .option('--id', 'the argument is the user id')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          who: string,
          opts: { transferTo?: string; trash?: boolean; id?: boolean; dataDir?: string; json?: boolean },
        ) => {
          if (opts.transferTo && opts.trash) throw errors.usage('give either --transfer-to or --trash, not both');
          await local(opts.dataDir, async (a) => {
            const id = opts.id ? who : (await findUser(a, who)).id;
            const to = opts.transferTo ? await findUser(a, opts.transferTo) : undefined;
            const r = await a.privacy.erase(
              id,
              to ? { transferTo: to.id } : opts.trash ? { trash: true } : undefined,
              localActor(),
              {},
            );
            emit(io, opts.json, { ...r }, () =>
              [
                `erased ${r.userId}: ${r.sessionsEnded} session(s) ended, ${r.tokensRevoked} token(s) revoked`,
                ...(r.workspacesTransferred.length
                  ? [`  ${r.workspacesTransferred.length} workspace(s) now owned by ${opts.transferTo}`]
                  : []),
                ...(r.workspacesTrashed.length
                  ? [
                      `  ${r.workspacesTrashed.length} workspace(s) archived, ${r.documentsTrashed} document(s) sent to the trash`,
                    ]
                  : []),
                r.keyDestroyed
                  ? '  their field key was destroyed'
                  : '  their fields were overwritten (written before per-person keys)',
                ...(r.scrubbed
                  ? []
                  : [
                      '  note: a reader kept the database log busy; the next erasure or a restart finishes scrubbing it',
                    ]),
              ].join('\n'),
            );
          });
        },
      ),
    );
  user
    .command('delete <username>')
    .description(
      'delete an account that never signed in and holds no membership (any other is erased instead: coffre user erase)',
    )
    .option('--id', 'the argument is the user id')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (who: string, opts: { id?: boolean; dataDir?: string; json?: boolean }) => {
        await local(opts.dataDir, async (a) => {
          const id = opts.id ? who : (await findUser(a, who)).id;
          const r = await a.privacy.remove(id, localActor(), {});
          emit(io, opts.json, { ...r, deleted: true }, `deleted ${r.userId}`);
        });
      }),
    );
  user
    .command('enrol <url>')
    .description('complete an enrolment link: you choose your own password (read from stdin)')
    .option('--password-stdin', 'read the password from standard input (required)')
    .addOption(
      new Option('--mfa <method>', 'second factor: totp (default where required), email or sms').choices([
        'totp',
        'email',
        'sms',
      ]),
    )
    .addOption(jsonOption())
    .action(
      action(io, async (url: string, opts: { passwordStdin?: boolean; mfa?: string; json?: boolean }) => {
        if (!opts.passwordStdin)
          throw errors.usage('--password-stdin is required (passwords are never taken on the command line)');
        const password = await readStdinSecret();
        const env = processEnv();
        let origin: string;
        try {
          origin = env.COFFRE_URL ?? new URL(url).origin;
        } catch {
          throw errors.usage('the enrolment link is not a URL');
        }
        const client = clientFromEnv({ url: origin });
        const r = await client.json<{
          username: string;
          totp?: { secret: string; otpauthUrl: string };
          recoveryCodes?: string[];
        }>('POST', '/auth/enrol', {
          token: Links.tokenOf(url),
          password,
          ...(opts.mfa ? { mfa: opts.mfa } : {}),
        });
        emit(
          io,
          opts.json,
          {
            username: r.username,
            ...(r.totp ? { totp: { secret: r.totp.secret, otpauthUrl: r.totp.otpauthUrl } } : {}),
            ...(r.recoveryCodes ? { recoveryCodes: r.recoveryCodes } : {}),
          },
          () =>
            [
              `enrolled ${r.username}`,
              ...(r.totp
                ? [
                    `  add this account to your authenticator app: ${r.totp.otpauthUrl}`,
                    `  (or type the secret: ${r.totp.secret})`,
                  ]
                : []),
              ...(r.recoveryCodes
                ? ['  recovery codes (each works once; keep them offline):', ...r.recoveryCodes.map((c) => `    ${c}`)]
                : []),
            ].join('\n'),
        );
      }),
    );
}

/** `coffre login` and `coffre token …` (client commands). */
export function registerTokens(program: Command, io: Io): void {
  program
    .command('login')
    .description('exchange your credentials (and a second-factor code) for an API token')
    .requiredOption('--username <user>', 'your username')
    .option('--password-stdin', 'read the password (first line) and then the code (second line) from standard input')
    .option('--code <code>', 'second-factor code (TOTP, e-mailed/SMS code or recovery code)')
    .option('--name <name>', 'token name', 'coffre login')
    .option('--scope <perm...>', 'restrict the token to these permissions')
    .option('--ttl-days <n>', 'token lifetime in days')
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (opts: {
          username: string;
          passwordStdin?: boolean;
          code?: string;
          name: string;
          scope?: string[];
          ttlDays?: string;
          json?: boolean;
        }) => {
          if (!opts.passwordStdin)
            throw errors.usage('--password-stdin is required (passwords are never taken on the command line)');
          const stdin = stdinLines();
          try {
            const password = await stdin.next();
            if (!password) throw errors.usage('no password on standard input');
            const client = clientFromEnv();
            const body = {
              username: opts.username,
              password,
              issue: 'token',
              tokenName: opts.name,
              ...(opts.scope ? { scopes: opts.scope } : {}),
              ...(opts.ttlDays ? { ttlDays: Number(opts.ttlDays) } : {}),
            };
            type Answer = {
              status: string;
              challenge?: string;
              method?: string;
              totp?: { secret: string; otpauthUrl: string };
              token?: string;
              tokenInfo?: { id: string; expiresAt: string };
            };
            let r = await withProofOfWork((proof) =>
              client.json<Answer>('POST', '/auth/login', { ...body, ...(proof ? { proof } : {}) }),
            );
            if (r.status === 'mfa_required') {
              const code = r.totp ? await enrolAuthenticator(io, r.totp, stdin) : (opts.code ?? (await stdin.next()));
              if (!code)
                throw new AppError('MFA_REQUIRED', `a second-factor code is needed (${r.method})`, {
                  exitCode: 2,
                  hint: 'give it as the second line of standard input or with --code',
                });
              r = await client.json('POST', '/auth/login/mfa', { challenge: r.challenge, code: code.trim() });
            }
            emit(io, opts.json, { token: r.token, id: r.tokenInfo?.id, expiresAt: r.tokenInfo?.expiresAt }, r.token!);
          } finally {
            stdin.close();
          }
        },
      ),
    );
  const token = program
    .command('token')
    .description('your API tokens (client commands: COFFRE_URL, COFFRE_TOKEN, COFFRE_CA)');
  token
    .command('create <name>')
    .description('create another API token (shown once)')
    .option('--scope <perm...>', 'permissions (default: all of yours)')
    .option('--ttl-days <n>', 'lifetime in days')
    .addOption(jsonOption())
    .action(
      action(io, async (name: string, opts: { scope?: string[]; ttlDays?: string; json?: boolean }) => {
        const c: Client = clientFromEnv({ needToken: true });
        const r = await c.json<{ token: string; tokenInfo: { id: string; expiresAt: string; scopes: string[] } }>(
          'POST',
          '/auth/tokens',
          {
            name,
            ...(opts.scope ? { scopes: opts.scope } : {}),
            ...(opts.ttlDays ? { ttlDays: Number(opts.ttlDays) } : {}),
          },
        );
        emit(
          io,
          opts.json,
          { token: r.token, id: r.tokenInfo.id, expiresAt: r.tokenInfo.expiresAt, scopes: r.tokenInfo.scopes },
          r.token,
        );
      }),
    );
  token
    .command('list')
    .description('list your API tokens (never their values)')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { json?: boolean }) => {
        const r = await clientFromEnv({ needToken: true }).json<{
          tokens: {
            id: string;
            name: string;
            expiresAt: string;
            lastUsedAt: string | null;
            revokedAt: string | null;
          }[];
        }>('GET', '/auth/tokens');
        emit(
          io,
          opts.json,
          r,
          () =>
            r.tokens
              .map(
                (t) =>
                  `${t.id}  ${t.name.padEnd(20)} expires ${t.expiresAt}  last used ${t.lastUsedAt ?? 'never'}${t.revokedAt ? '  REVOKED' : ''}`,
              )
              .join('\n') || 'no tokens',
        );
      }),
    );
  token
    .command('revoke <id>')
    .description('revoke one of your API tokens')
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, opts: { json?: boolean }) => {
        await clientFromEnv({ needToken: true }).json('DELETE', `/auth/tokens/${encodeURIComponent(id)}`);
        emit(io, opts.json, { id, revoked: true }, `revoked ${id}`);
      }),
    );
}

/** `coffre workspace create NAME`, `list`, `quota ID BYTES` (client commands). */
export function registerWorkspaces(program: Command, io: Io): void {
  const ws = program.command('workspace').description('workspaces (client commands)');
  ws.command('create <name>')
    .description('create a workspace; you become its owner')
    .option('--quota-bytes <n>', 'quota in bytes')
    .addOption(jsonOption())
    .action(
      action(io, async (name: string, opts: { quotaBytes?: string; json?: boolean }) => {
        const r = await clientFromEnv({ needToken: true }).json<{ id: string }>('POST', '/workspaces', {
          name,
          ...(opts.quotaBytes ? { quotaBytes: Number(opts.quotaBytes) } : {}),
        });
        emit(io, opts.json, { id: r.id }, r.id);
      }),
    );
  ws.command('quota <id> <bytes>')
    .description("admin: set a workspace's quota in bytes (0 unlimited, `default` back to vault.defaultQuotaBytes)")
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, bytes: string, opts: { json?: boolean }) => {
        const quotaBytes = bytes === 'default' ? null : /^\d{1,16}$/.test(bytes) ? Number(bytes) : undefined;
        if (quotaBytes === undefined || (quotaBytes !== null && !Number.isSafeInteger(quotaBytes)))
          throw errors.usage('the quota is a number of bytes (0: unlimited) or `default`');
        const r = await clientFromEnv({ needToken: true }).json<{ id: string; quotaBytes: number | null }>(
          'PATCH',
          `/workspaces/${encodeURIComponent(id)}/quota`,
          { quotaBytes: quotaBytes ?? 'default' },
        );
        emit(
          io,
          opts.json,
          r,
          `${r.id}  quota ${r.quotaBytes === null ? 'default' : r.quotaBytes === 0 ? 'unlimited' : `${r.quotaBytes} bytes`}`,
        );
      }),
    );
  ws.command('list')
    .description('the workspaces you are a member of')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { json?: boolean }) => {
        const r = await clientFromEnv({ needToken: true }).json<{
          workspaces: { id: string; name: string; role: string }[];
        }>('GET', '/workspaces');
        emit(
          io,
          opts.json,
          r,
          () => r.workspaces.map((w) => `${w.id}  ${w.role.padEnd(7)} ${w.name}`).join('\n') || 'no workspaces',
        );
      }),
    );
}

/**
 * Sign-in friction: when the appliance answers 429 PROOF_REQUIRED (the account or address is
 * under attack), solve its proof of work (a few seconds at most) and send the sign-in again.
 */
/**
 * No mail server and no second factor yet: the appliance hands an authenticator to add now (its
 * secret, on stderr: stdout keeps the token), and only a code from it completes the sign-in. The
 * code is the next line of standard input, read after the secret is shown (`--code` cannot know it).
 */
async function enrolAuthenticator(
  io: Io,
  totp: { secret: string; otpauthUrl: string },
  stdin: ReturnType<typeof stdinLines>,
): Promise<string> {
  io.err(
    [
      'your role requires a second factor and this appliance cannot send codes: add this account to your authenticator app now',
      `  ${totp.otpauthUrl}`,
      `  (or type the secret: ${totp.secret}; time-based, 6 digits, every 30 seconds)`,
      'then enter the code it shows (it becomes your second factor; you have a few minutes):',
    ].join('\n'),
  );
  const code = await stdin.next();
  if (!code?.trim())
    throw new AppError('MFA_ENROL_REQUIRED', 'no code from the new authenticator: nothing was set up', {
      exitCode: 2,
      hint: 'run coffre login again and type the code from your authenticator app when asked',
    });
  return code;
}

async function withProofOfWork<T>(send: (proof?: { challenge: string; nonce: string }) => Promise<T>): Promise<T> {
  let proof: { challenge: string; nonce: string } | undefined;
  for (let i = 0; ; i++) {
    try {
      return await send(proof);
    } catch (e) {
      const p =
        e instanceof AppError && e.code === 'PROOF_REQUIRED'
          ? (e.details as { proof?: { challenge: string; bits: number } } | undefined)?.proof
          : undefined;
      if (!p || i >= 3) throw e;
      process.stderr.write(
        `the appliance asks for a proof of work (${p.bits} bits; this account or address is under attack)…\n`,
      );
      proof = { challenge: p.challenge, nonce: solveProof(p.challenge, p.bits) };
    }
  }
}
