import fs from 'node:fs';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';

/** Where an S3-compatible store is and how to sign for it (the blob store and the backup target both use it). */
export interface S3Endpoint {
  /** `https://host:port`; absent: AWS S3 of `region` */
  endpoint?: string | undefined;
  region: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /** PEM of the CA to trust for the endpoint's certificate */
  caPem?: string | undefined;
  connectTimeoutMs?: number;
  /** a request with no byte moving for this long fails (never waits for ever) */
  idleTimeoutMs?: number;
}

/**
 * An SDK v3 client. The secret stays inside the client's credential provider: it is never part of
 * a display string, an error message or a log line (the SDK's own logger is silenced).
 */
export function s3Client(e: S3Endpoint): S3Client {
  return new S3Client({
    ...(e.endpoint ? { endpoint: e.endpoint } : {}),
    region: e.region,
    forcePathStyle: e.forcePathStyle,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    maxAttempts: 3,
    // the SDK's own warnings go nowhere (they would reach stdout, outside the appliance's log)
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    // SDK checksums on by default (CRC32) are not understood by every on-premises store
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: e.connectTimeoutMs ?? 10_000,
      requestTimeout: e.idleTimeoutMs ?? 60_000,
      ...(e.caPem ? { httpsAgent: new https.Agent({ ca: e.caPem, keepAlive: true }) } : {}),
    },
  });
}

/** `https://host:port` (never credentials): for display strings. */
export const s3Display = (e: Pick<S3Endpoint, 'endpoint' | 'region'>, bucket: string, prefix: string): string =>
  `s3://${bucket}/${prefix}` + (e.endpoint ? ` at ${new URL(e.endpoint).host}` : ` (AWS ${e.region})`);

/** HTTP status of an SDK error (undefined for network errors). */
export const s3Status = (e: unknown): number | undefined =>
  (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** A short, secret-free description of an SDK error: its name and HTTP status. */
export const s3Why = (e: unknown): string => {
  const s = s3Status(e);
  const name = (e as { name?: string; code?: string }).name ?? (e as { code?: string }).code ?? 'error';
  return s ? `${name} (HTTP ${s})` : name;
};

export const readCaPem = (file: string | undefined): string | undefined =>
  file ? fs.readFileSync(file, 'utf8') : undefined;
