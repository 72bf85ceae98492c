import crypto from 'node:crypto';
import https from 'node:https';
import { AppError } from '../../shared/errors.js';
import type { AlertChannel, AlertNotice } from '../types.js';

export interface WebhookOptions {
  url: string;
  /** HMAC-SHA256 key */
  secret: string;
  /** extra CA certificates (PEM) */
  ca?: Buffer | undefined;
  timeoutMs: number;
  /** immediate retries after a network error, a 5xx or a 429 (back-off from `backoffMs`, doubling) */
  retries: number;
  backoffMs?: number;
}

export const SIGNATURE_HEADER = 'x-coffre-signature';
export const TIMESTAMP_HEADER = 'x-coffre-timestamp';
export const DELIVERY_HEADER = 'x-coffre-delivery';

/**
 * The signature a receiver checks: `sha256=` + hex HMAC-SHA256(secret, `<timestamp>.<body>`),
 * timestamp in seconds since the epoch (docs/monitoring.md "Webhook"). Binding the timestamp lets
 * a receiver refuse replays older than a few minutes.
 */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

class Retryable extends Error {}

/**
 * HTTPS JSON webhook (TLS 1.2+, certificate checked). Each notice is POSTed with
 * `X-Coffre-Delivery` (the same across retries: receivers deduplicate on it), a timestamp and an
 * HMAC signature. Delivered on a 2xx answer.
 */
export class WebhookAlertChannel implements AlertChannel {
  readonly name = 'webhook';
  constructor(private readonly o: WebhookOptions) {}

  async send(a: AlertNotice): Promise<void> {
    const body = JSON.stringify({ type: 'coffre.alert', ...a });
    let wait = this.o.backoffMs ?? 250;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.post(body, a.deliveryId ?? a.id);
      } catch (e) {
        if (!(e instanceof Retryable) || attempt >= this.o.retries) {
          throw new AppError('ALERT_CHANNEL_FAILED', `webhook delivery failed: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, wait));
        wait *= 2;
      }
    }
  }

  private post(body: string, delivery: string): Promise<void> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    return new Promise<void>((resolve, reject) => {
      const req = https.request(
        this.o.url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            [DELIVERY_HEADER]: delivery,
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: webhookSignature(this.o.secret, timestamp, body),
          },
          timeout: this.o.timeoutMs,
          minVersion: 'TLSv1.2',
          rejectUnauthorized: true,
          agent: false,
          ...(this.o.ca ? { ca: this.o.ca } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const s = res.statusCode ?? 0;
            if (s >= 200 && s < 300) resolve();
            else if (s >= 500 || s === 429 || s === 408) reject(new Retryable(`the receiver answered ${s}`));
            else reject(new Error(`the receiver answered ${s}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => {
        const tlsRefused = /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(e.code ?? '');
        reject(tlsRefused ? new Error(`certificate refused (${e.code})`) : new Retryable(e.code ?? e.message));
      });
      req.end(body);
    });
  }
}
