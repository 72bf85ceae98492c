import { describe, expect, it } from 'vitest';
import { formatNumber, parseDecimal, setLanguage, supported, t } from '../../src/console/app/i18n/index.js';

/** The console's i18n module (src/console/app/i18n), outside the browser: plurals, numbers, typed decimals. */
describe('console i18n', () => {
  it('plurals follow each language’s rules (French counts 0 as singular)', () => {
    setLanguage('en');
    expect(t('admin.count', { count: 0 })).toBe('0 users');
    expect(t('admin.count', { count: 1 })).toBe('1 user');
    setLanguage('fr');
    expect(t('admin.count', { count: 0 })).toBe('0 utilisateur');
    expect(t('admin.count', { count: 1 })).toBe('1 utilisateur');
    expect(t('admin.count', { count: 2 })).toBe('2 utilisateurs');
    // interpolation, not concatenation: the variable sits where French puts it
    expect(t('admin.role.title', { username: 'carla', role: 'admin' })).toBe('Donner le rôle admin à carla ?');
    setLanguage('en');
    expect(t('admin.role.title', { username: 'carla', role: 'admin' })).toBe('Make carla admin?');
  });

  it('numbers are written the language’s way', () => {
    setLanguage('fr');
    expect(formatNumber(45.76)).toBe('45,76');
    setLanguage('en');
    expect(formatNumber(45.76)).toBe('45.76');
  });

  it('a typed coordinate accepts a French decimal comma, and refuses what is not a number', () => {
    expect(parseDecimal('45,764')).toBe(45.764);
    expect(parseDecimal(' 4.8357 ')).toBe(4.8357);
    expect(parseDecimal('−12,5')).toBe(-12.5);
    expect(parseDecimal('-0,5')).toBe(-0.5);
    for (const bad of ['', '1,2,3', '1.2.3', '4e5', 'abc', '1 000', ',']) expect(parseDecimal(bad), bad).toBeNaN();
  });

  it('picks the first supported language of a list of tags', () => {
    expect(supported(['de-DE', 'fr-CA', 'en'])).toBe('fr');
    expect(supported(['de', null, undefined])).toBeUndefined();
    expect(supported(['EN-gb'])).toBe('en');
  });
});
