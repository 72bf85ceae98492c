/**
 * The KeyProvider contract (src/keys/types.ts), run against every way Coffre reaches an HSM
 * : SoftHSM2 directly, and the same token through p11-kit's remote socket. A provider
 * under test that cannot be started fails here; nothing is skipped. What a path cannot do is
 * declared (`wraps: false` for p11-kit 0.24, whose RPC does not marshal key wrapping), and then the
 * contract checks that it fails closed instead.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyEvent, KeyEvents, KeyProvider } from '../../src/keys/types.js';

export interface ProviderUnderTest {
  provider: KeyProvider & KeyEvents;
  /** whether data keys can be wrapped along this path */
  wraps: boolean;
  /** the deadline the provider was opened with (keys.callTimeoutMs) */
  callTimeoutMs: number;
  /** makes the HSM stop answering without failing (a hung network HSM), and back; when the path allows it */
  hang?: { stop(): Promise<void>; resume(): Promise<void> };
  cleanup(): Promise<void>;
}

const failure = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; httpStatus?: number; message?: string },
  );

/** `canHang`: the path can be made to hang for real (a stopped network server); then `hang` is required. */
export function keyProviderContract(
  name: string,
  o: { canHang: boolean },
  make: () => Promise<ProviderUnderTest>,
): void {
  describe(`KeyProvider contract: ${name}`, { timeout: 60_000 }, () => {
    let t: ProviderUnderTest;
    beforeAll(async () => {
      t = await make();
    });
    afterAll(async () => {
      await t?.provider.close();
      await t?.cleanup();
    });

    it('is up and counts its operations', async () => {
      const h = t.provider.health();
      expect(h).toMatchObject({ up: true });
      const before = h.operations;
      await t.provider.mac('contract', Buffer.from('x'));
      expect(t.provider.health().operations).toBeGreaterThan(before);
      expect(t.provider.health().lastLatencyMs).toBeGreaterThanOrEqual(0);
    });

    it('wraps a data key into a self-describing wrapped key and unwraps it; or, where it cannot, fails closed', async () => {
      const dek = crypto.randomBytes(32);
      if (!t.wraps) {
        const e = await failure(t.provider.wrap(dek));
        expect(e).toMatchObject({ code: 'KEYS_UNAVAILABLE', httpStatus: 503 });
        expect(e!.message).toMatch(/CKR_[A-Z_]+/);
        expect(t.provider.health().up).toBe(true); // a refused mechanism is not a lost HSM
        return;
      }
      const w = await t.provider.wrap(dek);
      expect(w.kekLabel).toBe(`coffre-kek-${w.kekVersion}`);
      expect(['CKM_AES_KEY_WRAP_PAD', 'CKM_AES_GCM']).toContain(w.mechanism);
      expect(w.wrapped.includes(dek)).toBe(false);
      expect((await t.provider.unwrap(w)).equals(dek)).toBe(true);
      // every returned key is the caller's: wiping it changes nothing in the provider
      const back = await t.provider.unwrap(w);
      back.fill(0);
      expect((await t.provider.unwrap(w)).equals(dek)).toBe(true);
    });

    it('refuses altered wrapped keys with KEYS_INTEGRITY, and bad input with USAGE', async () => {
      await expect(t.provider.wrap(crypto.randomBytes(16))).rejects.toMatchObject({ code: 'USAGE' });
      if (!t.wraps) return;
      const w = await t.provider.wrap(crypto.randomBytes(32));
      const bad = { ...w, wrapped: Buffer.from(w.wrapped) };
      bad.wrapped[5]! ^= 0x01;
      await expect(t.provider.unwrap(bad)).rejects.toMatchObject({ code: 'KEYS_INTEGRITY' });
      await expect(t.provider.unwrap({ ...w, kekLabel: 'someone-else-1' })).rejects.toMatchObject({
        code: 'KEYS_INTEGRITY',
      });
      expect(t.provider.health().up).toBe(true);
    });

    it('MACs under a named HSM key and verifies inside the HSM', async () => {
      const data = Buffer.from(`checkpoint ${crypto.randomUUID()}`);
      const m = await t.provider.mac('contract', data);
      expect(m.length).toBe(32);
      expect((await t.provider.mac('contract', data)).equals(m)).toBe(true);
      expect((await t.provider.mac('contract-other', data)).equals(m)).toBe(false);
      expect(await t.provider.verifyMac('contract', data, m)).toBe(true);
      const bad = Buffer.from(m);
      bad[0]! ^= 1;
      expect(await t.provider.verifyMac('contract', data, bad)).toBe(false);
      expect(await t.provider.verifyMac('contract', data, m.subarray(0, 31))).toBe(false);
      await expect(t.provider.mac('Not A Name', data)).rejects.toMatchObject({ code: 'USAGE' });
    });

    it('runs concurrent calls, each answered for itself', async () => {
      const inputs = Array.from({ length: 50 }, (_, i) => Buffer.from(`item ${i}`));
      const macs = await Promise.all(inputs.map((d) => t.provider.mac('contract', d)));
      const again = await Promise.all(inputs.map((d) => t.provider.mac('contract', d)));
      macs.forEach((m, i) => expect(m.equals(again[i]!)).toBe(true));
      expect(new Set(macs.map((m) => m.toString('hex'))).size).toBe(inputs.length);
    });

    // where the HSM can be made to hang for real (no fake module: SoftHSM2 itself never blocks)
    if (o.canHang) {
      it('a hung HSM: 503 within the deadline, at once afterwards, down then up again by itself (events), no restart', async () => {
        expect(t.hang, 'a path declared canHang gives hang()').toBeDefined();
        if (!t.hang) return;
        const events: KeyEvent['kind'][] = [];
        const off = t.provider.on((e) => events.push(e.kind));
        const data = Buffer.from('during the hang');
        const good = await t.provider.mac('contract', data);
        await t.hang.stop();
        try {
          const t0 = performance.now();
          expect(await failure(t.provider.mac('contract', data))).toMatchObject({
            code: 'KEYS_UNAVAILABLE',
            httpStatus: 503,
          });
          expect(performance.now() - t0).toBeLessThan(t.callTimeoutMs + 400);
          const t1 = performance.now();
          expect(await failure(t.provider.verifyMac('contract', data, good))).toMatchObject({
            code: 'KEYS_UNAVAILABLE',
          });
          expect(performance.now() - t1).toBeLessThan(100);
          expect(t.provider.health().up).toBe(false);
          expect(events).toContain('down');
        } finally {
          await t.hang.resume();
        }
        for (const until = Date.now() + 15_000; !t.provider.health().up && Date.now() < until;)
          await new Promise((r) => setTimeout(r, 20));
        expect(t.provider.health().up).toBe(true);
        expect(events.at(-1)).toBe('up');
        expect((await t.provider.mac('contract', data)).equals(good)).toBe(true);
        off();
      });
    }
  });
}
