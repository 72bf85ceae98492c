import fs from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { processEnv, type Env } from '../config/index.js';
import { AppError } from '../shared/errors.js';

/**
 * Streaming HTTPS calls for the client commands (COFFRE_URL, COFFRE_TOKEN, COFFRE_CA). Bodies are
 * streamed both ways; nothing is buffered beyond a socket's window. The token goes only in the
 * Authorization header, never in a URL or a message.
 */
export interface ApiClient {
  json(method: string, path: string, body?: unknown): Promise<unknown>;
  /** POSTs a body as application/octet-stream (chunked) with trailers computed at its end */
  upload(path: string, body: Readable, trailers: () => Record<string, string>): Promise<unknown>;
  download(path: string): Promise<{ headers: IncomingHttpHeaders; body: IncomingMessage }>;
}

export function apiClient(env: Env = processEnv()): ApiClient {
  const base = env.COFFRE_URL;
  const token = env.COFFRE_TOKEN;
  if (!base || !/^https:\/\//.test(base)) throw new AppError('USAGE', 'COFFRE_URL must be set to the appliance address (https://…)', { exitCode: 2 });
  if (!token) throw new AppError('USAGE', 'COFFRE_TOKEN must be set to an API token', { exitCode: 2, hint: 'get one with `coffre login`' });
  let ca: Buffer | undefined;
  if (env.COFFRE_CA) {
    try {
      ca = fs.readFileSync(env.COFFRE_CA);
    } catch {
      throw new AppError('USAGE', `COFFRE_CA: cannot read ${env.COFFRE_CA}`, { exitCode: 2 });
    }
  }
  const agent = new https.Agent({ keepAlive: false, ...(ca ? { ca } : {}), minVersion: 'TLSv1.2' });
  const auth = { authorization: `Bearer ${token}` };

  const request = (method: string, path: string, headers: Record<string, string>): Promise<{ req: ReturnType<typeof https.request>; res: Promise<IncomingMessage> }> =>
    Promise.resolve().then(() => {
      const url = new URL(path, base);
      let resolveRes!: (r: IncomingMessage) => void;
      let rejectRes!: (e: unknown) => void;
      const res = new Promise<IncomingMessage>((a, b) => {
        resolveRes = a;
        rejectRes = b;
      });
      const req = https.request(url, { method, agent, headers: { ...auth, ...headers } }, resolveRes);
      req.on('error', (e: NodeJS.ErrnoException) =>
        rejectRes(new AppError('UNREACHABLE', `cannot reach ${url.origin} (${e.code ?? e.message})`, { exitCode: 1, hint: 'check COFFRE_URL, COFFRE_CA and that the appliance is running', cause: e })),
      );
      return { req, res };
    });

  const failIfError = async (res: IncomingMessage): Promise<void> => {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return;
    let text = '';
    for await (const c of res) if (text.length < 65536) text += (c as Buffer).toString('utf8');
    let code = `HTTP_${status}`;
    let message = res.statusMessage ?? 'request failed';
    try {
      const b = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (b.error?.code) code = b.error.code;
      if (b.error?.message) message = b.error.message;
    } catch {
      /* not JSON */
    }
    throw new AppError(code, message, { exitCode: status === 400 || status === 404 || status === 413 ? 2 : 1, httpStatus: status });
  };

  const readJson = async (res: IncomingMessage): Promise<unknown> => {
    await failIfError(res);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? (JSON.parse(text) as unknown) : {};
  };

  return {
    async json(method, path, body) {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const { req, res } = await request(method, path, data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {});
      req.end(data);
      return readJson(await res);
    },
    async upload(path, body, trailers) {
      const { req, res } = await request('POST', path, { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked', trailer: 'content-digest' });
      let early: IncomingMessage | undefined;
      // the appliance may refuse before reading the body (403, 404, 413): stop sending then
      void res.then((r) => {
        early = r;
        if ((r.statusCode ?? 0) >= 300) body.unpipe(req);
      }, () => undefined);
      body.on('error', (e) => req.destroy(e));
      body.pipe(req, { end: false });
      body.on('end', () => {
        if (early && (early.statusCode ?? 0) >= 300) return;
        req.addTrailers(trailers());
        req.end();
      });
      return readJson(await res);
    },
    async download(path) {
      const { req, res } = await request('GET', path, {});
      req.end();
      const r = await res;
      await failIfError(r);
      return { headers: r.headers, body: r };
    },
  };
}
