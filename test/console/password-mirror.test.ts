import { describe, expect, it } from 'vitest';
import { checkPassword as clientCheck, DEFAULT_RULES } from '../../src/console/app/password.js';
import { checkPassword as serverCheck } from '../../src/auth/passwords/policy.js';
import { Value } from '@sinclair/typebox/value';
import { AuthSection } from '../../src/config/sections/auth.js';

/**
 * The enrolment form's live feedback mirrors the server's length and character-class rules: for
 * each sample, "the form would let it through" equals "the server has no length/class reason".
 * (The blocklist stays server-only: the form shows its answer after submitting.)
 */
const SAMPLES = [
  '',
  'short',
  'Sh0rt!',
  'abcdefghij',
  'ABCDEFGHIJ',
  '0123456789',
  'abcdeFGHIJ',
  'abcde12345',
  'abcdeFGH12',
  'abcde!@#$%',
  'Abcdefghi!',
  'ÉléphantRose7',
  'éléphant-rose',
  'ΑΒΓδεζηθικ',
  'ΑΒΓδεζηθι5',
  '日本語のパスワード日本語',
  '日本語のパスワードA1',
  'x'.repeat(128),
  `Aa1${'x'.repeat(125)}`,
  `Aa1${'x'.repeat(126)}`,
  '😀😀😀😀😀😀😀😀😀A',
  '😀😀😀😀😀😀😀😀a1',
  'Quiet-Harbour-74-lanterns',
  'tab\tSeparated9',
];

describe('password rules: the console mirrors the server', () => {
  const defaults = Value.Default(AuthSection, {}) as { password: { minLength: number; minClasses: number } };

  it('uses the server defaults', () => {
    expect(DEFAULT_RULES.minLength).toBe(defaults.password.minLength);
    expect(DEFAULT_RULES.minClasses).toBe(defaults.password.minClasses);
    expect(DEFAULT_RULES.maxLength).toBe(128);
  });

  it.each(SAMPLES)('agrees on %j', (pw) => {
    const client = clientCheck(pw, DEFAULT_RULES)
      .filter((c) => c.id === 'length' || c.id === 'classes')
      .every((c) => c.met);
    const reasons = serverCheck(pw, {
      minLength: defaults.password.minLength,
      minClasses: defaults.password.minClasses,
      contextWords: [],
    });
    const serverStructural = reasons.filter((r) => /characters|use at least/.test(r));
    expect(client, `server said: ${reasons.join('; ')}`).toBe(serverStructural.length === 0);
  });
});
