/**
 * The PKCS#11 worker thread (started by ./thread.ts through ./worker.ts): it owns every PKCS#11
 * module this process loads and every provider's engine, and runs their calls one at a time.
 * pkcs11js's calls block (connect, login, find, and every call of a network HSM's client), so
 * they run here, never on the event loop; the main thread puts a deadline on each request.
 * Data keys cross as copies: a key sent here is wiped after use, a key sent back is moved
 * (transferred) and the worker's copy wiped.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isAppError } from '../../shared/errors.js';
import type { WrappedKey } from '../types.js';
import { Pkcs11Engine } from './engine.js';
import type { Notice, Reply, Request, SerializedError } from './protocol.js';

const port = parentPort!;
const engines = new Map<number, Pkcs11Engine>();
/** requests up to this rid were cancelled by the main thread (they passed their deadline there) */
const cancelled = (workerData as { cancelled: Int32Array }).cancelled;
const buf = (u: unknown) =>
  u instanceof Uint8Array ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : (u as Buffer);
const wrappedIn = (w: unknown): WrappedKey => {
  const x = w as WrappedKey;
  return { kekLabel: x.kekLabel, kekVersion: x.kekVersion, mechanism: x.mechanism, wrapped: buf(x.wrapped) };
};

/** An exact-size copy, moved to the main thread (a view into a pooled buffer would clone the whole slab). */
const moved = (b: Buffer): { value: Uint8Array; transfer: ArrayBuffer[] } => {
  const out = new Uint8Array(b);
  return { value: out, transfer: [out.buffer] };
};
const wrappedOut = (w: WrappedKey): { value: unknown; transfer: ArrayBuffer[] } => {
  const { value, transfer } = moved(w.wrapped);
  return { value: { ...w, wrapped: value }, transfer };
};

const serialize = (e: unknown): SerializedError =>
  isAppError(e)
    ? {
        code: e.code,
        message: e.message,
        hint: e.hint,
        httpStatus: e.httpStatus,
        exitCode: e.exitCode,
        expose: e.expose,
      }
    : {
        code: 'KEYS_UNAVAILABLE',
        message: `the PKCS#11 worker failed (${(e as Error)?.message ?? String(e)})`,
        httpStatus: 503,
        exitCode: 1,
        expose: true,
      };

function call(engine: Pkcs11Engine, op: string, args: unknown[]): { value: unknown; transfer: ArrayBuffer[] } {
  switch (op) {
    case 'wrap': {
      const dek = buf(args[0]);
      try {
        return wrappedOut(engine.wrap(dek));
      } finally {
        dek.fill(0);
      }
    }
    case 'unwrap': {
      const dek = engine.unwrap(wrappedIn(args[0]));
      try {
        return moved(dek);
      } finally {
        dek.fill(0);
      }
    }
    case 'rewrap':
      return wrappedOut(engine.rewrap(wrappedIn(args[0]), args[1] as number));
    case 'mac':
      return moved(engine.mac(args[0] as string, buf(args[1]), args[2] !== false));
    case 'signingPublicKey':
      return moved(engine.signingPublicKey(args[0] as string, args[1] === true));
    case 'signDigest':
      return moved(engine.signDigest(args[0] as string, buf(args[1])));
    case 'signingKeyAttributes':
      return { value: engine.signingKeyAttributes(args[0] as string), transfer: [] };
    case 'createMacKey':
      return { value: engine.createMacKey(args[0] as string), transfer: [] };
    case 'destroyMacKey':
      return { value: engine.destroyMacKey(args[0] as string), transfer: [] };
    case 'verifyMac':
      return { value: engine.verifyMac(args[0] as string, buf(args[1]), buf(args[2])), transfer: [] };
    case 'ready':
      return { value: engine.ready(), transfer: [] };
    case 'token':
      return { value: engine.token(), transfer: [] };
    case 'kekVersions':
      return { value: engine.kekVersions(), transfer: [] };
    case 'currentKekVersion':
      return { value: engine.currentKekVersion(), transfer: [] };
    case 'kekAttributes':
      return { value: engine.kekAttributes(args[0] as number), transfer: [] };
    case 'createKekVersion':
      return { value: engine.createKekVersion(args[0] as number), transfer: [] };
    case 'destroyKekVersion':
      return { value: engine.destroyKekVersion(args[0] as number), transfer: [] };
    case 'ping':
      return { value: engine.ping(), transfer: [] };
    case 'mechanism':
      return { value: engine.mechanism(), transfer: [] };
    case 'probe':
      return { value: engine.probe(), transfer: [] };
    case 'stats':
      return { value: engine.stats(), transfer: [] };
    default:
      throw new Error(`unknown operation ${op}`);
  }
}

port.on('message', (m: Request) => {
  if (m.rid <= Atomics.load(cancelled, 0) && m.op !== 'close') {
    port.postMessage({ rid: m.rid, pid: m.pid, expired: true } satisfies Reply);
    return;
  }
  let engine = engines.get(m.pid);
  try {
    if (m.op === 'open') {
      const pid = m.pid;
      const notify = (n: Notice) => port.postMessage(n);
      engine = new Pkcs11Engine(m.options, {
        log: (level, obj, msg) => notify({ event: 'log', pid, level, obj, msg }),
        changed: () => notify({ event: 'changed', pid, health: engines.get(pid)!.health() }),
        kekMissing: (label) => notify({ event: 'kek-missing', pid, label, health: engines.get(pid)!.health() }),
      });
      engines.set(pid, engine);
      engine.open();
      port.postMessage({ rid: m.rid, pid, ok: true, value: undefined, health: engine.health() } satisfies Reply);
      return;
    }
    if (!engine) throw new Error(`no provider ${m.pid}`);
    if (m.op === 'close') {
      engines.delete(m.pid);
      engine.close();
      port.postMessage({ rid: m.rid, pid: m.pid, ok: true, value: undefined, health: engine.health() } satisfies Reply);
      return;
    }
    const { value, transfer } = call(engine, m.op, m.args);
    port.postMessage({ rid: m.rid, pid: m.pid, ok: true, value, health: engine.health() } satisfies Reply, transfer);
  } catch (e) {
    port.postMessage({
      rid: m.rid,
      pid: m.pid,
      ok: false,
      error: serialize(e),
      health: engine?.health(),
    } satisfies Reply);
  }
});
