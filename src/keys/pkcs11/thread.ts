import { SHARE_ENV, Worker } from 'node:worker_threads';
import { AppError } from '../../shared/errors.js';
import { workerEntry } from '../../runtime/index.js';
import { keysErrors } from '../errors.js';
import type { KeyHealth } from '../types.js';
import type { Notice, Reply, Request } from './protocol.js';

const WORKER_URL = workerEntry(import.meta.url, './worker', 'pkcs11-worker');

interface Pending {
  resolve(r: Extract<Reply, { ok: true }>): void;
  reject(e: Error): void;
  pid: number;
  op: string;
  /** how long this request may run once the worker is on it */
  timeoutMs: number;
}

/** Per provider: what the thread tells it outside of replies. */
export interface ThreadListener {
  notice(n: Notice): void;
  /** the engine's health, as of a reply */
  health(h: KeyHealth): void;
  /** the thread stopped answering (a call passed its deadline), or answers again */
  stalled(on: boolean): void;
}

/**
 * The PKCS#11 worker thread as the main thread sees it: ONE per process, because dlopen() gives
 * every user of a module the same library (one C_Initialize, one C_Finalize for all: see
 * library.ts), so the thread that calls into it must be one too. Started by the first provider and
 * kept, idle, for the next; it never keeps the process alive by itself.
 *
 * Every request has a deadline: the worker runs requests one at a time, in order, so the
 * request at the head of the queue is the one running, and it may run for its `timeoutMs` (counted
 * from when the previous one was answered, not from when it was sent: a burst of requests queues
 * without timing out as long as each one is answered in time). When the head passes its deadline,
 * an HSM call is hanging in the worker: every pending request fails with 503 KEYS_UNAVAILABLE and
 * is cancelled (the worker skips it, through a shared flag, once it can run again), and the thread
 * counts as stalled: requests fail at once, without queueing behind the hung call, until the
 * thread answers anything again (the hung call returned, e.g. the network HSM came back). A
 * blocking native call cannot be interrupted (it ignores Worker.terminate()): nothing waits for it.
 */
export class Pkcs11Thread {
  private static current: Pkcs11Thread | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<number, ThreadListener>();
  private nextRid = 1;
  private nextPid = 1;
  /** Date.now() since when a request has been overdue, or 0 */
  stalledSince = 0;
  private dead: Error | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** requests up to this rid were cancelled (shared with the worker) */
  private readonly cancelled = new Int32Array(new SharedArrayBuffer(4));

  static acquire(): Pkcs11Thread {
    if (!Pkcs11Thread.current || Pkcs11Thread.current.dead) Pkcs11Thread.current = new Pkcs11Thread();
    return Pkcs11Thread.current;
  }

  private constructor() {
    // SHARE_ENV: SoftHSM2 reads SOFTHSM2_CONF, and p11-kit's client P11_KIT_SERVER_ADDRESS, from the
    // process environment at C_Initialize
    this.worker = new Worker(WORKER_URL, {
      name: 'coffre-pkcs11',
      env: SHARE_ENV,
      workerData: { cancelled: this.cancelled },
    });
    this.worker.on('message', (m: Reply | Notice) => this.onMessage(m));
    const fail = (e: Error) => {
      this.dead = e;
      if (Pkcs11Thread.current === this) Pkcs11Thread.current = undefined;
      if (this.watchdog) clearTimeout(this.watchdog);
      for (const [rid, p] of this.pending) {
        this.pending.delete(rid);
        p.reject(
          keysErrors.unavailable(
            `the PKCS#11 worker thread stopped (${e.message})`,
            'see the log; Coffre starts a new one on the next provider',
            e,
          ),
        );
      }
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker.unref(); // after the listeners: adding a 'message' listener refs the worker's port again
  }

  register(l: ThreadListener): number {
    const pid = this.nextPid++;
    this.listeners.set(pid, l);
    return pid;
  }

  /** Forgets a provider. The thread stays (idle, unref'd: it never keeps the process alive) for the next one. */
  unregister(pid: number): void {
    this.listeners.delete(pid);
  }

  get stalled(): boolean {
    return this.stalledSince !== 0;
  }

  /** Sends one request; resolves with its reply or rejects with KEYS_UNAVAILABLE (see the class comment). */
  request(
    pid: number,
    op: Request['op'],
    payload: { args?: unknown[]; options?: unknown },
    timeoutMs: number,
    transfer: ArrayBuffer[] = [],
  ): Promise<Extract<Reply, { ok: true }>> {
    if (this.dead)
      return Promise.reject(keysErrors.unavailable(`the PKCS#11 worker thread stopped (${this.dead.message})`));
    if (this.stalled && op !== 'close') {
      const s = Math.round((Date.now() - this.stalledSince) / 100) / 10;
      return Promise.reject(
        keysErrors.unavailable(
          `the HSM has not answered for ${s} s (a PKCS#11 call is hanging)`,
          'check that the HSM is reachable; Coffre picks it up again by itself',
        ),
      );
    }
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      this.pending.set(rid, { resolve, reject, pid, op, timeoutMs });
      if (this.pending.size === 1) this.armWatchdog();
      this.worker.postMessage({ rid, pid, op, ...payload } as Request, transfer);
    });
  }

  /** Times the request at the head of the queue (the one the worker is running). */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    const head = this.pending.entries().next().value;
    if (!head) return;
    const [rid, p] = head;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      if (!this.pending.has(rid)) return;
      this.stalledSince = Date.now() - p.timeoutMs;
      // everything queued behind the hung call: failed now, skipped by the worker later
      Atomics.store(this.cancelled, 0, this.nextRid - 1);
      const all = [...this.pending.values()];
      this.pending.clear();
      for (const x of all)
        x.reject(
          keysErrors.unavailable(
            `the HSM did not answer ${p.op} within ${p.timeoutMs} ms (keys.callTimeoutMs)`,
            'check that the HSM is reachable; Coffre picks it up again by itself',
          ),
        );
      for (const l of this.listeners.values()) l.stalled(true);
    }, p.timeoutMs);
  }

  private onMessage(m: Reply | Notice): void {
    if (this.stalledSince) {
      this.stalledSince = 0;
      for (const l of this.listeners.values()) l.stalled(false);
    }
    if ('event' in m) {
      this.listeners.get(m.pid)?.notice(m);
      return;
    }
    if ('health' in m && m.health) this.listeners.get(m.pid)?.health(m.health);
    const p = this.pending.get(m.rid);
    if (!p) {
      // answered after its deadline: nobody waits for it; a data key in it is wiped
      if ('ok' in m && m.ok && m.value instanceof Uint8Array) m.value.fill(0);
      return;
    }
    this.pending.delete(m.rid);
    this.armWatchdog();
    if ('expired' in m)
      return p.reject(
        keysErrors.unavailable(
          'the HSM request expired before the PKCS#11 thread could run it',
          'check that the HSM is reachable',
        ),
      );
    if (m.ok) return p.resolve(m);
    const e = m.error;
    p.reject(
      new AppError(e.code, e.message, {
        httpStatus: e.httpStatus,
        expose: e.expose,
        exitCode: e.exitCode,
        ...(e.hint ? { hint: e.hint } : {}),
      }),
    );
  }
}
