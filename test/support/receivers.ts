/**
 * Real alert receivers for tests: an HTTPS webhook endpoint (checks the HMAC signature it is
 * given, can be told to fail), a syslog-over-TLS collector (test/audit/collector.ts) and an SMTP
 * server requiring STARTTLS (test/auth/support.ts), plus readers that turn what each received
 * back into the alert notices that were sent.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeSelfSigned } from '../../src/http/index.js';
import { webhookSignature, type AlertNotice } from '../../src/monitoring/index.js';
import { TestCollector, parse5424 } from '../audit/collector.js';
import { startSmtp, type SmtpSink } from '../auth/support.js';

export interface WebhookHit {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** the signature matched the shared secret and the timestamp */
  signed: boolean;
}

export interface WebhookReceiver {
  url: string;
  caFile: string;
  secret: string;
  secretFile: string;
  hits: WebhookHit[];
  /** answers this status to the next `n` requests (then 204 again) */
  failNext(n: number, status?: number): void;
  /** accepted notices, in order */
  notices(): AlertNotice[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(
  dir: string,
  secret = 'webhook-secret-0123456789abcdef',
): Promise<WebhookReceiver> {
  const cert = await makeSelfSigned(['localhost']);
  const caFile = path.join(dir, 'webhook-ca.pem');
  fs.writeFileSync(caFile, cert.certPem);
  const secretFile = path.join(dir, 'webhook-secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const hits: WebhookHit[] = [];
  const accepted: WebhookHit[] = [];
  let failing = 0;
  let failStatus = 503;
  const server = https.createServer({ key: cert.keyPem, cert: cert.certPem, minVersion: 'TLSv1.2' }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const ts = String(req.headers['x-coffre-timestamp'] ?? '');
      const hit = {
        headers: req.headers,
        body,
        signed: req.headers['x-coffre-signature'] === webhookSignature(secret, ts, body),
      };
      hits.push(hit);
      if (failing > 0) {
        failing -= 1;
        res.writeHead(failStatus).end();
        return;
      }
      if (!hit.signed) {
        res.writeHead(401).end();
        return;
      }
      accepted.push(hit);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://localhost:${port}/hooks/coffre`,
    caFile,
    secret,
    secretFile,
    hits,
    failNext: (n, status = 503) => {
      failing = n;
      failStatus = status;
    },
    notices: () => accepted.map((h) => JSON.parse(h.body) as AlertNotice),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A syslog-over-TLS collector and a reader of the alert notices it got. */
export async function startSyslogReceiver(): Promise<{
  collector: TestCollector;
  port: number;
  caPem: string;
  notices(): AlertNotice[];
}> {
  const cert = await makeSelfSigned([]);
  const collector = new TestCollector('tls', { key: cert.keyPem, cert: cert.certPem });
  const port = await collector.start();
  const notices = () =>
    collector.messages
      .map(parse5424)
      .filter((p) => p.msgId === 'alert')
      .map((p) => JSON.parse(p.msg) as AlertNotice);
  return { collector, port, caPem: cert.certPem, notices };
}

/** decodes a quoted-printable or base64 text/plain part (nodemailer picks one) */
export function decodeBody(raw: string): string {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join('\n\n');
  if (/content-transfer-encoding:\s*base64/i.test(head ?? ''))
    return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  // the SMTP sink already undid soft line breaks and =3D; undo the remaining =XX escapes (UTF-8 bytes)
  return Buffer.from(
    body.replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

/** An SMTP server (STARTTLS required) and a reader of the alert notices mailed to it. */
export async function startSmtpReceiver(dir: string): Promise<SmtpSink & { notices(to?: string): AlertNotice[] }> {
  const sink = await startSmtp(dir);
  return Object.assign(sink, {
    notices: (to?: string) =>
      sink.messages
        .filter((m) => to === undefined || m.to === to)
        .map((m) => /^coffre-alert: (.*)$/m.exec(decodeBody(m.raw))?.[1])
        .filter((j): j is string => j !== undefined)
        .map((j) => JSON.parse(j) as AlertNotice),
  });
}

/** polls `f` until it holds (real receivers answer asynchronously) */
export async function eventually<T>(f: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}
