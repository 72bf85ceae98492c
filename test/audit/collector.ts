import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';

/**
 * A real syslog collector for tests: TLS (RFC 5425) or TCP (RFC 6587 octet counting) or UDP
 * (RFC 5426). Keeps every message received, in order.
 */
export class TestCollector {
  readonly messages: string[] = [];
  private server: net.Server | null = null;
  private udp: dgram.Socket | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly mode: 'tls' | 'tcp' | 'udp',
    private readonly tlsOpts: { key: string; cert: string } | undefined = undefined,
  ) {}

  async start(port = this.port): Promise<number> {
    if (this.mode === 'udp') {
      const s = dgram.createSocket('udp4');
      s.on('message', (m) => this.messages.push(m.toString('utf8')));
      await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
      this.udp = s;
      this.port = s.address().port;
      return this.port;
    }
    const onConn = (sock: net.Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) break;
          const len = Number(buf.subarray(0, sp).toString('ascii'));
          if (!Number.isInteger(len) || len <= 0)
            throw new Error(`bad frame length: ${buf.subarray(0, sp).toString()}`);
          if (buf.length < sp + 1 + len) break;
          this.messages.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
          buf = buf.subarray(sp + 1 + len);
        }
      });
      sock.on('end', () => sock.end());
    };
    const server =
      this.mode === 'tls'
        ? tls.createServer({ ...this.tlsOpts!, minVersion: 'TLSv1.2' }, onConn)
        : net.createServer(onConn);
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** The collector goes down hard: connections reset, port closed. */
  async stop(): Promise<void> {
    if (this.udp) {
      await new Promise<void>((r) => this.udp!.close(() => r()));
      this.udp = null;
    }
    if (this.server) {
      for (const s of this.sockets) s instanceof tls.TLSSocket ? s.destroy() : s.resetAndDestroy();
      await new Promise<void>((r) => this.server!.close(() => r()));
      this.server = null;
    }
  }

  async waitFor(pred: (msgs: string[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.messages)) {
      if (Date.now() > end)
        throw new Error(`collector: condition not met within ${timeoutMs} ms (${this.messages.length} messages)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export interface Parsed5424 {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Record<string, Record<string, string>>;
  msg: string;
}

/** A strict RFC 5424 parser (header, structured data with escapes, optional BOM). Throws when malformed. */
export function parse5424(line: string): Parsed5424 {
  const m = /^<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(line);
  if (!m) throw new Error(`not RFC 5424: ${line.slice(0, 80)}`);
  const pri = Number(m[1]);
  if (pri > 191) throw new Error('PRI out of range');
  const [timestamp, hostname, appName, procId, msgId] = [m[3]!, m[4]!, m[5]!, m[6]!, m[7]!];
  if (timestamp !== '-' && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.test(timestamp))
    throw new Error(`bad TIMESTAMP ${timestamp}`);
  if (hostname.length > 255 || appName.length > 48 || procId.length > 128 || msgId.length > 32)
    throw new Error('header field too long');
  let i = m[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (line[i] === '-') i += 1;
  else {
    while (line[i] === '[') {
      i += 1;
      const idEnd = line.slice(i).search(/[ \]]/);
      const id = line.slice(i, i + idEnd);
      if (!/^[\x21-\x7e]{1,32}$/.test(id) || /[= "\]]/.test(id)) throw new Error(`bad SD-ID ${id}`);
      i += idEnd;
      const params: Record<string, string> = {};
      while (line[i] === ' ') {
        i += 1;
        const eq = line.indexOf('="', i);
        const name = line.slice(i, eq);
        if (!/^[^= "\]]{1,32}$/.test(name)) throw new Error(`bad PARAM-NAME ${name}`);
        i = eq + 2;
        let v = '';
        for (;;) {
          const c = line[i];
          if (c === undefined) throw new Error('unterminated PARAM-VALUE');
          if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\' || line[i + 1] === ']')) {
            v += line[i + 1];
            i += 2;
          } else if (c === '"') {
            i += 1;
            break;
          } else if (c === ']') throw new Error('unescaped ] in PARAM-VALUE');
          else {
            v += c;
            i += 1;
          }
        }
        params[name] = v;
      }
      if (line[i] !== ']') throw new Error('SD-ELEMENT not closed');
      i += 1;
      sd[id] = params;
    }
  }
  let msg = '';
  if (i < line.length) {
    if (line[i] !== ' ') throw new Error('no SP before MSG');
    msg = line.slice(i + 1);
    if (msg.startsWith('\uFEFF')) msg = msg.slice(1);
  }
  return { pri, version: Number(m[2]), timestamp, hostname, appName, procId, msgId, sd, msg };
}
