/**
 * Identity test support: a whole appliance (real SoftHSM2, real SQLite, real audit trail) with a
 * FakeClock, its HTTP app (inject), a real SMTP server (smtp-server, STARTTLS with a certificate
 * made by the appliance's own code) and a real HTTP receiver for SMS; and a log capture so each
 * suite can check that no secret was logged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { Writable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import * as OTPAuth from 'otpauth';
import pino from 'pino';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import https from 'node:https';
import { buildApp } from '../../src/main.js';
import { listen } from '../../src/http/index.js';
import { makeSelfSigned } from '../../src/http/cert.js';
import { FakeClock } from '../../src/shared/clock.js';
import { LOG_REDACT_PATHS } from '../../src/shared/redact.js';
import type { App } from '../../src/http/index.js';

export interface CapturedLog {
  log: pino.Logger;
  text(): string;
}

/** a pino logger like the appliance's (same redaction) that keeps every line in memory */
export function captureLogger(): CapturedLog {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = pino(
    {
      level: 'debug',
      base: { svc: 'coffre' },
      redact: { paths: LOG_REDACT_PATHS, censor: '[REDACTED]' },
      serializers: { err: pino.stdSerializers.err },
    },
    stream,
  );
  return { log, text: () => chunks.join('') };
}

export interface Mail {
  to: string;
  raw: string;
}

export interface SmtpSink {
  port: number;
  caFile: string;
  messages: Mail[];
  /** resolves with the next message to `to` (already received or coming) */
  next(to: string, timeoutMs?: number): Promise<Mail>;
  close(): Promise<void>;
}

