import crypto from 'node:crypto';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { footprint, metaHeaders, openVaultEnv, type User, type VaultEnv } from './support.js';

/**
 * Sixteen clients at once, as `npm run bench -- peers` drives the appliance at scale: each with one
 * kept-alive HTTPS connection from its own loopback address, four people (the workspace's owner and
 * three editors) with four clients each, all depositing small documents into ONE workspace at the
 * same time, then all reading them back. Every document must come back whole, with its own digest
 * (no reply crossed between requests sharing a connection, no blob or key of one document under
 * another), and the workspace's counters must add up (no lost update between concurrent commits).
 */
const CLIENTS = 16;
const EACH = 8;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

let env: VaultEnv;
let people: User[];
let ws: string;

beforeAll(async () => {
  env = await openVaultEnv();
  people = [];
  for (const n of ['owner', 'ed1', 'ed2', 'ed3']) people.push(await env.user(n));
  ws = await env.workspace(people[0]!, 'Deposits');
  for (const p of people.slice(1)) await env.addMember(people[0]!, ws, p, 'editor');
}, 60_000);
afterAll(async () => env?.close());

/** one client: a single kept-alive connection from 127.0.1.(n + 1), the person's token */
function client(n: number, token: string) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: env.ca, localAddress: `127.0.1.${n + 1}` });
  const send = (method: string, p: string, headers: Record<string, string>, body?: Buffer) =>
    new Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>((resolve, reject) => {
      const r = https.request(
        {
          host: '127.0.0.1',
          port: env.port,
          path: p,
          method,
          agent,
          servername: 'localhost',
          headers: { authorization: `Bearer ${token}`, ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  return { send, close: () => agent.destroy() };
}

describe('16 concurrent clients on one workspace', () => {
  it('every document deposited comes back whole with its own digest; counters add up', async () => {
    const docs: { id: string; name: string; data: Buffer }[] = [];
    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n, people[n % people.length]!.token));
    try {
      await Promise.all(
        clients.map(async (c, n) => {
          for (let i = 0; i < EACH; i++) {
            // sizes around the encryption's chunk and the socket's buffers, different per document
            const data = crypto.randomBytes(1 + (((n * EACH + i) * 977) % 70_000));
            const name = `deposit-${n}-${i}.bin`;
            const r = await c.send(
              'POST',
              `/api/v1/workspaces/${ws}/documents`,
              {
                'content-type': 'application/octet-stream',
                'content-length': String(data.length),
                ...metaHeaders(name),
              },
              data,
            );
            expect(r.status, r.body.toString()).toBe(201);
            const reply = JSON.parse(r.body.toString()) as {
              id: string;
              sha256: string;
              size: number;
              version: number;
            };
            expect(reply).toMatchObject({ sha256: sha(data), size: data.length, version: 1 });
            docs.push({ id: reply.id, name, data });
          }
        }),
      );
      expect(new Set(docs.map((d) => d.id)).size).toBe(CLIENTS * EACH);
      // each read by whichever client is free next: mostly another connection, often another person
      let next = 0;
      await Promise.all(
        clients.map(async (c) => {
          for (let i = next++; i < docs.length; i = next++) {
            const d = docs[i]!;
            const r = await c.send('GET', `/api/v1/documents/${d.id}/content`, {});
            expect(r.status).toBe(200);
            expect(sha(r.body), d.name).toBe(sha(d.data));
            expect(r.headers['repr-digest']).toBe(
              `sha-256=:${crypto.createHash('sha256').update(d.data).digest('base64')}:`,
            );
          }
        }),
      );
    } finally {
      for (const c of clients) c.close();
    }
    const usage = await env.req('GET', `/api/v1/workspaces/${ws}/usage`, { token: people[0]!.token });
    expect(usage.json()).toMatchObject({
      documents: CLIENTS * EACH,
      usedBytes: docs.reduce((s, d) => s + d.data.length, 0),
    });
    const f = await footprint(env);
    expect(f).toMatchObject({ documents: CLIENTS * EACH, versions: CLIENTS * EACH, uploads: 0, temp: 0 });
    expect(f.blobs).toBe(CLIENTS * EACH);
  }, 120_000);
});
