import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { Client as SshClient, SFTPWrapper, Stats, FileEntryWithStats } from 'ssh2';
import { release } from '../../shared/buffers.js';
import { backupErrors, BackupError } from '../errors.js';
import { pathSegments, tempName, type BackupTarget, type TargetEntry } from './types.js';

/** ssh2 (~3 MB of heap) loads when an SFTP target is first used, not when the server starts. */
let ssh2: typeof import('ssh2') | undefined;
const newClient = (): SshClient =>
  new (ssh2 ??= createRequire(import.meta.url)('ssh2') as typeof import('ssh2')).Client();

/**
 * Whether ssh2 runs its ciphers in its native addon. Without it (an addon built against another
 * Node's headers fails to load, and ssh2 says nothing) every SSH packet gets a fresh OpenSSL
 * context from JavaScript: measured ~15 % more CPU for a backup with its verification, and
 * slower uploads. scripts/setup builds addons against the project's Node.
 */
export function sshNativeCrypto(): boolean {
  return (createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean })
    .bindingAvailable;
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02) */
const FX = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4 } as const;

export interface SftpOptions {
  host: string;
  port: number;
  username: string;
  /** absolute directory at the server */
  dir: string;
  /** pinned `SHA256:…` fingerprint of the server's host key */
  hostKey: string;
  privateKey?: Buffer;
  password?: string;
  connectTimeoutMs?: number;
  /** requests in flight and no answer for this long: the session is stalled (TARGET_STALLED) */
  stallTimeoutMs?: number;
  /** outstanding write/read requests per file (pipelining) */
  window?: number;
  /**
   * SFTP sessions opened on the one SSH connection; puts go to the least busy one. The server
   * runs one SFTP process per session and each serves its requests one at a time, so with one
   * session every part's fsync stops all other writes for its duration (measured: 129 fsyncs of
   * 2 MiB parts, 23 ms each, 3 s of a 256 MiB upload on a shared disk). Several sessions
   * let parts be written while another one is being synced.
   */
  sessions?: number;
}

/** default `sessions`: as many as the backup engine keeps parts in flight by default */
const PUT_SESSIONS = 3;

/** `SHA256:<base64, no padding>` of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Normalises `--host-key`: a `SHA256:…` fingerprint, or an OpenSSH public key line
 * (`ssh-ed25519 AAAA… [comment]`, e.g. from `ssh-keyscan` or /etc/ssh/ssh_host_*_key.pub).
 */
export function parseHostKey(v: string): string {
  const s = v.trim();
  if (/^SHA256:[A-Za-z0-9+/]{43}$/.test(s)) return s;
  const m =
    /^(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa|rsa-sha2-(?:256|512))\s+([A-Za-z0-9+/]+={0,2})(\s.*)?$/.exec(
      s,
    );
  if (m) return sshFingerprint(Buffer.from(m[2]!, 'base64'));
  throw backupErrors.usage(
    '--host-key must be a SHA256:… fingerprint or an OpenSSH public key line',
    'print it at the target with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`',
  );
}

/** 256-bit AEAD ciphers only, modern key exchange (same posture as the HTTPS side). */
const ALGORITHMS = {
  cipher: ['aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'],
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp521',
    'ecdh-sha2-nistp384',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group16-sha512',
  ],
  serverHostKey: [
    'ssh-ed25519',
    'ecdsa-sha2-nistp521',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp256',
    'rsa-sha2-512',
    'rsa-sha2-256',
  ],
  hmac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  compress: ['none'],
} as never;

/**
 * ssh2 gives the socket one fresh buffer per SSH packet (~32 KiB each, about 1.03 GiB per GiB
 * uploaded) and keeps no reference to it once written. Those still queued at a young collection
 * were only freed by mark-compacts (a hundred or more per GiB in the backup engine); so each whole packet buffer is detached (freed) as soon as the kernel took it.
 */
function freeWrittenPackets(sock: net.Socket): void {
  const write = sock.write;
  sock.write = function (this: net.Socket, data: unknown, ...rest: unknown[]): boolean {
    if (rest.length === 0 && Buffer.isBuffer(data))
      return (write as (d: Buffer, cb: () => void) => boolean).call(this, data, () => release(data));
    return (write as (...a: unknown[]) => boolean).call(this, data, ...rest);
  } as typeof sock.write;
}

