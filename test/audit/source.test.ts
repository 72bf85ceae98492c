import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { auditSource } from '../../src/audit/index.js';

describe('auditSource', () => {
  it('takes address, user agent and request id from the request, honouring trusted proxies only', async () => {
    for (const [trustProxy, expected] of [
      [false, '127.0.0.1'],
      [['127.0.0.1'], '203.0.113.9'],
    ] as const) {
      const app = Fastify({ trustProxy: trustProxy as never, genReqId: () => 'req-123' });
      app.get('/x', async (req) => auditSource(req));
      const res = await app.inject({
        url: '/x?token=secret',
        headers: { 'user-agent': 'Mozilla/5.0 (X11)', 'x-forwarded-for': '203.0.113.9' },
      });
      expect(res.json()).toEqual({ ip: expected, userAgent: 'Mozilla/5.0 (X11)', requestId: 'req-123' });
      expect(res.body).not.toContain('secret');
      await app.close();
    }
  });
});
