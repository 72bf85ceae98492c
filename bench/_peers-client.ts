import fs from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';

/**
 * The one client bench/peers.ts uses for Coffre and its peers alike: HTTP/1.1 over TLS 1.3 offering
 * only TLS_AES_256_GCM_SHA384 (so every server, whatever its own preference, runs the same cipher),
 * one kept-alive connection per client, each client from its own loopback address (127.0.1.n): 16
 * clients are 16 machines to a server, and Coffre's per-address request limit sees them as such.
 * A server is described by the request that stores a file and the path that reads it back.
 */
export interface Server {
  name: string;
  url: string;
  ca: string;
  /** headers every request carries (credentials) */
  auth: Record<string, string>;
  /** the request storing a file called `name` (the body, its length and `auth` are added) */
  store(name: string): { method: string; path: string; headers: Record<string, string> };
  /** the path reading that file back, from the store request's status and reply */
  readPath(name: string, reply: string): string;
}

export interface Reply {
  status: number;
  bytes: number;
  text: string;
  cipher: string;
  ms: number;
}

const TLS = { ciphers: 'TLS_AES_256_GCM_SHA384', minVersion: 'TLSv1.3', servername: 'localhost' } as const;

export class Client {
  private readonly agent: https.Agent;

  /** `n`: the client's number, which picks its source address 127.0.1.(n + 1) */
  constructor(
    readonly server: Server,
    n = 0,
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: server.ca,
      ...TLS,
      localAddress: `127.0.1.${(n % 250) + 1}`,
    });
  }

  send(method: string, p: string, headers: Record<string, string>, body?: Buffer | Readable, size?: number) {
    const u = new URL(this.server.url);
    const t = performance.now();
    return new Promise<Reply>((resolve, reject) => {
      const req = https.request(
        {
          host: u.hostname,
          port: u.port,
          method,
          path: p,
          agent: this.agent,
          ca: this.server.ca,
          ...TLS,
          headers: {
            ...this.server.auth,
            ...headers,
            ...(body ? { 'content-type': 'application/octet-stream', 'content-length': String(size) } : {}),
          },
        },
        (res) => {
          const cipher = (res.socket as TLSSocket).getCipher().standardName;
          let bytes = 0;
          const text: Buffer[] = [];
          res.on('data', (d: Buffer) => {
            bytes += d.length;
            if (bytes <= 1 << 16) text.push(d);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              bytes,
              text: Buffer.concat(text).toString('utf8'),
              cipher,
              ms: performance.now() - t,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (Buffer.isBuffer(body)) req.end(body);
      else if (body) body.pipe(req);
      else req.end();
    });
  }

  /** stores `name`; returns the reply and the path that reads it back */
  async put(name: string, body: Buffer | Readable, size: number): Promise<Reply & { readPath: string }> {
    const s = this.server.store(name);
    const r = await this.send(s.method, s.path, s.headers, body, size);
    if (r.status !== 201 && r.status !== 204)
      throw new Error(`${this.server.name}: storing ${name}: ${r.status} ${r.text.slice(0, 300)}`);
    return { ...r, readPath: this.server.readPath(name, r.text) };
  }

  /** reads a file back; fails unless all `size` bytes came */
  async get(p: string, size: number): Promise<Reply> {
    const r = await this.send('GET', p, {}, undefined);
    if (r.status !== 200 || r.bytes !== size)
      throw new Error(`${this.server.name}: GET ${p}: ${r.status}, ${r.bytes} of ${size} bytes`);
    return r;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * What a batch measured: documents per second over the whole batch (those that succeeded), each
 * request's latency, and the requests that failed (counted, the first error kept: a server that
 * refuses some requests under load is reported as such, and the batch goes on).
 */
export interface Batch {
  seconds: number;
  docsPerS: number;
  p50Ms: number;
  p99Ms: number;
  cipher: string;
  errors: number;
  firstError?: string;
}

function batch(latencies: number[], seconds: number, cipher: string, errors: string[]): Batch {
  const s = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! * 10) / 10;
  return {
    seconds,
    docsPerS: Math.round(s.length / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    cipher,
    errors: errors.length,
    ...(errors.length ? { firstError: errors[0]!.slice(0, 300) } : {}),
  };
}

/** `jobs` run by `clients` concurrent clients (each takes the next job when its last one is done) */
async function concurrently(
  server: Server,
  clients: number,
  jobs: number,
  job: (c: Client, i: number) => Promise<Reply>,
): Promise<Batch> {
  const cs = Array.from({ length: clients }, (_, n) => new Client(server, n));
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  let cipher = '';
  const t = performance.now();
  try {
    await Promise.all(
      cs.map(async (c) => {
        for (let i = next++; i < jobs; i = next++) {
          try {
            const r = await job(c, i);
            latencies.push(r.ms);
            cipher = r.cipher;
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
      }),
    );
  } finally {
    for (const c of cs) c.close();
  }
  return batch(latencies, (performance.now() - t) / 1000, cipher, errors);
}

/**
 * Uploads `count` documents of `size` bytes, document i being bytes [i·size, (i+1)·size) of
 * `source` (a file of random bytes, in the page cache), named `${prefix}${i}.bin`; returns the
 * batch's figures and the paths that read back each document stored.
 */
export async function uploadMany(
  server: Server,
  o: { clients: number; count: number; size: number; source: string; prefix: string },
): Promise<{ batch: Batch; paths: string[] }> {
  const fd = await fs.promises.open(o.source, 'r');
  const paths: string[] = new Array<string>(o.count);
  try {
    const b = await concurrently(server, o.clients, o.count, async (c, i) => {
      const body = Buffer.allocUnsafe(o.size);
      await fd.read(body, 0, o.size, i * o.size);
      const r = await c.put(`${o.prefix}${i}.bin`, body, o.size);
      paths[i] = r.readPath;
      return r;
    });
    return { batch: b, paths: paths.filter(Boolean) };
  } finally {
    await fd.close();
  }
}

/** Downloads every path (each must give `size` bytes). */
export function downloadMany(server: Server, o: { clients: number; paths: string[]; size: number }): Promise<Batch> {
  return concurrently(server, o.clients, o.paths.length, (c, i) => c.get(o.paths[i]!, o.size));
}
