import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Fastify from 'fastify';
import fastifyStatic from '@fastify/static';
import { TLS_POLICY } from '../src/http/tls.js';

/**
 * The peers of `bench/vault.ts`, in their own process like `coffre serve` (client and server never
 * share an event loop, for either side of a comparison): a plain Fastify HTTPS server with
 * (b) a static route serving <root>/static, no encryption at rest, and
 * (c) POST /upload writing the body durably (fdatasync before answering) to <root>/plain-upload.bin,
 * no hashing, no encryption. Prints {"port": N} once listening. argv: root, cert file, key file.
 */
const [root, cert, key] = process.argv.slice(2) as [string, string, string];
const app = Fastify({ https: { ...TLS_POLICY, cert: fs.readFileSync(cert), key: fs.readFileSync(key) } });
await app.register(fastifyStatic, { root: path.join(root, 'static') });
app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
app.post('/upload', async (req, reply) => {
  const f = path.join(root, 'plain-upload.bin');
  await pipeline(req.body as Readable, fs.createWriteStream(f, { flush: true, highWaterMark: 1 << 20 }));
  const bytes = fs.statSync(f).size;
  fs.rmSync(f, { force: true });
  return reply.code(201).send({ bytes });
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ port: (app.server.address() as { port: number }).port }) + '\n');
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
