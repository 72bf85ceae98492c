import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initAppliance } from '../src/init.js';
import { openAppliance, buildApp } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { solveProof } from '../src/auth/proof.js';

/**
 * `npm run bench -- auth`: sign-in cost at the configured argon2id parameters, and isolation of
 * other users under a password-guessing storm, on a real appliance (SoftHSM2, SQLite with
 * synchronous=FULL, the audit trail). Requests go through the whole Fastify pipeline with
 * `inject` (no TLS: client-side TLS in the same process would cost more than the server).
 * - login p50/p99: sequential successful sign-ins (argon2id verify + session + audit);
 * - idle p50/p99 of an authenticated request (GET /auth/me with an API token);
 * - the same while 100 concurrent clients send wrong passwords for unknown and known users as
 *   fast as the server answers (per-address limits lifted, as from a botnet) and 20 more flood
 *   bad bearer tokens; target: p99 within 2× of idle. Argon2 runs in the thread pool behind a
 *   semaphore (auth.argon2.maxConcurrent).
 * - the real user's sign-in while 35 addresses guess their password (default thresholds, the same
 *   appliance reopened): from an address they signed in from before (target: within 2× of their
 *   idle sign-in) and from fresh addresses, proof of work included (must stay under a minute).
 */
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100;
};

