import https from 'node:https';

export interface ClockPeersOptions {
  /** https URLs answered with a `Date` header (any HTTPS server: the TSA, the SMTP relay's web front, an intranet site) */
  peers: readonly string[];
  /** extra CA certificates (PEM) to trust */
  ca?: string;
  timeoutMs?: number;
  /** this machine's clock (what is measured) */
  now?: () => number;
}

/**
 * This machine's clock against HTTPS peers (docs/monitoring.md "Clock drift"): a HEAD request to
 * each peer, its `Date` header (1 s resolution, truncated, so the peer's time is taken as the middle
 * of that second) compared with the middle of the round trip here. The offset is the median over the
 * peers that answered; each estimate is good to ±(0.5 s + half the round trip), which is why the rule's
 * thresholds are whole seconds. A peer whose certificate does not verify does not count.
 */
export async function measureClockOffset(o: ClockPeersOptions): Promise<{ offsetMs: number | null; reached: number }> {
  const now = o.now ?? Date.now;
  const one = (url: string) =>
    new Promise<number>((resolve, reject) => {
      const t0 = now();
      const req = https.request(
        url,
        {
          method: 'HEAD',
          timeout: o.timeoutMs ?? 5000,
          minVersion: 'TLSv1.2',
          ...(o.ca ? { ca: o.ca } : {}),
          agent: false,
        },
        (res) => {
          const t1 = now();
          res.resume();
          const date = Date.parse(String(res.headers.date ?? ''));
          if (!Number.isFinite(date)) return reject(new Error('no Date header'));
          resolve((t0 + t1) / 2 - (date + 500));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  const got = (await Promise.allSettled(o.peers.map(one))).flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (!got.length) return { offsetMs: null, reached: 0 };
  got.sort((a, b) => a - b);
  const mid = Math.floor(got.length / 2);
  return { offsetMs: got.length % 2 ? got[mid]! : (got[mid - 1]! + got[mid]!) / 2, reached: got.length };
}
