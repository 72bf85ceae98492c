import net from 'node:net';

/**
 * The throttling key of a client address (B2): IPv4 as is (/32), IPv6 cut to its /64 (one
 * subscriber usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
 * `req.ip` already honours X-Forwarded-For only from configured trusted proxies (B4).
 */
export function addressPrefix(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (net.isIPv4(ip)) return ip;
  if (!net.isIPv6(ip)) return 'unknown';
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return (
    groups
      .slice(0, 4)
      .map((g) => parseInt(g || '0', 16).toString(16))
      .join(':') + '::/64'
  );
}
