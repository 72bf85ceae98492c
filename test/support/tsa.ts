/**
 * A real RFC 3161 time-stamping authority on loopback: OpenSSL's `ts -reply` behind a small HTTP
 * front. Its CA and TSA certificate (extended key usage timeStamping, critical) are made with
 * openssl in a temp dir. `stop()` takes it off the network (the port is kept for `start()`), to test
 * an outage and the recovery.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface TestTsa {
  url: string;
  dir: string;
  /** PEM of the TSA's CA (what seals.tsa.caFile pins) */
  caFile: string;
  /** PEM of the TSA's own certificate (`openssl ts -verify -untrusted`) */
  certFile: string;
  /** requests answered */
  answered(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const run = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

export async function startTestTsa(): Promise<TestTsa> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-tsa-'));
  run(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '30',
      '-subj',
      '/CN=Test TSA Root',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'ext.cnf'),
    'extendedKeyUsage = critical, timeStamping\nkeyUsage = critical, digitalSignature\nbasicConstraints = CA:FALSE\n',
  );
  run(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'tsa.key',
      '-out',
      'tsa.csr',
      '-subj',
      '/CN=Test TSA',
    ],
    dir,
  );
  run(
    [
      'x509',
      '-req',
      '-in',
      'tsa.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'ext.cnf',
      '-out',
      'tsa.pem',
    ],
    dir,
  );
  fs.writeFileSync(path.join(dir, 'serial'), '01\n');
  fs.writeFileSync(
    path.join(dir, 'ts.cnf'),
    `[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = ${dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`,
  );
  let n = 0;
  let seq = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = ++seq;
      const q = path.join(dir, `q${id}.tsq`);
      const r = path.join(dir, `r${id}.tsr`);
      try {
        fs.writeFileSync(q, Buffer.concat(chunks));
        run(['ts', '-reply', '-config', 'ts.cnf', '-queryfile', q, '-out', r], dir);
        const body = fs.readFileSync(r);
        n += 1;
        res.writeHead(200, { 'content-type': 'application/timestamp-reply', 'content-length': body.length });
        res.end(body);
      } catch {
        res.writeHead(500).end();
      } finally {
        fs.rmSync(q, { force: true });
        fs.rmSync(r, { force: true });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let current: http.Server | undefined = server;
  const stop = async () => {
    if (!current) return;
    const s = current;
    current = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}/tsa`,
    dir,
    caFile: path.join(dir, 'ca.pem'),
    certFile: path.join(dir, 'tsa.pem'),
    answered: () => n,
    stop,
    start: async () => {
      if (current) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      current = server;
    },
    close: async () => {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