/**
 * One SFTP session's health, for the requests waiting on it. They are told when it dies: its
 * socket closed, or its SFTP channel closed while the SSH connection stays up (the server's SFTP
 * process ended: OpenSSH's own `sftp` says "Connection closed" at once, and so must we, since a
 * request sent on a closed channel is never answered). Each waiter unsubscribes when it is
 * answered: a never-settling promise raced against every request kept one reaction (and what it
 * held: the answer, a whole read stream) per request for the connection's life; measured as a
 * steady RSS creep over a multi-GiB verification. It also counts the requests in flight and
 * when the last answer came, so a session that stops answering is declared stalled.
 */
class Session {
  /** `conn.ended`: why the session's connection ended, once it did (shared by its sessions) */
  constructor(private readonly conn: { ended: Error | null } = { ended: null }) {}
  private readonly waiters = new Set<(e: Error) => void>();
  dead: Error | null = null;
  private inflight = 0;
  private lastAnswer = 0;
  /** puts running on this session (to pick the least busy one) */
  puts = 0;
  /** calls `f` when (or, if already, now that) the session is lost; returns the unsubscribe */
  on(f: (e: Error) => void): () => void {
    if (this.dead) {
      const e = this.dead;
      queueMicrotask(() => f(e));
      return () => undefined;
    }
    this.waiters.add(f);
    return () => void this.waiters.delete(f);
  }
  /**
   * The error a request of this session ends with: once the connection ended, why it ended. ssh2
   * fails the requests still pending on a closed channel ("No response from server"), sometimes
   * before this session hears that the connection is gone.
   */
  cause(e: Error): Error {
    return this.conn.ended ?? e;
  }
  fire(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const f of ws) f(e);
  }
  /** a request was sent */
  sent(): void {
    if (this.inflight++ === 0) this.lastAnswer = performance.now();
  }
  /** a request was answered (or failed) */
  answered(): void {
    this.inflight--;
    this.lastAnswer = performance.now();
  }
  /** ms since requests in flight last saw an answer (0 when none is in flight) */
  waitingMs(): number {
    return this.inflight > 0 ? performance.now() - this.lastAnswer : 0;
  }
  get requests(): number {
    return this.inflight;
  }
}

/** one SSH connection: its first SFTP session (every request but puts) and all of them */
type Conn = { client: SshClient; sftp: SFTPWrapper; all: SFTPWrapper[] };

const p2 = <T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

/**
 * SFTP over SSH (ssh2): pinned host key, public-key or password authentication, pipelined reads
 * and writes, atomic puts (temporary name, fsync@openssh.com, size check, rename that never
 * replaces), reconnect after a lost connection.
 */
export class SftpTarget implements BackupTarget {
  readonly display: string;
  private conn: Promise<Conn> | null = null;
  /** the TCP socket under the current connection (ours, so writes can be corked) */
  private sock: net.Socket | null = null;
  private readonly window: number;
  private readonly stallMs: number;
  /** per session: told when it dies or stalls, so no request on it waits for ever */
  private readonly sessions = new WeakMap<SFTPWrapper, Session>();
  /** the current connection's sessions, once they are up */
  private live: Session[] = [];
  private readonly putSessions: number;

  constructor(private readonly o: SftpOptions) {
    this.display = `sftp://${o.username}@${o.host}:${o.port}${o.dir}`;
    this.window = o.window ?? 4;
    this.stallMs = o.stallTimeoutMs ?? 60_000;
    this.putSessions = Math.max(1, o.sessions ?? PUT_SESSIONS);
  }

