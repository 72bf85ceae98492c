import fs from 'node:fs';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from './support.js';
import { enrolUser, type Enrolled } from './helpers.js';
import { PEPPERED_PREFIX } from '../../src/auth/passwords/hasher.js';
import { PEPPER_KEY } from '../../src/auth/wire.js';
import { acquireLibrary, releaseLibrary } from '../../src/keys/pkcs11/library.js';

/**
 * Password hashes are useless without the HSM (docs/formats.md "Password hashes"): argon2id over
 * HMAC-SHA256(HSM key, password). A hash copied out of the database does not verify with argon2
 * alone; hashes from before the pepper are re-hashed at their owner's next sign-in; with the HSM
 * gone, sign-in answers 503 KEYS_UNAVAILABLE, never a check without the pepper. Over real HTTPS,
 * real SoftHSM2.
 */
let env: IdentityEnv;
beforeAll(async () => {
  env = await openIdentityEnv({ COFFRE_CFG_auth__mfa__requiredRoles: '["admin"]' }, { listen: true });
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const signIn = (username: string, password: string, from = '127.0.6.1') =>
  env
    .https('POST', '/api/v1/auth/login', {
      from,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password, issue: 'token' }),
    })
    .then((r) => {
      const j = JSON.parse(r.body) as { token?: string };
      if (j.token) env.secrets.add(j.token);
      return r;
    });
const stored = async (id: string) =>
  (
    await env.t.appliance.db.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', id)
      .executeTakeFirstOrThrow()
  ).password_hash!;

/** takes the HSM token away for the duration of `fn`, then waits until the provider is up again */
async function withHsmDown(fn: () => Promise<void>): Promise<void> {
  const { tokenDir, module, conf } = env.t.token;
  const moved = `${tokenDir}.away`;
  const lib = acquireLibrary(module, conf);
  try {
    fs.renameSync(tokenDir, moved);
    fs.mkdirSync(tokenDir);
    lib.finalize();
    lib.initialize();
    await fn();
  } finally {
    fs.rmSync(tokenDir, { recursive: true, force: true });
    fs.renameSync(moved, tokenDir);
    lib.finalize();
    lib.initialize();
    releaseLibrary(lib);
  }
  const until = Date.now() + 15_000;
  while (!env.t.appliance.keys.provider.health().up && Date.now() < until) {
    await env.t.appliance.keys.provider.ready().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('password pepper in the HSM', () => {
  let u: Enrolled;
  it('a hash copied out of the database does not verify with argon2 alone and the right password; it does with the HSM', async () => {
    u = await enrolUser(env, 'pia', 'member');
    expect((await signIn('pia', u.password)).statusCode).toBe(200);
    const h = await stored(u.id);
    expect(h.startsWith(`${PEPPERED_PREFIX}$argon2id$`)).toBe(true);
    const phc = h.slice(PEPPERED_PREFIX.length);
    // the offline attacker: the copied hash, the right password, argon2 alone
    expect(await argon2Verify(phc, u.password)).toBe(false);
    expect(await argon2Verify(h, u.password).catch(() => false)).toBe(false);
    // with the HSM's HMAC it is the right hash (not garbage)
    const peppered = await env.t.appliance.keys.provider.mac(PEPPER_KEY, Buffer.from(u.password, 'utf8'), {
      create: false,
    });
    expect(await argon2Verify(phc, peppered.toString('base64'))).toBe(true);
  });

  it('a hash from before the pepper still signs in once, and is re-hashed with the pepper then', async () => {
    const v = await enrolUser(env, 'victoire', 'member');
    // what an upgraded install holds: argon2id over the bare password
    const legacy = await argon2Hash(v.password, {
      algorithm: 2,
      memoryCost: 19_456,
      timeCost: 2,
      parallelism: 1,
      outputLen: 32,
    } as never);
    await env.t.appliance.db.db.updateTable('users').set({ password_hash: legacy }).where('id', '=', v.id).execute();
    expect((await signIn('victoire', 'Wrong-Password-1x')).statusCode).toBe(401);
    expect(await stored(v.id)).toBe(legacy);
    const r = await signIn('victoire', v.password);
    expect(r.statusCode, r.body).toBe(200);
    const now = await stored(v.id);
    expect(now).not.toBe(legacy);
    expect(now.startsWith(PEPPERED_PREFIX)).toBe(true);
    expect(await argon2Verify(now.slice(PEPPERED_PREFIX.length), v.password)).toBe(false);
    expect((await signIn('victoire', v.password)).statusCode).toBe(200);
  });

  it('HSM gone: sign-in answers 503 KEYS_UNAVAILABLE for peppered, legacy and unknown accounts alike (no check without the pepper), and works again once it is back', async () => {
    const w = await enrolUser(env, 'wolfgang', 'member');
    const legacy = await argon2Hash(w.password, {
      algorithm: 2,
      memoryCost: 19_456,
      timeCost: 2,
      parallelism: 1,
      outputLen: 32,
    } as never);
    await env.t.appliance.db.db.updateTable('users').set({ password_hash: legacy }).where('id', '=', w.id).execute();
    await withHsmDown(async () => {
      for (const [name, password] of [
        ['pia', u.password],
        ['wolfgang', w.password],
        ['nobody-here', 'Some-Password-1x'],
      ] as const) {
        const r = await signIn(name, password, '127.0.6.2');
        expect(r.statusCode, `${name}: ${r.body}`).toBe(503);
        expect(JSON.parse(r.body).error.code).toBe('KEYS_UNAVAILABLE');
      }
      expect(await stored(w.id)).toBe(legacy);
    });
    expect((await signIn('pia', u.password, '127.0.6.3')).statusCode).toBe(200);
    expect((await signIn('wolfgang', w.password, '127.0.6.3')).statusCode).toBe(200);
    expect((await stored(w.id)).startsWith(PEPPERED_PREFIX)).toBe(true);
  });

  it('a server fault is no guess: sign-ins answered 503 while the HSM is down leave no count, and the user right after the outage, from the same address, is not asked for a proof', async () => {
    const x = await enrolUser(env, 'xavière', 'member');
    const counts = () =>
      env.t.appliance.db.db
        .selectFrom('login_throttle')
        .select(['key', 'failures'])
        .where('failures', '>', 0)
        .execute();
    const before = await counts();
    // what an attacker sees: 503 for every guess (right or wrong), on one account from one address
    // (past the 3 free failures of the pair) and on 35 names from another (past the address's 30)
    await withHsmDown(async () => {
      for (let i = 0; i < 6; i++) {
        const r = await signIn('xavière', i === 5 ? x.password : `Wrong-Guess-${i}-x`, '127.0.6.4');
        expect(r.statusCode, r.body).toBe(503);
        expect(JSON.parse(r.body).error.code).toBe('KEYS_UNAVAILABLE');
      }
      for (let i = 0; i < 35; i++) {
        const r = await signIn(`guess-${i}`, 'Wrong-Guess-1x', '127.0.6.5');
        expect(r.statusCode, r.body).toBe(503);
      }
    });
    expect(await counts()).toEqual(before);
    // the user, from the address the guesses came from: no proof of work, straight in
    const r = await signIn('xavière', x.password, '127.0.6.4');
    expect(r.statusCode, r.body).toBe(200);
    // the other address is not under suspicion either: a name it never signed in pays no proof
    const y = await enrolUser(env, 'yolande', 'member');
    expect((await signIn('yolande', y.password, '127.0.6.5')).statusCode).toBe(200);
  });
});
