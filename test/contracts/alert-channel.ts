import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertChannel, AlertNotice } from '../../src/monitoring/types.js';

export type SentAlert = AlertNotice;

export interface AlertChannelEnv {
  channel: AlertChannel;
  /** what reached the other end (a real collector, SMTP server, webhook listener…), in order */
  received: () => Promise<SentAlert[]>;
  /** the same kind of channel, pointed at an endpoint that is down (closed port) */
  unreachable: () => AlertChannel;
  cleanup: () => Promise<void>;
}

const wait = async (env: AlertChannelEnv, n: number): Promise<SentAlert[]> => {
  let got: SentAlert[] = [];
  for (let i = 0; i < 400 && got.length < n; i++) {
    got = await env.received();
    if (got.length < n) await new Promise((r) => setTimeout(r, 25));
  }
  return got;
};

/**
 * The one contract every AlertChannel passes: what `send` resolving and rejecting
 * mean (src/monitoring/types.ts), against the real receiving end.
 */
export function alertChannelContract(name: string, make: () => Promise<AlertChannelEnv>): void {
  describe(`AlertChannel contract: ${name}`, { timeout: 60_000 }, () => {
    let env: AlertChannelEnv;
    beforeAll(async () => {
      env = await make();
    });
    afterAll(async () => {
      await env?.cleanup();
    });

    it('has a stable non-empty name', () => {
      expect(env.channel.name).toMatch(/^[a-z][a-z0-9-]*$/);
    });

    it('delivers every alert with its id, kind, severity, message, time, appliance and targets, in order; resolved once send resolves', async () => {
      const sent: SentAlert[] = [1, 2, 3].map((i) => ({
        id: `00000000-0000-4000-8000-00000000000${i}`,
        at: new Date(Date.UTC(2026, 10, 22, 12, 0, i)).toISOString(),
        applianceId: 'appliance-1',
        kind: 'backup.failed',
        severity: (['info', 'warning', 'critical'] as const)[i - 1]!,
        message: `backup ${i} failed: target "x" unreachable ] \\ é`,
        targets: { target: `t${i}` },
      }));
      for (const a of sent) await env.channel.send(a);
      const got = await wait(env, 3);
      expect(got.map((g) => g.id)).toEqual(sent.map((s) => s.id));
      for (const [i, g] of got.entries()) expect(g).toMatchObject(sent[i]!);
    });

    it('carries the notice (raised, reminder, resolved) and the delivery id receivers deduplicate on', async () => {
      const base = {
        id: '00000000-0000-4000-8000-0000000000aa',
        at: new Date(Date.UTC(2026, 10, 22, 13)).toISOString(),
        applianceId: 'appliance-1',
        kind: 'monitoring.disk',
        severity: 'warning' as const,
        message: 'disk 91 % full',
      };
      const before = (await env.received()).length;
      for (const notice of ['raised', 'reminder', 'resolved'] as const)
        await env.channel.send({ ...base, notice, deliveryId: `${base.id}:${notice}` });
      const got = (await wait(env, before + 3)).slice(before);
      expect(got.map((g) => [g.notice, g.deliveryId])).toEqual([
        ['raised', `${base.id}:raised`],
        ['reminder', `${base.id}:reminder`],
        ['resolved', `${base.id}:resolved`],
      ]);
    });

    it('rejects (so the outbox retries) when the other end is down, instead of pretending it delivered', async () => {
      const dead = env.unreachable();
      expect(dead.name).toBe(env.channel.name);
      await expect(
        dead.send({
          id: '00000000-0000-4000-8000-0000000000ff',
          at: new Date().toISOString(),
          applianceId: 'appliance-1',
          kind: 'keys.unavailable',
          severity: 'critical',
          message: 'HSM down',
        }),
      ).rejects.toThrow();
    });
  });
}
