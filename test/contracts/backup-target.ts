import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupTarget } from '../../src/backup/targets/types.js';

/**
 * The one contract every BackupTarget passes, wrappers included. `make` returns a
 * fresh, empty target. What it checks is the doc comment of src/backup/targets/types.ts.
 */
export function backupTargetContract(
  name: string,
  make: () => Promise<{ target: BackupTarget; cleanup: () => Promise<void> }>,
): void {
  describe(`BackupTarget contract: ${name}`, () => {
    let t: BackupTarget;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ target: t, cleanup } = await make());
    });
    afterAll(async () => {
      await t?.close();
      await cleanup?.();
    });

    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };

    it('puts and gets bytes back intact, from buffers and streams, empty to multi-megabyte', async () => {
      const big = crypto.randomBytes(5 * 1024 * 1024 + 17);
      await t.put('rt/empty', Buffer.alloc(0));
      await t.put('rt/one', Buffer.from('x'));
      expect(await t.put('rt/big', big)).toEqual({ size: big.length });
      const streamed = crypto.randomBytes(3 * 1024 * 1024 + 5);
      const chunks = Array.from({ length: 50 }, (_, i) =>
        streamed.subarray(i * 65_000, Math.min((i + 1) * 65_000, streamed.length)),
      ).filter((c) => c.length);
      expect(await t.put('rt/streamed', Readable.from(chunks))).toEqual({ size: streamed.length });
      expect((await buffer(await t.get('rt/empty'))).length).toBe(0);
      expect((await buffer(await t.get('rt/one'))).toString()).toBe('x');
      expect((await buffer(await t.get('rt/big'))).equals(big)).toBe(true);
      expect((await buffer(await t.get('rt/streamed'))).equals(streamed)).toBe(true);
    });

    it('never overwrites: a second put of the same path fails TARGET_EXISTS and the first stays', async () => {
      await t.put('ow/a', Buffer.from('first'));
      expect(await code(t.put('ow/a', Buffer.from('second')))).toBe('TARGET_EXISTS');
      expect((await buffer(await t.get('ow/a'))).toString()).toBe('first');
      expect((await t.list('ow')).map((e) => e.name)).toEqual(['a']);
    });

    it('lists entries with type and size; an absent directory lists empty', async () => {
      await t.put('ls/d/x', Buffer.alloc(10));
      await t.put('ls/f', Buffer.alloc(3));
      expect(await t.list('ls')).toEqual([
        { name: 'd', type: 'dir', size: 0 },
        { name: 'f', type: 'file', size: 3 },
      ]);
      expect(await t.list('nope')).toEqual([]);
      expect((await t.list('')).map((e) => e.name)).toContain('ls');
    });

    it('refuses paths that could escape the target, before touching it', async () => {
      for (const p of ['../x', '/abs', 'a//b', '', 'a/./b', 'a/../../b', 'sp ace', 'a/']) {
        expect(await code(t.put(p, Buffer.from('x')))).toBe('TARGET_BAD_PATH');
      }
      expect(await code(t.get('../etc/passwd'))).toBe('TARGET_BAD_PATH');
      expect(await code(t.remove('..'))).toBe('TARGET_BAD_PATH');
    });

    it('renames whole directories, never onto an existing name', async () => {
      await t.put('.tmp-r1/p0', Buffer.from('zero'));
      await t.put('.tmp-r1/p1', Buffer.from('one'));
      await t.rename('.tmp-r1', 'r1');
      expect((await t.list('r1')).map((e) => e.name)).toEqual(['p0', 'p1']);
      expect(await t.list('.tmp-r1')).toEqual([]);
      await t.put('.tmp-r2/p0', Buffer.from('other'));
      expect(await code(t.rename('.tmp-r2', 'r1'))).toBe('TARGET_EXISTS');
      expect((await buffer(await t.get('r1/p0'))).toString()).toBe('zero');
      await t.put('rf/a', Buffer.from('a'));
      await t.put('rf/b', Buffer.from('b'));
      expect(await code(t.rename('rf/a', 'rf/b'))).toBe('TARGET_EXISTS');
      await t.rename('rf/a', 'rf/c');
      expect((await t.list('rf')).map((e) => e.name)).toEqual(['b', 'c']);
    });

    it('removes files and directory trees; removing what is absent is not an error', async () => {
      await t.put('rm/a/b/c', Buffer.from('c'));
      await t.put('rm/f', Buffer.from('f'));
      await t.remove('rm/f');
      await t.remove('rm/a');
      expect(await t.list('rm')).toEqual([]);
      await t.remove('rm/never-was');
      await t.remove('rm');
      expect((await t.list('')).map((e) => e.name)).not.toContain('rm');
    });

    it('get of an absent file fails TARGET_NOT_FOUND', async () => {
      expect(await code(t.get('absent/file'))).toBe('TARGET_NOT_FOUND');
    });

    it('a put whose source fails leaves nothing under the name, not even a temporary file', async () => {
      const failing = Readable.from(
        (async function* () {
          yield crypto.randomBytes(700_000);
          throw new Error('source broke');
        })(),
      );
      await expect(t.put('pf/x', failing)).rejects.toThrow();
      expect(await t.list('pf')).toEqual([]);
      expect(await code(t.get('pf/x'))).toBe('TARGET_NOT_FOUND');
    });

    it('takes concurrent puts of distinct files', async () => {
      const bufs = Array.from({ length: 6 }, () => crypto.randomBytes(600_000));
      await Promise.all(bufs.map((b, i) => t.put(`cc/f${i}`, b)));
      for (let i = 0; i < bufs.length; i++) expect((await buffer(await t.get(`cc/f${i}`))).equals(bufs[i]!)).toBe(true);
    });

    it('reports free and total space', async () => {
      const s = await t.space();
      expect(s).not.toBeNull();
      expect(s!.free).toBeGreaterThan(0);
      expect(s!.total).toBeGreaterThanOrEqual(s!.free);
    });
  });
}