  /** an SFTP request on `sftp`, failing if its session dies or stalls before the answer */
  private r<T>(sftp: SFTPWrapper, fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> {
    const session = this.sessions.get(sftp);
    if (!session) return p2<T>(fn);
    if (session.dead) return Promise.reject(session.dead);
    return new Promise<T>((resolve, reject) => {
      const off = session.on(reject);
      session.sent();
      fn((err, v) => {
        session.answered();
        off();
        if (err) reject(session.cause(err));
        else resolve(v);
      });
    });
  }

  /**
   * Watches one SFTP session of `client`: requests sent as it dies are never answered, so they
   * fail with it instead; its death (socket closed, channel closed, stall) ends the connection and
   * the next request reconnects, with fresh sessions.
   */
  private watch(
    client: SshClient,
    sock: net.Socket,
    sftp: SFTPWrapper,
    forget: () => void,
    conn: { ended: Error | null },
  ): void {
    const session = new Session(conn);
    // the first session to end ends the connection, and says why for all of them: a stalled
    // session's peers then fail as stalled too, not with the "connection lost" that follows
    const end = (e: Error) => {
      clearInterval(watchdog);
      conn.ended ??= e;
      session.fire(conn.ended);
      forget();
      client.end();
    };
    const lost = () => end(backupErrors.unreachable(this.display, 'connection lost'));
    const closed = () =>
      end(backupErrors.unreachable(this.display, 'the SFTP session was closed by the server (its SFTP process ended)'));
    const watchdog = setInterval(
      () => {
        const ms = session.waitingMs();
        if (ms >= this.stallMs) {
          end(
            backupErrors.stalled(
              this.display,
              `${session.requests} request(s) unanswered for ${Math.round(ms / 1000)} s`,
            ),
          );
          sock.destroy();
        }
      },
      Math.max(100, Math.min(1000, Math.floor(this.stallMs / 4))),
    );
    watchdog.unref();
    if (sock.destroyed) lost();
    else sock.once('close', lost);
    sftp.once('end', closed);
    sftp.once('close', closed);
    this.sessions.set(sftp, session);
    this.live.push(session);
  }

  private connect(): Promise<Conn> {
    if (this.conn && this.sock && !this.sock.destroyed && !this.live.some((s) => s.dead)) return this.conn;
    this.live = [];
    const p: Promise<Conn> = new Promise<Conn>((resolve, reject) => {
      const client = newClient();
      const state = { ended: null as Error | null };
      let presented = '';
      let settled = false;
      const done = (e: Error | null, v?: Conn) => {
        if (settled) return;
        settled = true;
        if (e) {
          client.end();
          reject(e);
        } else resolve(v!);
      };
      client.on('error', (e: Error & { level?: string; code?: string }) => {
        this.conn = null;
        if (!settled) {
          if (/Host denied/.test(e.message) || (presented && presented !== this.o.hostKey))
            done(backupErrors.hostKey(this.display, presented));
          else if (e.level === 'client-authentication') done(backupErrors.auth(this.display, 'no accepted method'));
          else done(backupErrors.unreachable(this.display, e.code ?? e.level ?? e.message, e));
        }
      });
      client.on('close', () => {
        this.conn = null;
        done(backupErrors.unreachable(this.display, 'connection closed'));
      });
      client.on('ready', () => {
        const subsystemTimer = setTimeout(
          () => done(backupErrors.unreachable(this.display, 'the SFTP subsystem did not start')),
          this.o.connectTimeoutMs ?? 20_000,
        );
        const all: SFTPWrapper[] = [];
        const open = () =>
          client.sftp((err, sftp) => {
            if (settled) return;
            if (err) {
              clearTimeout(subsystemTimer);
              return done(backupErrors.unreachable(this.display, `sftp subsystem refused: ${err.message}`, err));
            }
            this.watch(client, sock, sftp, () => this.conn === p && (this.conn = null), state);
            all.push(sftp);
            if (all.length < this.putSessions) return open();
            clearTimeout(subsystemTimer);
            done(null, { client, sftp: all[0]!, all });
          });
        open();
      });
      const sock = net.connect({ host: this.o.host, port: this.o.port });
      sock.setNoDelay(true);
      freeWrittenPackets(sock);
      this.sock = sock;
      const connectTimer = setTimeout(
        () => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
        this.o.connectTimeoutMs ?? 20_000,
      );
      sock.once('connect', () => clearTimeout(connectTimer));
      sock.once('error', (e: Error & { code?: string }) => {
        clearTimeout(connectTimer);
        this.conn = null;
        done(backupErrors.unreachable(this.display, e.code ?? e.message, e));
      });
      sock.once('close', () => {
        clearTimeout(connectTimer);
        if (this.conn === p) this.conn = null;
      });
      client.connect({
        sock,
        host: this.o.host,
        port: this.o.port,
        username: this.o.username,
        ...(this.o.privateKey ? { privateKey: this.o.privateKey } : {}),
        ...(this.o.password !== undefined ? { password: this.o.password } : {}),
        tryKeyboard: false,
        readyTimeout: this.o.connectTimeoutMs ?? 20_000,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        algorithms: ALGORITHMS,
        hostVerifier: (key: Buffer) => {
          presented = sshFingerprint(key);
          return presented === this.o.hostKey;
        },
      });
    });
    this.conn = p;
    p.catch(() => {
      if (this.conn === p) this.conn = null;
    });
    return p;
  }

  private abs(p: string, allowRoot = false): string {
    return path.posix.join(this.o.dir, ...pathSegments(p, allowRoot));
  }

  /** maps an SFTP status error */
  private fail(e: unknown, p: string): never {
    if (e instanceof BackupError) throw e;
    const err = e as Error & { code?: number | string };
    if (err.code === FX.NO_SUCH_FILE) throw backupErrors.notFound(this.display, p);
    if (err.code === FX.PERMISSION_DENIED) throw backupErrors.io(this.display, `permission denied on ${p}`, e);
    if (typeof err.code === 'number') throw backupErrors.io(this.display, `${err.message} on ${p}`, e);
    // not an SFTP status: the channel or the connection went away
    this.conn = null;
    const why =
      err.message === 'No response from server'
        ? 'the SFTP session was closed by the server (its SFTP process ended)'
        : err.message;
    throw backupErrors.unreachable(this.display, `${why} on ${p}`, e);
  }

  /** mkdir -p, the target's own directory included (created on first use, like `restic init`). */
  private async mkdirp(sftp: SFTPWrapper, dir: string): Promise<void> {
    const isDir = (p: string) =>
      this.r<Stats>(sftp, (cb) => sftp.stat(p, cb)).then(
        (st) => st.isDirectory(),
        () => false,
      );
    if (await isDir(dir)) return;
    let cur = '';
    for (const seg of dir.split('/').filter(Boolean)) {
      cur = `${cur}/${seg}`;
      if (await isDir(cur)) continue;
      try {
        await this.r<void>(sftp, (cb) => sftp.mkdir(cur, { mode: 0o700 }, (e) => cb(e, undefined)));
      } catch (e) {
        if (!(await isDir(cur))) throw e;
      }
    }
  }

  /** Writes `data` at offset 0.. with up to `window` outstanding requests. */
  private async writeAll(sftp: SFTPWrapper, handle: Buffer, data: Buffer | Readable): Promise<number> {
    const chunk = (sftp as unknown as { _maxWriteLen: number })._maxWriteLen || 32_768;
    let pos = 0;
    let inflight = 0;
    let error: unknown = null;
    let wake: (() => void) | null = null;
    const signal = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const sock = this.sock;
    const send = (buf: Buffer) => {
      const at = pos;
      pos += buf.length;
      inflight++;
      // one write request is several SSH packets: corked, they leave in one system call
      if (sock && !sock.writableCorked) {
        sock.cork();
        process.nextTick(() => sock.uncork());
      }
      session?.sent();
      sftp.write(handle, buf, 0, buf.length, at, (e) => {
        session?.answered();
        inflight--;
        if (e && !error) error = session?.cause(e) ?? e;
        signal();
      });
    };
    const session = this.sessions.get(sftp);
    if (session?.dead) throw session.dead;
    const offDeath = session?.on((e) => {
      error ??= e;
      signal();
      // a put waiting on its source, not on the target, fails now too (without an 'error' event
      // the caller may not listen for: the loop below throws the session's error)
      if (!Buffer.isBuffer(data)) data.destroy();
    });
    const waitBelow = async (n: number) => {
      while (inflight > n && !error) await new Promise<void>((r) => (wake = r));
      if (error) throw error;
    };
    try {
      if (Buffer.isBuffer(data)) {
        for (let off = 0; off < data.length; off += chunk) {
          await waitBelow(this.window - 1);
          send(data.subarray(off, Math.min(off + chunk, data.length)));
        }
      } else {
        let pending: Buffer[] = [];
        let pendingLen = 0;
        for await (const c of data as AsyncIterable<Buffer>) {
          pending.push(c);
          pendingLen += c.length;
          while (pendingLen >= chunk) {
            const all = Buffer.concat(pending, pendingLen);
            await waitBelow(this.window - 1);
            send(all.subarray(0, chunk));
            pending = [all.subarray(chunk)];
            pendingLen = all.length - chunk;
          }
        }
        if (pendingLen) {
          await waitBelow(this.window - 1);
          send(Buffer.concat(pending, pendingLen));
        }
      }
      await waitBelow(0);
      return pos;
    } catch (e) {
      throw error ?? e;
    } finally {
      offDeath?.();
    }
  }

  async put(p: string, data: Buffer | Readable): Promise<{ size: number }> {
    const final = this.abs(p);
    const { all } = await this.connect();
    // the least busy session: another put's fsync does not hold this one's writes
    const sftp = all.reduce((a, b) => ((this.sessions.get(b)?.puts ?? 0) < (this.sessions.get(a)?.puts ?? 0) ? b : a));
    const session = this.sessions.get(sftp);
    if (session) session.puts++;
    try {
      return await this.putOn(sftp, p, final, data);
    } finally {
      if (session) session.puts--;
    }
  }

  private async putOn(sftp: SFTPWrapper, p: string, final: string, data: Buffer | Readable): Promise<{ size: number }> {
    const dir = path.posix.dirname(final);
    const tmp = path.posix.join(dir, tempName(path.posix.basename(final)));
    let handle: Buffer | null = null;
    try {
      await this.mkdirp(sftp, dir);
      handle = await this.r<Buffer>(sftp, (cb) => sftp.open(tmp, 'wx', { mode: 0o600 }, cb));
      const sent = await this.writeAll(sftp, handle, data);
      await this.r<void>(sftp, (cb) => sftp.ext_openssh_fsync(handle!, (e) => cb(e, undefined))).catch((e: Error) => {
        // servers without fsync@openssh.com: the size check and the read-back verify remain
        if (!/not supported/i.test(e.message)) throw e;
      });
      const st = await this.r<Stats>(sftp, (cb) => sftp.fstat(handle!, cb));
      await this.r<void>(sftp, (cb) => sftp.close(handle!, (e) => cb(e, undefined)));
      handle = null;
      if (st.size !== sent)
        throw backupErrors.io(
          this.display,
          `size check failed for ${p}: sent ${sent} bytes, the target holds ${st.size}`,
        );
      await this.renameNoReplace(sftp, tmp, final, p);
      return { size: sent };
    } catch (e) {
      if (handle) sftp.close(handle, () => undefined);
      if (this.conn)
        await this.r<void>(sftp, (cb) => sftp.unlink(tmp, (er) => cb(er, undefined))).catch(() => undefined);
      if ((e as Error & { code?: unknown }).code === FX.FAILURE) {
        // OpenSSH maps ENOSPC to a generic failure: tell a full disk from other failures
        const space = await this.space().catch(() => null);
        if (space && space.free < (Buffer.isBuffer(data) ? data.length : 1 << 20))
          throw backupErrors.full(this.display, `${space.free} bytes free`);
      }
      this.fail(e, p);
    }
  }

  /** SSH_FXP_RENAME: OpenSSH links then unlinks files, so an existing name is never replaced. */
  private async renameNoReplace(sftp: SFTPWrapper, from: string, to: string, label: string): Promise<void> {
    const exists = await this.r<Stats>(sftp, (cb) => sftp.lstat(to, cb)).then(
      () => true,
      () => false,
    );
    if (exists) throw backupErrors.exists(this.display, label);
    await this.r<void>(sftp, (cb) => sftp.rename(from, to, (e) => cb(e, undefined)));
  }

  async get(p: string): Promise<Readable> {
    const f = this.abs(p);
    const { sftp } = await this.connect();
    let handle: Buffer;
    let size: number;
    try {
      handle = await this.r<Buffer>(sftp, (cb) => sftp.open(f, 'r', cb));
      size = (await this.r<Stats>(sftp, (cb) => sftp.fstat(handle, cb))).size;
    } catch (e) {
      this.fail(e, p);
    }
    return this.readPipelined(sftp, handle, size, p);
  }

  /** A Readable that keeps `window` read requests in flight and emits the bytes in order. */
  private readPipelined(sftp: SFTPWrapper, handle: Buffer, size: number, label: string): Readable {
    const chunk = (sftp as unknown as { _maxReadLen: number })._maxReadLen || 32_768;
    let next = 0; // next offset to request
    const done = new Map<number, Buffer>(); // offset → bytes, out of order
    let emitAt = 0;
    let inflight = 0;
    let closed = false;
    let ended = false;
    const self = this;
    const closeHandle = () => {
      if (!closed) {
        closed = true;
        sftp.close(handle, () => undefined);
      }
    };
    const session = this.sessions.get(sftp);
    const offDeath = session?.on((e) => {
      if (!ended) stream.destroy(e);
    });
    const stream = new Readable({
      highWaterMark: 1 << 20,
      read() {
        pump();
      },
      destroy(err, cb) {
        offDeath?.();
        closeHandle();
        cb(err);
      },
    });
    const flush = () => {
      let more = true;
      while (done.has(emitAt)) {
        const b = done.get(emitAt)!;
        done.delete(emitAt);
        emitAt += b.length;
        more = stream.push(b);
      }
      if (emitAt >= size && inflight === 0 && !ended) {
        ended = true;
        offDeath?.();
        closeHandle();
        stream.push(null);
      }
      return more;
    };
    const request = (at: number, len: number) => {
      inflight++;
      const buf = Buffer.allocUnsafe(len);
      session?.sent();
      sftp.read(handle, buf, 0, len, at, (e, n) => {
        session?.answered();
        inflight--;
        if (e || !n) {
          stream.destroy(
            e ? self.mapError(session?.cause(e) ?? e, label) : backupErrors.io(self.display, `${label} ended early`),
          );
          return;
        }
        done.set(at, buf.subarray(0, n));
        if (n < len) request(at + n, len - n); // short read: ask for the rest
        if (flush()) pump();
      });
    };
    const pump = () => {
      while (inflight < self.window && next < size) {
        const len = Math.min(chunk, size - next);
        request(next, len);
        next += len;
      }
      if (size === 0) flush();
    };
    return stream;
  }

  private mapError(e: unknown, p: string): Error {
    try {
      this.fail(e, p);
    } catch (err) {
      return err as Error;
    }
  }

  async list(dir: string): Promise<TargetEntry[]> {
    const d = this.abs(dir, true);
    const { sftp } = await this.connect();
    let ents: FileEntryWithStats[];
    try {
      ents = await this.r<FileEntryWithStats[]>(sftp, (cb) => sftp.readdir(d, cb));
    } catch (e) {
      if ((e as { code?: number }).code === FX.NO_SUCH_FILE) return [];
      this.fail(e, dir);
    }
    return ents
      .filter((e) => e.attrs.isFile() || e.attrs.isDirectory())
      .map((e) => ({
        name: e.filename,
        type: e.attrs.isFile() ? ('file' as const) : ('dir' as const),
        size: e.attrs.isFile() ? e.attrs.size : 0,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.abs(from);
    const b = this.abs(to);
    const { sftp } = await this.connect();
    try {
      await this.mkdirp(sftp, path.posix.dirname(b));
      await this.renameNoReplace(sftp, a, b, to);
    } catch (e) {
      this.fail(e, `${from} → ${to}`);
    }
  }

  async remove(p: string): Promise<void> {
    const f = this.abs(p);
    const { sftp } = await this.connect();
    const rm = async (x: string): Promise<void> => {
      let st: Stats;
      try {
        st = await this.r<Stats>(sftp, (cb) => sftp.lstat(x, cb));
      } catch (e) {
        if ((e as { code?: number }).code === FX.NO_SUCH_FILE) return;
        throw e;
      }
      if (st.isDirectory()) {
        const ents = await this.r<FileEntryWithStats[]>(sftp, (cb) => sftp.readdir(x, cb));
        for (const e of ents) await rm(path.posix.join(x, e.filename));
        await this.r<void>(sftp, (cb) => sftp.rmdir(x, (e) => cb(e, undefined)));
      } else {
        await this.r<void>(sftp, (cb) => sftp.unlink(x, (e) => cb(e, undefined)));
      }
    };
    try {
      await rm(f);
    } catch (e) {
      this.fail(e, p);
    }
  }

  async space(): Promise<{ free: number; total: number } | null> {
    const { sftp } = await this.connect();
    try {
      const s = await this.r<{ f_frsize: number; f_bavail: number; f_blocks: number; f_bsize: number }>(sftp, (cb) =>
        sftp.ext_openssh_statvfs(this.o.dir, cb as never),
      );
      const unit = Number(s.f_frsize || s.f_bsize);
      return { free: Number(s.f_bavail) * unit, total: Number(s.f_blocks) * unit };
    } catch (e) {
      if (/not supported/i.test((e as Error).message)) return null;
      this.fail(e, '.');
    }
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (!c) return;
    const { client } = await c.catch(() => ({ client: null }));
    if (client)
      await new Promise<void>((r) => {
        client.once('close', () => r());
        client.end();
        setTimeout(r, 2000).unref();
      });
  }
}

/**
 * Connects only to learn the server's host key fingerprint (refusing it, so nothing is
 * authenticated): what `target add` shows when --host-key is missing, to be checked out of band.
 */
export function probeHostKey(url: string, timeoutMs = 10_000): Promise<string> {
  const u = parseSftpUrl(url);
  return new Promise((resolve, reject) => {
    const c = newClient();
    let presented = '';
    c.on('error', () => (presented ? resolve(presented) : reject(backupErrors.unreachable(url, 'no answer'))));
    c.on('close', () => (presented ? resolve(presented) : reject(backupErrors.unreachable(url, 'closed'))));
    c.connect({
      host: u.host,
      port: u.port,
      username: u.username,
      readyTimeout: timeoutMs,
      algorithms: ALGORITHMS,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return false;
      },
    });
  });
}

/** Builds an SFTP target from a registered URL and the auth files it names. */
export function sftpFromUrl(
  url: string,
  o: {
    hostKey: string;
    identityFile?: string | null;
    passwordFile?: string | null;
    readSecret: (file: string, what: string) => string;
    connectTimeoutMs?: number;
    stallTimeoutMs?: number;
  },
): SftpTarget {
  const u = parseSftpUrl(url);
  let privateKey: Buffer | undefined;
  if (o.identityFile) {
    try {
      privateKey = fs.readFileSync(o.identityFile);
    } catch (e) {
      throw backupErrors.usage(
        `cannot read the identity file ${o.identityFile} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  const password = o.passwordFile ? o.readSecret(o.passwordFile, 'backup target password file') : undefined;
  if (!privateKey && password === undefined)
    throw backupErrors.usage('an SFTP target needs --identity FILE (or a password file)');
  return new SftpTarget({
    ...u,
    hostKey: o.hostKey,
    ...(privateKey ? { privateKey } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    ...(o.stallTimeoutMs ? { stallTimeoutMs: o.stallTimeoutMs } : {}),
  });
}

/** `sftp://user@host[:port]/abs/dir`; a password in the URL is refused (secrets never in URLs). */
export function parseSftpUrl(url: string): { host: string; port: number; username: string; dir: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw backupErrors.usage(
      `not a URL: ${JSON.stringify(url.replace(/:[^@/]*@/, ':***@'))}`,
      'use sftp://user@host:port/dir or file:///dir',
    );
  }
  if (u.protocol !== 'sftp:') throw backupErrors.usage(`expected an sftp:// URL, got ${u.protocol}`);
  if (u.password) throw backupErrors.usage('a password in the URL is refused: pass a password file instead');
  if (!u.username) throw backupErrors.usage('the sftp URL needs a user: sftp://user@host/dir');
  if (!u.hostname) throw backupErrors.usage('the sftp URL needs a host');
  const dir = decodeURIComponent(u.pathname).replace(/\/+$/, '');
  if (!dir.startsWith('/') || dir.split('/').some((s) => s === '..'))
    throw backupErrors.usage('the sftp URL needs an absolute directory: sftp://user@host/srv/coffre');
  if (u.search || u.hash) throw backupErrors.usage('the sftp URL must not have a query or fragment');
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 22,
    username: decodeURIComponent(u.username),
    dir,
  };
}
