import readline from 'node:readline';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { processEnv, type Env } from '../config/index.js';
import { AppError } from '../shared/errors.js';
import { TLS_POLICY } from '../http/tls.js';

/**
 * The HTTPS client of the `coffre` client commands (docs/cli.md): `COFFRE_URL` (the appliance),
 * `COFFRE_TOKEN` (an API token, sent as `Authorization: Bearer`), `COFFRE_CA` (a PEM file to trust,
 * for a self-signed certificate). Certificates are always verified; TLS policy is the appliance's.
 * Shared by every client verb (auth, workspaces, documents).
 */
export interface ClientOptions {
  url: string;
  token?: string | undefined;
  ca?: Buffer | undefined;
}

export interface ApiError {
  error: { code: string; message: string; requestId?: string; details?: unknown };
}

export function clientFromEnv(o: { needToken?: boolean; url?: string | undefined; env?: Env } = {}): Client {
  const env = o.env ?? processEnv();
  const url = o.url ?? env.COFFRE_URL;
  if (!url)
    throw new AppError('USAGE', 'COFFRE_URL is not set', {
      exitCode: 2,
      hint: 'export COFFRE_URL=https://appliance:8443 (and COFFRE_CA for a self-signed certificate)',
    });
  if (!/^https:\/\//.test(url)) throw new AppError('USAGE', 'COFFRE_URL must be an https:// URL', { exitCode: 2 });
  const token = env.COFFRE_TOKEN || undefined;
  if (o.needToken && !token)
    throw new AppError('USAGE', 'COFFRE_TOKEN is not set', {
      exitCode: 2,
      hint: 'get one with `coffre login --username USER` and export COFFRE_TOKEN',
    });
  let ca: Buffer | undefined;
  if (env.COFFRE_CA) {
    try {
      ca = fs.readFileSync(env.COFFRE_CA);
    } catch (e) {
      throw new AppError(
        'USAGE',
        `COFFRE_CA: cannot read ${env.COFFRE_CA} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        { exitCode: 2 },
      );
    }
  }
  return new Client({ url, token, ca });
}

export class Client {
  private readonly base: URL;
  constructor(private readonly o: ClientOptions) {
    this.base = new URL(o.url);
  }

  /**
   * A raw request: the caller streams the body and reads the response (documents). `trailers`,
   * for a streamed body, are computed when the body ends and sent after it (chunked encoding),
   * e.g. the `Content-Digest` of what was read.
   */
  raw(
    method: string,
    path: string,
    o: {
      headers?: Record<string, string>;
      body?: Readable | Buffer | string;
      trailers?: () => Record<string, string>;
    } = {},
  ): Promise<IncomingMessage> {
    const url = new URL(`/api/v1${path}`, this.base);
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          minVersion: TLS_POLICY.minVersion,
          ...(this.o.ca ? { ca: this.o.ca } : {}),
          headers: {
            accept: 'application/json',
            'user-agent': 'coffre-cli',
            ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}),
            ...o.headers,
          },
        },
        resolve,
      );
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          new AppError('UNREACHABLE', `cannot reach ${this.base.origin} (${e.code ?? e.message})`, {
            exitCode: 1,
            cause: e,
            hint:
              e.code?.startsWith('ERR_TLS') || /certificate/i.test(e.message)
                ? 'set COFFRE_CA to the appliance certificate'
                : 'check COFFRE_URL and that the appliance is running',
          }),
        ),
      );
      if (o.body === undefined) req.end();
      else if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) req.end(o.body);
      else if (o.trailers) {
        const body = o.body;
        const trailers = o.trailers;
        body.on('error', (e) => req.destroy(e));
        body.on('end', () => {
          req.addTrailers(trailers());
          req.end();
        });
        body.pipe(req, { end: false });
      } else o.body.pipe(req);
    });
  }

  /** JSON in, JSON out; API errors become AppErrors with the API's code */
  async json<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(
      method,
      path,
      body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = undefined;
    }
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const err = (parsed as ApiError | undefined)?.error;
      throw new AppError(err?.code ?? `HTTP_${status}`, err?.message ?? `the appliance answered ${status}`, {
        httpStatus: status,
        exitCode: status === 400 || status === 422 ? 2 : 1,
        ...(err?.details !== undefined ? { details: err.details } : {}),
        ...(status === 401 ? { hint: 'get a fresh token with `coffre login` (COFFRE_TOKEN)' } : {}),
      });
    }
    return parsed as T;
  }
}

/** reads a secret from standard input (first line, without its newline) */
/**
 * Standard input one line at a time, read only as far as asked: a command can print something
 * (a secret to add to an authenticator) and then wait for the next line, typed or piped.
 */
export function stdinLines(stdin: NodeJS.ReadableStream = process.stdin): {
  next(): Promise<string | undefined>;
  close(): void;
} {
  const rl = readline.createInterface({ input: stdin, crlfDelay: Infinity, terminal: false });
  const it = rl[Symbol.asyncIterator]();
  return {
    next: async () => {
      const r = await it.next();
      return r.done ? undefined : r.value;
    },
    close: () => rl.close(),
  };
}

export async function readStdinSecret(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  const s = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (!s) throw new AppError('USAGE', 'nothing on standard input', { exitCode: 2 });
  return s;
}
