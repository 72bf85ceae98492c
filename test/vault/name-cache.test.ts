import { describe, expect, it } from 'vitest';
import { NameCache } from '../../src/vault/name-cache.js';

describe('name cache', () => {
  it('serves a name only while the row holds the same ciphertext, and stays bounded (LRU)', () => {
    const c = new NameCache(2);
    c.set('a', 'enc-a1', 'Alpha');
    expect(c.get('a', 'enc-a1')).toBe('Alpha');
    expect(c.get('a', 'enc-a2')).toBeUndefined(); // renamed since: never the stale name
    expect(c.get('a', 'enc-a1')).toBeUndefined(); // and the stale entry is gone
    c.set('a', 'e1', 'A');
    c.set('b', 'e2', 'B');
    expect(c.get('a', 'e1')).toBe('A'); // a is now the most recent
    c.set('c', 'e3', 'C');
    expect(c.size).toBe(2);
    expect(c.get('b', 'e2')).toBeUndefined(); // least recently used went first
    expect(c.get('a', 'e1')).toBe('A');
    const off = new NameCache(0);
    off.set('x', 'e', 'X');
    expect(off.get('x', 'e')).toBeUndefined();
  });
});
