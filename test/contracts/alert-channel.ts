import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertChannel } from '../../src/monitoring/types.js';

export type SentAlert = Parameters<AlertChannel['send']>[0];

/**
 * The one contract every AlertChannel passes (STYLE.md #5). `make` returns the channel and a way
 * to read what reached the other end (a real collector, SMTP server, webhook listener…).
 */
export function alertChannelContract(
  name: string,
  make: () => Promise<{ channel: AlertChannel; received: () => Promise<SentAlert[]>; cleanup: () => Promise<void> }>,
): void {
  describe(`AlertChannel contract: ${name}`, () => {
    let env: Awaited<ReturnType<typeof make>>;
    beforeAll(async () => {
      env = await make();
    });
    afterAll(async () => {
      await env?.cleanup();
    });

    it('has a stable non-empty name', () => {
      expect(env.channel.name).toMatch(/^[a-z][a-z0-9-]*$/);
    });

    it('delivers every alert with its id, kind, severity, message, time, appliance and targets, in order', async () => {
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
      let got: SentAlert[] = [];
      for (let i = 0; i < 200 && got.length < 3; i++) {
        got = await env.received();
        if (got.length < 3) await new Promise((r) => setTimeout(r, 25));
      }
      expect(got.map((g) => g.id)).toEqual(sent.map((s) => s.id));
      for (const [i, g] of got.entries()) expect(g).toMatchObject(sent[i]!);
    });
  });
}
