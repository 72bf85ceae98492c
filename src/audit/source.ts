import type { FastifyRequest } from 'fastify';
import type { AuditSource } from './types.js';

/**
 * The `source` of an audit event from a Fastify request: the client address
 * (`req.ip`, which honours X-Forwarded-For only from configured trusted proxies), the user agent
 * and the request id. Nothing else from the request (no URL: it may hold a token).
 */
export function auditSource(req: FastifyRequest): AuditSource {
  const ua = req.headers['user-agent'];
  const src: AuditSource = { requestId: String(req.id) };
  if (req.ip) src.ip = req.ip.startsWith('::ffff:') && req.ip.includes('.') ? req.ip.slice(7) : req.ip;
  if (typeof ua === 'string' && ua !== '') src.userAgent = ua;
  return src;
}
