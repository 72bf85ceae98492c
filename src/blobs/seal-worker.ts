/**
 * Entry of the sealing worker thread (./sealer.ts starts it). It knows nothing of the blob format:
 * for each stream it holds a data key, the AAD and, when asked, a running SHA-256 of the
 * plaintext; each request seals one chunk (`seal`) or opens one (`unseal`: ciphertext ‖ tag in,
 * plaintext out only once the tag verified, then hashed) under the nonce the main thread
 * computed. Buffers come and go by transfer. Node built-ins only, erasable types only: it runs compiled, or as TypeScript
 * in the tests.
 */
import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';

interface Stream {
  key: crypto.KeyObject;
  aad: Buffer;
  hash: crypto.Hash | undefined;
}

export type SealRequest =
  | { op: 'open'; sid: number; key: Uint8Array; aad: Uint8Array; sha256: boolean }
  | { op: 'seal'; sid: number; rid: number; input: ArrayBuffer; length: number; nonce: Uint8Array }
  /** `input` holds the ciphertext [0, length) then its 16-byte tag */
  | { op: 'unseal'; sid: number; rid: number; input: ArrayBuffer; length: number; nonce: Uint8Array }
  | { op: 'end'; sid: number; rid: number }
  | { op: 'drop'; sid: number };

export type SealReply =
  | { rid: number; input: ArrayBuffer; out: ArrayBuffer; tag: Uint8Array }
  | { rid: number; plain: ArrayBuffer }
  | { rid: number; sha256: string | undefined }
  | { rid: number; error: string; input?: ArrayBuffer; auth?: true };

const streams = new Map<number, Stream>();
const port = parentPort!;

/** `b` as a buffer that owns all of its ArrayBuffer (so it can be transferred), copying if needed. */
function own(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

port.on('message', (m: SealRequest) => {
  switch (m.op) {
    case 'open': {
      const raw = Buffer.from(m.key.buffer, m.key.byteOffset, m.key.length);
      streams.set(m.sid, {
        key: crypto.createSecretKey(raw),
        aad: Buffer.from(m.aad),
        hash: m.sha256 ? crypto.createHash('sha256') : undefined,
      });
      raw.fill(0);
      return;
    }
    case 'seal': {
      const s = streams.get(m.sid);
      if (!s)
        return port.postMessage({ rid: m.rid, error: 'unknown sealing stream', input: m.input } satisfies SealReply, [
          m.input,
        ]);
      try {
        const plain = Buffer.from(m.input, 0, m.length);
        s.hash?.update(plain);
        const c = crypto.createCipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: 16 });
        c.setAAD(s.aad);
        const out = own(c.update(plain));
        c.final();
        const tag = new Uint8Array(c.getAuthTag());
        const reply: SealReply = { rid: m.rid, input: m.input, out: out.buffer as ArrayBuffer, tag };
        port.postMessage(reply, [m.input, reply.out]);
      } catch (e) {
        port.postMessage({ rid: m.rid, error: (e as Error).message, input: m.input } satisfies SealReply, [m.input]);
      }
      return;
    }
    case 'unseal': {
      const s = streams.get(m.sid);
      if (!s) return port.postMessage({ rid: m.rid, error: 'unknown sealing stream' } satisfies SealReply);
      const input = Buffer.from(m.input);
      let plain: Buffer;
      try {
        const d = crypto.createDecipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: 16 });
        d.setAAD(s.aad);
        d.setAuthTag(input.subarray(m.length, m.length + 16));
        plain = own(d.update(input.subarray(0, m.length)));
        d.final();
      } catch {
        // nothing of a chunk that fails is handed back
        return port.postMessage({ rid: m.rid, error: 'authentication failed', auth: true } satisfies SealReply);
      } finally {
        (m.input as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0); // the ciphertext's memory, freed now
      }
      s.hash?.update(plain);
      const reply: SealReply = { rid: m.rid, plain: plain.buffer as ArrayBuffer };
      port.postMessage(reply, [reply.plain]);
      return;
    }
    case 'end': {
      const s = streams.get(m.sid);
      streams.delete(m.sid);
      port.postMessage({ rid: m.rid, sha256: s?.hash?.digest('hex') } satisfies SealReply);
      return;
    }
    case 'drop':
      streams.delete(m.sid);
      return;
  }
});
