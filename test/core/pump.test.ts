import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pumped } from '../../src/shared/pump.js';

/** a sink that keeps what it is given, optionally failing after `failAfter` bytes */
function sink(o: { failAfter?: number; slow?: boolean } = {}) {
  const got: Buffer[] = [];
  let n = 0;
  const w = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      got.push(chunk);
      const err = o.failAfter !== undefined && n > o.failAfter ? new Error('disk on fire') : null;
      if (o.slow) setImmediate(() => cb(err));
      else cb(err);
    },
  });
  return { w, bytes: () => Buffer.concat(got) };
}

describe('pump: two streams joined with pipeline-like failure handling', () => {
  it('moves every byte, respecting back-pressure, and resolves once the sink has finished', async () => {
    const data = crypto.randomBytes(300_000);
    const src = Readable.from([data.subarray(0, 100_000), data.subarray(100_000, 200_000), data.subarray(200_000)]);
    const s = sink({ slow: true });
    let finished = false;
    s.w.on('finish', () => (finished = true));
    await pumped(src, s.w);
    expect(finished).toBe(true);
    expect(s.bytes().equals(data)).toBe(true);
  });

  it('an error of the source destroys the sink with it and rejects', async () => {
    const src = new PassThrough();
    const s = sink();
    const p = pumped(src, s.w);
    src.write(Buffer.alloc(10));
    src.destroy(new Error('client went away'));
    await expect(p).rejects.toThrow('client went away');
    expect(s.w.destroyed).toBe(true);
    expect(s.w.writableFinished).toBe(false);
  });

  it('an error of the sink destroys the source and rejects with the sink error', async () => {
    const src = new PassThrough();
    const s = sink({ failAfter: 5 });
    const p = pumped(src, s.w);
    src.write(Buffer.alloc(10));
    await expect(p).rejects.toThrow('disk on fire');
    expect(src.destroyed).toBe(true);
  });

  it('a sink closed before the end is a premature close, and the source is released', async () => {
    const src = new PassThrough();
    const s = sink();
    const p = pumped(src, s.w);
    src.write(Buffer.alloc(10));
    s.w.destroy();
    await expect(p).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(src.destroyed).toBe(true);
  });

  it('a source closed before its end is a premature close too', async () => {
    const src = new PassThrough();
    const s = sink();
    const p = pumped(src, s.w);
    src.write(Buffer.alloc(10));
    src.destroy();
    await expect(p).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(s.w.destroyed).toBe(true);
  });

  it('after a failure of the source, answers only once the sink has finished its own clean-up', async () => {
    const src = new PassThrough();
    let cleaned = false;
    const w = new Writable({
      write(_c, _e, cb) {
        cb();
      },
      destroy(err, cb) {
        setTimeout(() => {
          cleaned = true; // e.g. a file descriptor closed
          cb(err);
        }, 50);
      },
    });
    const p = pumped(src, w);
    src.write(Buffer.alloc(10));
    src.destroy(new Error('client went away'));
    await expect(p).rejects.toThrow('client went away');
    expect(cleaned).toBe(true);
  });

  it("a server's request refused part-way is destroyed without its socket: the client still gets the answer", async () => {
    const server = http.createServer((req, res) => {
      pumped(req, sink({ failAfter: 100_000 }).w).catch(() => {
        res.writeHead(413, { connection: 'close' }).end('too large');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/' }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        // a body far over the limit, sent in pieces, as a client that does not know it yet would
        let left = 40;
        const more = () => {
          while (left > 0) {
            left--;
            if (!req.write(crypto.randomBytes(64 * 1024))) return req.once('drain', more);
          }
          req.end();
        };
        more();
      });
      expect(status).toBe(413);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
