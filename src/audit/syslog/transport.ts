import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';
import type { AuditSyslogConfig } from '../../config/sections/audit.js';
import { AppError } from '../../shared/errors.js';
import { frame } from './format.js';

/**
 * One connection to the collector. `send` resolves once the messages were handed to the kernel
 * (TCP/TLS) or sent (UDP); it rejects when the connection broke. Neither TCP nor TLS syslog has
 * acknowledgements, so the forwarder keeps its own confirmation window (see forwarder.ts).
 */
export interface SyslogConnection {
  send(messages: readonly string[]): Promise<void>;
  /** resolves (with the error, if any) when the connection is gone */
  readonly closed: Promise<Error | undefined>;
  close(): void;
}

export interface ConnectOptions {
  cfg: AuditSyslogConfig;
  timeoutMs?: number;
}

const unreachable = (cfg: AuditSyslogConfig, why: string) =>
  new AppError(
    'SYSLOG_UNREACHABLE',
    `syslog collector ${cfg.transport}://${cfg.host}:${cfg.port} unreachable: ${why}`,
    { hint: 'check audit.syslog and the collector' },
  );

function streamConnection(sock: net.Socket): SyslogConnection {
  let failure: Error | undefined;
  let ending = false;
  let peerEnded = false;
  const closed = new Promise<Error | undefined>((resolve) => {
    sock.on('error', (e) => {
      failure = e;
    });
    // clean only when we ended first and the collector then closed its side without error
    sock.on('close', () =>
      resolve(failure ?? (ending && peerEnded ? undefined : new Error('connection closed by the collector'))),
    );
  });
  sock.on('data', () => undefined); // collectors do not talk; drain anything they send
  sock.on('end', () => {
    peerEnded = true;
    sock.destroy();
  });
  return {
    send: (messages) =>
      new Promise<void>((resolve, reject) => {
        if (sock.destroyed || !sock.writable) return reject(failure ?? new Error('connection closed'));
        sock.write(Buffer.concat(messages.map(frame)), (e) => (e ? reject(e) : resolve()));
      }),
    closed,
    close: () => {
      ending = true;
      sock.end();
      setTimeout(() => sock.destroy(), 2000).unref();
    },
  };
}

export async function connectSyslog(o: ConnectOptions): Promise<SyslogConnection> {
  const { cfg } = o;
  const timeoutMs = o.timeoutMs ?? 10_000;
  if (cfg.transport === 'udp') {
    const sock = dgram.createSocket(net.isIPv6(cfg.host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (e) => reject(unreachable(cfg, e.message)));
      sock.connect(cfg.port, cfg.host, () => resolve());
    });
    let failure: Error | undefined;
    const closed = new Promise<Error | undefined>((resolve) => {
      sock.on('error', (e) => {
        failure = e;
        sock.close();
      });
      sock.on('close', () => resolve(failure));
    });
    return {
      send: async (messages) => {
        for (const m of messages) {
          await new Promise<void>((resolve, reject) =>
            sock.send(Buffer.from(m, 'utf8'), (e) => (e ? reject(e) : resolve())),
          );
        }
      },
      closed,
      close: () => {
        try {
          sock.close();
        } catch {
          /* already closed */
        }
      },
    };
  }
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    let s: net.Socket;
    const timer = setTimeout(() => {
      s.destroy();
      reject(unreachable(cfg, `no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(unreachable(cfg, (e as NodeJS.ErrnoException).code ?? e.message));
    };
    if (cfg.transport === 'tls') {
      s = tls.connect({
        host: cfg.host,
        port: cfg.port,
        servername: cfg.serverName ?? (net.isIP(cfg.host) ? undefined : cfg.host),
        ...(cfg.caFile ? { ca: fs.readFileSync(cfg.caFile) } : {}),
        ...(cfg.certFile ? { cert: fs.readFileSync(cfg.certFile) } : {}),
        ...(cfg.keyFile ? { key: fs.readFileSync(cfg.keyFile) } : {}),
        ...(cfg.serverName
          ? {
              checkServerIdentity: (_h: string, cert: tls.PeerCertificate) =>
                tls.checkServerIdentity(cfg.serverName!, cert),
            }
          : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
      });
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.off('error', fail);
        resolve(s);
      });
    } else {
      s = net.connect({ host: cfg.host, port: cfg.port });
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', fail);
        resolve(s);
      });
    }
    s.once('error', fail);
  });
  sock.setKeepAlive(true, 10_000);
  sock.setNoDelay(true);
  return streamConnection(sock);
}
