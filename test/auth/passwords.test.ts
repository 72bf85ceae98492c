import { describe, expect, it } from 'vitest';
import { parseOptions } from '@node-rs/argon2';
import { checkPassword, MAX_PASSWORD_LENGTH } from '../../src/auth/passwords/policy.js';
import { commonPasswords } from '../../src/auth/passwords/blocklist.js';
import crypto from 'node:crypto';
import { PasswordHasher, PEPPERED_PREFIX } from '../../src/auth/passwords/hasher.js';
import { normaliseUsername } from '../../src/auth/username.js';
import { Semaphore } from '../../src/shared/semaphore.js';

const policy = { minLength: 10, minClasses: 3, contextWords: [] as string[] };
/** the hasher alone; the HSM's own pepper is tested over HTTPS in test/auth/pepper.test.ts */
const pepperKey = crypto.randomBytes(32);
const pepper = async (p: string) => crypto.createHmac('sha256', pepperKey).update(p, 'utf8').digest();

describe('passwords', () => {
  it('P1: usernames compare case-insensitively after NFKC', () => {
    expect(normaliseUsername('Alice').key).toBe(normaliseUsername('ALICE').key);
    // fullwidth letters fold to ASCII under NFKC
    expect(normaliseUsername('ａｌｉｃｅ').key).toBe('alice');
    expect(normaliseUsername('ﬁona').key).toBe('fiona');
    expect(() => normaliseUsername('a b')).toThrow(/invalid username/);
    expect(() => normaliseUsername('x')).toThrow(/invalid username/);
  });

  it('P2: 10 to 128 code points, counted as code points', () => {
    expect(checkPassword('Zx9#qTr2', policy)).toContain('at least 10 characters');
    expect(checkPassword('Zx9#qTr2vW', policy)).toEqual([]);
    // 10 emoji are 10 code points (20 UTF-16 units): still "too short" for a policy of 11
    expect(checkPassword('😀'.repeat(9) + 'aB3', { ...policy, minLength: 12 })).toEqual([]);
    const long = 'Aa1!' + 'x'.repeat(MAX_PASSWORD_LENGTH - 4);
    expect(checkPassword(long, policy)).toEqual([]);
    expect(checkPassword(long + 'y', policy)).toContain(`at most ${MAX_PASSWORD_LENGTH} characters`);
    // the minimum may be raised in config
    expect(checkPassword('Zx9#qTr2vW', { ...policy, minLength: 14 })).toContain('at least 14 characters');
  });

  it('P3: 3 of 4 classes AND the blocklist (deviation from ASVS 5.0 6.2.5 documented in docs/identity.md)', () => {
    expect(checkPassword('alllowercaseletters', policy).join()).toMatch(/at least 3 of/);
    expect(checkPassword('lowercase and digits 123', policy)).toEqual([]); // lower, digit, other (space)
    for (const p of ['Password1!', 'Welcome2026!', 'Coffre2026!', 'P@ssw0rd2026!', 'Qwerty12345!']) {
      expect(checkPassword(p, policy).length, p).toBeGreaterThan(0);
    }
    expect(checkPassword('Marguerite1!', policy, ['marguerite'])).toContain(
      'contains a word tied to this account, organisation or product',
    );
    expect(checkPassword('Acme-Corp-2026!', { ...policy, contextWords: ['acme'] }).length).toBeGreaterThan(0);
    expect(checkPassword('Tangerine-Ladder-42', policy)).toEqual([]);
  });

  it('P4: the blocklist ships offline with at least 100,000 common passwords', () => {
    const list = commonPasswords();
    expect(list.size).toBeGreaterThanOrEqual(100_000);
    for (const w of ['123456', 'password', 'iloveyou', 'welcome', 'qwertyuiop']) expect(list.has(w)).toBe(true);
    for (const w of ['tangerine-ladder-42', 'marguerite-quatre-vingt', '']) expect(list.has(w)).toBe(false);
  });

  it('P5: argon2id, m ≥ 19 MiB, t ≥ 2, p = 1, salted; parameters kept per hash and upgraded', async () => {
    const h = new PasswordHasher({ memoryKiB: 19_456, timeCost: 2, parallelism: 1, maxConcurrent: 2 }, pepper);
    const a = await h.hash('Same-Password-42');
    const b = await h.hash('Same-Password-42');
    expect(a).not.toBe(b);
    expect(a.startsWith(`${PEPPERED_PREFIX}$argon2id$v=19$m=19456,t=2,p=1$`)).toBe(true);
    const o = parseOptions(a.slice(PEPPERED_PREFIX.length));
    expect(o.memoryCost).toBeGreaterThanOrEqual(19_456);
    expect(o.timeCost).toBeGreaterThanOrEqual(2);
    expect(o.parallelism).toBe(1);
    expect(await h.verify(a, 'Same-Password-42')).toBe(true);
    expect(await h.verify(a, 'Same-Password-43')).toBe(false);
    // no truncation: the password plus one character is a different password
    const long = 'Aa1!' + 'z'.repeat(124);
    const hl = await h.hash(long);
    expect(await h.verify(hl, long + 'z')).toBe(false);
    expect(h.needsRehash(a)).toBe(false);
    const stronger = new PasswordHasher({ memoryKiB: 19_456, timeCost: 3, parallelism: 1, maxConcurrent: 1 }, pepper);
    expect(stronger.needsRehash(a)).toBe(true);
  });

  it('bounds concurrent hashes with a semaphore', async () => {
    const s = new Semaphore(2);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        s.run(async () => {
          peak = Math.max(peak, ++running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(s.running).toBe(0);
  });

  it('known clients have a lane of their own: a priority task goes before every ordinary waiter', async () => {
    const s = new Semaphore(1);
    const order: string[] = [];
    const task = (name: string) => async () => {
      order.push(name);
      await new Promise((r) => setTimeout(r, 2));
    };
    const all = [
      s.run(task('first')),
      ...Array.from({ length: 5 }, (_, i) => s.run(task(`guess-${i}`))),
      s.run(task('known'), true),
    ];
    expect(s.pending).toBe(6);
    await Promise.all(all);
    expect(order.slice(0, 2)).toEqual(['first', 'known']);
  });

  it('a reserved slot: ordinary tasks never take the last one, so a known client never waits for a guesser', async () => {
    const s = new Semaphore(2, 1);
    let ordinary = 0;
    let peakOrdinary = 0;
    const slow = () =>
      s.run(async () => {
        peakOrdinary = Math.max(peakOrdinary, ++ordinary);
        await new Promise((r) => setTimeout(r, 20));
        ordinary--;
      });
    const guesses = Array.from({ length: 6 }, slow);
    await new Promise((r) => setTimeout(r, 5));
    expect(s.running).toBe(1);
    // the known client starts at once, though six guesses are queued or running
    let startedAfter = -1;
    const t0 = Date.now();
    await s.run(async () => {
      startedAfter = Date.now() - t0;
    }, true);
    expect(startedAfter).toBeLessThan(10);
    await Promise.all(guesses);
    expect(peakOrdinary).toBe(1);
    expect(s.running).toBe(0);
    expect(() => new Semaphore(1, 1)).toThrow();
  });
});
