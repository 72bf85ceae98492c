import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Transporter } from 'nodemailer';
import type { MailConfig } from '../config/sections/mail.js';
import { readSecretFile } from '../config/index.js';
import { AppError } from '../shared/errors.js';
import { redactText } from '../shared/redact.js';

/** node:http without an ESM import, whose namespace reads every export, including the lazy
 * WebSocket that loads undici (~3 MB of heap the server never uses) */
const http = process.getBuiltinModule('node:http');

/** Sends e-mail. Small on purpose. */
export interface MailSender {
  send(m: { to: string; subject: string; text: string }): Promise<void>;
}
/** Sends an SMS through the customer's gateway. */
export interface SmsSender {
  send(m: { to: string; text: string }): Promise<void>;
}

const unavailable = (what: string) =>
  new AppError('DELIVERY_FAILED', `${what} could not be delivered`, {
    httpStatus: 503,
    exitCode: 1,
    hint: 'check the mail section of the configuration and the server it names',
  });

/**
 * SMTP through nodemailer. STARTTLS is required unless `tls: disabled` was chosen explicitly;
 * certificates are verified (the customer's CA can be added with caFile). The password is read
 * from its file at start.
 */
export function smtpSender(cfg: NonNullable<MailConfig['smtp']>): MailSender {
  const ca = cfg.caFile ? fs.readFileSync(cfg.caFile) : undefined;
  const pass = cfg.passwordFile ? readSecretFile(cfg.passwordFile, 'mail.smtp.passwordFile') : undefined;
  // nodemailer (~5 MB of heap) loads at the first message, not at start
  const open = async (): Promise<Transporter> =>
    (await import('nodemailer')).default.createTransport({
      host: cfg.host,
      port: cfg.port,
      secure: cfg.tls === 'implicit',
      requireTLS: cfg.tls === 'required',
      ignoreTLS: cfg.tls === 'disabled',
      tls: { minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(ca ? { ca } : {}) },
      ...(cfg.user ? { auth: { user: cfg.user, pass: pass ?? '' } } : {}),
      connectionTimeout: cfg.timeoutMs,
      greetingTimeout: cfg.timeoutMs,
      socketTimeout: cfg.timeoutMs,
      logger: false,
      debug: false,
    });
  let transport: Promise<Transporter> | undefined;
  return {
    async send(m) {
      try {
        await (await (transport ??= open())).sendMail({ from: cfg.from, to: m.to, subject: m.subject, text: m.text });
      } catch (e) {
        // the SMTP error text may echo the message: keep only its code
        throw Object.assign(unavailable('e-mail'), {
          cause: new Error(redactText((e as { code?: string }).code ?? 'SMTP error')),
        });
      }
    },
  };
}

function fill(template: string, values: Record<string, string>, contentType: string): string {
  const json = /json/i.test(contentType);
  const form = /x-www-form-urlencoded/i.test(contentType);
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    const v = values[k] ?? '';
    if (json) return JSON.stringify(v).slice(1, -1);
    if (form) return encodeURIComponent(v);
    return v;
  });
}

/**
 * SMS through an HTTP gateway: each on-prem customer has their own, so the URL, the auth header
 * (read from a file) and the body template are configuration.
 */
export function httpSmsSender(cfg: NonNullable<MailConfig['sms']>): SmsSender {
  let header: [string, string] | undefined;
  if (cfg.authHeaderFile) {
    const line = readSecretFile(cfg.authHeaderFile, 'mail.sms.authHeaderFile');
    const i = line.indexOf(':');
    if (i < 1)
      throw new AppError('CONFIG_INVALID', 'mail.sms.authHeaderFile must hold one line "Name: value"', { exitCode: 2 });
    header = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
  }
  const ca = cfg.caFile ? fs.readFileSync(cfg.caFile) : undefined;
  return {
    async send(m) {
      const body = fill(cfg.bodyTemplate, { to: m.to, message: m.text }, cfg.contentType);
      const request = cfg.url.startsWith('https:') ? https.request : http.request;
      await new Promise<void>((resolve, reject) => {
        const req = request(
          cfg.url,
          {
            method: cfg.method,
            headers: {
              'content-type': cfg.contentType,
              'content-length': Buffer.byteLength(body),
              ...(header ? { [header[0]]: header[1] } : {}),
            },
            timeout: cfg.timeoutMs,
            ...(ca ? { ca } : {}),
          },
          (res: IncomingMessage) => {
            res.resume();
            res.on('end', () =>
              (res.statusCode ?? 500) < 300
                ? resolve()
                : reject(unavailable(`SMS (gateway answered ${res.statusCode})`)),
            );
          },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => reject(unavailable('SMS')));
        req.end(body);
      });
    },
  };
}
