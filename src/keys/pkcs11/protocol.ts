import type { KeyHealth } from '../types.js';
import type { EngineOptions } from './engine.js';

/**
 * Messages between a provider (main thread, ./provider.ts) and the PKCS#11 worker thread
 * (./host.ts). Plain data only; buffers arrive as Uint8Array. A request whose rid is at or below
 * the shared `cancelled` counter is answered `expired` unexecuted (its caller already got 503).
 */
export type EngineOp =
  | 'wrap'
  | 'unwrap'
  | 'rewrap'
  | 'mac'
  | 'verifyMac'
  | 'destroyMacKey'
  | 'createMacKey'
  | 'signingPublicKey'
  | 'signDigest'
  | 'signingKeyAttributes'
  | 'ready'
  | 'token'
  | 'kekVersions'
  | 'currentKekVersion'
  | 'kekAttributes'
  | 'createKekVersion'
  | 'destroyKekVersion'
  | 'ping'
  | 'mechanism'
  | 'probe'
  | 'stats';

export type Request =
  | { rid: number; pid: number; op: 'open'; options: EngineOptions }
  | { rid: number; pid: number; op: 'close' }
  | { rid: number; pid: number; op: EngineOp; args: unknown[] };

export interface SerializedError {
  code: string;
  message: string;
  hint?: string | undefined;
  httpStatus: number;
  exitCode: 1 | 2;
  expose: boolean;
}

export type Reply =
  | { rid: number; pid: number; ok: true; value: unknown; health: KeyHealth }
  | { rid: number; pid: number; ok: false; error: SerializedError; health: KeyHealth | undefined }
  | { rid: number; pid: number; expired: true };

export type Notice =
  | { event: 'changed'; pid: number; health: KeyHealth }
  | { event: 'kek-missing'; pid: number; label: string; health: KeyHealth }
  | { event: 'log'; pid: number; level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string };