/** A real SMTP server on loopback that requires STARTTLS before accepting mail. */
export async function startSmtp(dir: string): Promise<SmtpSink> {
  const cert = await makeSelfSigned(['localhost']);
  const caFile = path.join(dir, 'smtp-ca.pem');
  fs.writeFileSync(caFile, cert.certPem);
  const messages: Mail[] = [];
  const waiters: { to: string; resolve: (m: Mail) => void }[] = [];
  const server = new SMTPServer({
    key: cert.keyPem,
    cert: cert.certPem,
    authOptional: true,
    logger: false,
    onMailFrom(_addr, session, cb) {
      // STARTTLS is mandatory here: a client that did not upgrade is refused
      if (!session.secure) return cb(Object.assign(new Error('STARTTLS first'), { responseCode: 530 }));
      cb();
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (d: Buffer) => (raw += d.toString()));
      stream.on('end', () => {
        for (const r of session.envelope.rcptTo) {
          const m = { to: r.address, raw: raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=') };
          messages.push(m);
          const i = waiters.findIndex((w) => w.to === r.address);
          if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
        }
        cb();
      });
    },
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.server.address() as { port: number }).port;
  const taken = new Set<Mail>();
  return {
    port,
    caFile,
    messages,
    next: (to, timeoutMs = 10_000) =>
      new Promise<Mail>((resolve, reject) => {
        const have = messages.find((m) => m.to === to && !taken.has(m));
        if (have) {
          taken.add(have);
          return resolve(have);
        }
        const t = setTimeout(() => reject(new Error(`no mail to ${to} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          to,
          resolve: (m) => {
            clearTimeout(t);
            taken.add(m);
            resolve(m);
          },
        });
      }),
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

export interface SmsSink {
  url: string;
  received: { headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

/** A real HTTP receiver standing in for the customer's SMS gateway. */
export async function startSmsReceiver(): Promise<SmsSink> {
  const received: SmsSink['received'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(202).end('{"queued":true}');
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/send`,
    received,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

export const linkIn = (text: string): string => {
  const m = /https:\/\/[^\s]+\/#\/(?:enrol|reset)\/[A-Za-z0-9_-]+/.exec(text);
  if (!m) throw new Error('no link in the message');
  return m[0];
};
export const codeIn = (text: string): string => {
  const m = /code is (\d{6})/.exec(text);
  if (!m) throw new Error('no code in the message');
  return m[1]!;
};

export interface IdentityEnv {
  t: TestAppliance;
  app: App;
  clock: FakeClock;
  smtp: SmtpSink;
  sms: SmsSink;
  logs: CapturedLog;
  /** every secret handed out during the suite, for the final log scan */
  secrets: Set<string>;
  publicUrl: string;
  /** a real HTTPS request to the listening app (openIdentityEnv({}, { listen: true })) */
  https(
    method: string,
    p: string,
    o?: {
      headers?: Record<string, string>;
      body?: Buffer | string;
      /** source address, e.g. 127.0.3.9 (any loopback address) */ from?: string;
    },
  ): Promise<{ statusCode: number; body: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** Opens an appliance with SMTP and SMS configured, a FakeClock and captured logs. */
export async function openIdentityEnv(
  extraEnv: Record<string, string> = {},
  opts: { listen?: boolean } = {},
): Promise<IdentityEnv> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-id-'));
  const smtp = await startSmtp(dir);
  const sms = await startSmsReceiver();
  const smsAuth = path.join(dir, 'sms-auth');
  fs.writeFileSync(smsAuth, 'Authorization: Bearer sms-gateway-secret\n', { mode: 0o600 });
  const clock = new FakeClock(Date.UTC(2026, 10, 2, 9, 0, 0));
  const logs = captureLogger();
  const env = {
    COFFRE_CFG_mail: JSON.stringify({
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'required',
        caFile: smtp.caFile,
        from: 'Coffre <coffre@example.test>',
      },
      sms: { url: sms.url, authHeaderFile: smsAuth, bodyTemplate: '{"to":"{{to}}","text":"{{message}}"}' },
    }),
    COFFRE_CFG_site__name: '"Acme Archives"',
    ...extraEnv,
  };
  const t = await createTestAppliance({ clock, log: logs.log, env });
  const app = await buildApp(t.appliance, opts.listen === true);
  await app.ready();
  let port = 0;
  if (opts.listen) {
    await listen(app, '127.0.0.1', 0, logs.log);
    port = (app.server.address() as { port: number }).port;
  }
  const agent = new https.Agent({ keepAlive: false, ca: fs.readFileSync(path.join(t.dataDir, 'tls', 'cert.pem')) });
  const request: IdentityEnv['https'] = (method, p, o = {}) =>
    new Promise((resolve, reject) => {
      const r = https.request(
        {
          host: '127.0.0.1',
          port,
          path: p,
          method,
          agent,
          servername: 'localhost',
          headers: o.headers ?? {},
          ...(o.from ? { localAddress: o.from } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              statusCode: res.statusCode!,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      r.on('error', reject);
      r.end(o.body);
    });
  const publicUrl = t.appliance.config.http.publicUrl!;
  return {
    t,
    app,
    clock,
    smtp,
    sms,
    logs,
    secrets: new Set(),
    publicUrl,
    https: request,
    close: async () => {
      await app.close();
      await t.close();
      await smtp.close();
      await sms.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const totpNow = (secret: string, clock: FakeClock, offsetSteps = 0) =>
  OTPAuth.TOTP.generate({
    secret: OTPAuth.Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    timestamp: clock.nowMs() + offsetSteps * 30_000,
  });

export const cookieOf = (setCookie: string | string[] | undefined): string => {
  const v = Array.isArray(setCookie) ? setCookie[0]! : setCookie!;
  return v.split(';')[0]!;
};

/** the scan at the end of each suite: no secret handed out during it appears in any log line */
export function expectNoSecretsLogged(env: IdentityEnv): void {
  const text = env.logs.text();
  // a numeric code (TOTP, SMS) counts only as a number of its own: inside a longer run of digits
  // (a timestamp, a duration) "000417" is not the code
  const found = (s: string) => (/^\d+$/.test(s) ? new RegExp(`(?<!\\d)${s}(?!\\d)`).test(text) : text.includes(s));
  const leaked = [...env.secrets].filter((s) => typeof s === 'string' && s.length >= 6 && found(s));
  if (leaked.length)
    throw new Error(`secrets found in logs: ${leaked.length} (first starts ${leaked[0]!.slice(0, 3)}…)`);
  if (/#\/(enrol|reset)\/[A-Za-z0-9_-]{16,}/.test(text)) throw new Error('a one-time link was logged');
}
