import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { AuditSyslogSection, type AuditSyslogConfig } from '../../src/config/sections/audit.js';
import { MailSection, type MailConfig } from '../../src/config/sections/mail.js';
import { smtpSender } from '../../src/auth/messaging.js';
import { EmailAlertChannel, SyslogAlertChannel, WebhookAlertChannel } from '../../src/monitoring/index.js';
import { alertChannelContract } from './alert-channel.js';
import { startSmtpReceiver, startSyslogReceiver, startWebhookReceiver } from '../support/receivers.js';

/** a loopback port nothing listens on */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-alert-channel-'));

alertChannelContract('email (nodemailer → smtp-server, STARTTLS)', async () => {
  const dir = tmpDir();
  const smtp = await startSmtpReceiver(dir);
  const mail = (port: number) =>
    (
      Value.Default(MailSection, {
        smtp: { host: 'localhost', port, caFile: smtp.caFile, timeoutMs: 2000 },
      }) as MailConfig
    ).smtp!;
  const dead = await deadPort();
  return {
    channel: new EmailAlertChannel(smtpSender(mail(smtp.port)), ['oncall@example.fr']),
    received: async () => smtp.notices('oncall@example.fr'),
    unreachable: () => new EmailAlertChannel(smtpSender(mail(dead)), ['oncall@example.fr']),
    cleanup: async () => {
      await smtp.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

alertChannelContract('syslog (RFC 5424 over TLS)', async () => {
  const dir = tmpDir();
  const rx = await startSyslogReceiver();
  const caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(caFile, rx.caPem);
  const cfg = (port: number) =>
    Value.Default(AuditSyslogSection, {
      enabled: true,
      transport: 'tls',
      host: '127.0.0.1',
      port,
      caFile,
    }) as AuditSyslogConfig;
  const dead = await deadPort();
  return {
    channel: new SyslogAlertChannel(cfg(rx.port), { facility: 13, appName: 'coffre' }),
    received: async () => rx.notices(),
    unreachable: () => new SyslogAlertChannel(cfg(dead), { facility: 13, appName: 'coffre' }),
    cleanup: async () => {
      await rx.collector.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

alertChannelContract('webhook (HTTPS JSON, HMAC-signed)', async () => {
  const dir = tmpDir();
  const rx = await startWebhookReceiver(dir);
  const ca = fs.readFileSync(rx.caFile);
  const dead = await deadPort();
  return {
    channel: new WebhookAlertChannel({
      url: rx.url,
      secret: rx.secret,
      ca,
      timeoutMs: 5000,
      retries: 2,
      backoffMs: 20,
    }),
    received: async () => rx.notices(),
    unreachable: () =>
      new WebhookAlertChannel({
        url: `https://localhost:${dead}/x`,
        secret: rx.secret,
        ca,
        timeoutMs: 2000,
        retries: 1,
        backoffMs: 20,
      }),
    cleanup: async () => {
      await rx.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