export default async function bench(): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-auth-'));
  try {
    await initAppliance({
      dataDir: dir,
      jurisdiction: 'FR',
      timeZone: 'UTC',
      hostnames: ['localhost'],
      actor: 'local:bench',
    });
    // one SoftHSM2 configuration per process: both parts open the same appliance, one after the other
    const first = await storm(dir);
    const second = await victimDuringLockoutAttack(dir).catch((e: unknown) => ({ victim_error: (e as Error).message }));
    return { ...first, ...second };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function storm(dir: string): Promise<Record<string, unknown>> {
  // the bench measures the password step: members sign in with it alone here (second factor relaxed)
  const env = {
    ...process.env,
    COFFRE_CFG_auth__throttle__addressFailures: '1000000',
    COFFRE_CFG_auth__throttle__freeFailures: '1000000',
    COFFRE_CFG_auth__mfa__requiredRoles: '[]',
  };
  const a = await openAppliance({ dataDir: dir, env, log: createLogger({ level: 'silent', destination: 'stderr' }) });
  const app = await buildApp(a, false);
  await app.ready();
  try {
    const password = 'Bench-Orchard-Pass-42';
    const mk = async (username: string) => {
      const inv = await a.identity.accounts.invite(
        { username, email: `${username}@bench.test`, role: 'member' },
        'local:bench',
        {},
      );
      await a.identity.accounts.enrol({ token: inv.enrolUrl, password }, {});
    };
    await mk('bench-user');
    await mk('other-user');
    const tok = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'other-user', password, issue: 'token' },
    });
    const bearer = { authorization: `Bearer ${tok.json().token as string}` };
    const time = async (fn: () => Promise<{ statusCode: number }>, want: number) => {
      const t0 = performance.now();
      const r = await fn();
      if (r.statusCode !== want) throw new Error(`unexpected ${r.statusCode}: ${(r as { body?: string }).body ?? ''}`);
      return performance.now() - t0;
    };
    const login = () =>
      app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'bench-user', password } });
    // several client addresses, so the global per-address rate limit (1200/min) stays out of the way
    let n = 0;
    const me = () =>
      app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer, remoteAddress: `10.77.${n++ % 50}.1` });
    for (let i = 0; i < 5; i++) await time(login, 200); // warm-up
    const logins: number[] = [];
    for (let i = 0; i < 40; i++) logins.push(await time(login, 200));
    for (let i = 0; i < 50; i++) await time(me, 200);
    const idle: number[] = [];
    for (let i = 0; i < 1000; i++) idle.push(await time(me, 200));

    let stop = false;
    let attempts = 0;
    const attackers = Array.from({ length: 100 }, async (_, k) => {
      while (!stop) {
        if (attempts > 100_000) break;
        const user = k % 2 === 0 ? `ghost-${k}-${attempts}` : 'bench-user';
        await app
          .inject({
            method: 'POST',
            url: '/api/v1/auth/login',
            remoteAddress: `10.66.${k}.${attempts % 250}`,
            payload: { username: user, password: `Wrong-Guess-${attempts}` },
          })
          .catch(() => undefined);
        attempts++;
      }
    });
    // and a flood of bad bearer tokens from 20 more addresses, 2000/s (cut per address before any database work)
    let floods = 0;
    let floodCut = 0;
    const flooders = Array.from({ length: 20 }, async (_, k) => {
      while (!stop) {
        const r = await app
          .inject({
            method: 'GET',
            url: '/api/v1/auth/me',
            headers: { authorization: `Bearer cft_${'f'.repeat(40)}${floods}` },
            remoteAddress: `10.55.${k}.1`,
          })
          .catch(() => undefined);
        floods++;
        if (r?.statusCode === 429) floodCut++;
        // 100 requests/s per flooder (2000/s in all): unpaced, `inject` itself retains ~11 KB per
        // request that GC does not reclaim (real HTTP requests do not) and the bench runs out of heap
        await new Promise((res) => setTimeout(res, 10));
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    const underAttack: number[] = [];
    const t0 = performance.now();
    let before = 0;
    let perSecond = 0;
    try {
      for (let i = 0; i < 1000; i++) underAttack.push(await time(me, 200));
      before = attempts;
      await new Promise((r) => setTimeout(r, 1000));
      perSecond = attempts - before;
    } finally {
      stop = true;
      await Promise.all([...attackers, ...flooders]);
    }
    const attackMs = performance.now() - t0;
    const p99idle = pct(idle, 99);
    const p99attack = pct(underAttack, 99);
    return {
      argon2: {
        memoryKiB: a.config.auth.argon2.memoryKiB,
        timeCost: a.config.auth.argon2.timeCost,
        parallelism: 1,
        maxConcurrent: a.config.auth.argon2.maxConcurrent,
      },
      login_ms: { p50: pct(logins, 50), p99: pct(logins, 99), n: logins.length },
      authenticated_idle_ms: { p50: pct(idle, 50), p99: p99idle },
      bad_token_requests: { sent: floods, cut_before_database: floodCut },
      authenticated_under_100_guessers_and_token_flood_ms: {
        p50: pct(underAttack, 50),
        p99: p99attack,
        ratio_p99: Math.round((p99attack / p99idle) * 100) / 100,
        target_ratio: 2,
        within_target: p99attack <= 2 * p99idle,
      },
      guesses_per_second: perSecond,
      measured_for_ms: Math.round(attackMs),
    };
  } finally {
    await app.close();
    await a.close();
  }
}

/**
 * The lockout attack of the issue, measured: 35 addresses keep guessing one user's password (they
 * do not solve the proofs of work they are asked for once the account is under attack: a guess
 * then costs the server reads, then nothing but the answer, docs/brute-force.md); meanwhile the
 * real user signs in.
 */
async function victimDuringLockoutAttack(dir: string): Promise<Record<string, unknown>> {
  const a = await openAppliance({
    dataDir: dir,
    env: { ...process.env, COFFRE_CFG_auth__mfa__requiredRoles: '[]' },
    log: createLogger({ level: 'silent', destination: 'stderr' }),
  });
  const app = await buildApp(a, false);
  await app.ready();
  try {
    const password = 'Bench-Meadow-Pass-42';
    const inv = await a.identity.accounts.invite(
      { username: 'vera', email: 'vera@bench.test', role: 'member' },
      'local:bench',
      {},
    );
    await a.identity.accounts.enrol({ token: inv.enrolUrl, password }, {});
    let fresh = 0;
    /** one sign-in as the console does it: on 429 PROOF_REQUIRED, solve and send again */
    const signIn = async (ip: string): Promise<{ ms: number; bits: number }> => {
      const t0 = performance.now();
      let r = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        remoteAddress: ip,
        payload: { username: 'vera', password },
      });
      let bits = 0;
      if (r.statusCode === 429 && r.json().error.code === 'PROOF_REQUIRED') {
        const p = r.json().error.details.proof as { challenge: string; bits: number };
        bits = p.bits;
        r = await app.inject({
          method: 'POST',
          url: '/api/v1/auth/login',
          remoteAddress: ip,
          payload: {
            username: 'vera',
            password,
            proof: { challenge: p.challenge, nonce: solveProof(p.challenge, p.bits) },
          },
        });
      }
      if (r.statusCode !== 200) throw new Error(`victim refused: ${r.statusCode} ${r.body}`);
      return { ms: performance.now() - t0, bits };
    };
    const known = '10.1.1.1';
    for (let i = 0; i < 5; i++) await signIn(known);
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) idle.push((await signIn(known)).ms);

    let stop = false;
    let guesses = 0;
    let evaluated = 0;
    const attackers = Array.from({ length: 35 }, async (_, k) => {
      while (!stop) {
        const r = await app
          .inject({
            method: 'POST',
            url: '/api/v1/auth/login',
            remoteAddress: `10.35.${k}.1`,
            payload: { username: 'vera', password: `Wrong-Guess-${k}-${guesses}` },
          })
          .catch(() => undefined);
        guesses++;
        if (r?.statusCode === 401) evaluated++;
      }
    });
    try {
      // until the account is under attack (100 failures within the hour)
      const until = performance.now() + 120_000;
      while (evaluated < a.config.auth.throttle.accountFailuresPerHour) {
        if (performance.now() > until)
          throw new Error(`the attack did not reach the account threshold (${evaluated} evaluated)`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const knownMs: number[] = [];
      const freshMs: number[] = [];
      let bits = 0;
      for (let i = 0; i < 20; i++) knownMs.push((await signIn(known)).ms);
      for (let i = 0; i < 10; i++) {
        const r = await signIn(`10.2.${fresh++}.1`);
        freshMs.push(r.ms);
        bits = Math.max(bits, r.bits);
      }
      const p50idle = pct(idle, 50);
      return {
        victim_idle_signin_ms: { p50: p50idle, p99: pct(idle, 99), n: idle.length },
        victim_signin_during_35_address_attack_known_address_ms: {
          p50: pct(knownMs, 50),
          p99: pct(knownMs, 99),
          ratio_p50: Math.round((pct(knownMs, 50) / p50idle) * 100) / 100,
          target_ratio: 2,
          within_target: pct(knownMs, 50) <= 2 * p50idle,
        },
        victim_signin_during_35_address_attack_fresh_address_ms: {
          p50: pct(freshMs, 50),
          max: Math.round(Math.max(...freshMs)),
          proof_bits: bits,
          ratio_p50: Math.round((pct(freshMs, 50) / p50idle) * 100) / 100,
          target_ms: 60_000,
          within_target: Math.max(...freshMs) < 60_000,
        },
        attack_guesses: guesses,
        attack_guesses_evaluated: evaluated,
      };
    } finally {
      stop = true;
      await Promise.all(attackers);
    }
  } finally {
    await app.close();
    await a.close();
  }
}
