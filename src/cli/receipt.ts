import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../shared/errors.js';
import { receiptFiles, sealsErrors, type ReceiptView } from '../seals/index.js';
import { emit, type Io } from './output.js';
import type { Client } from './client.js';

/**
 * Writes a receipt as the file set an auditor checks offline with openssl alone (receiptFiles,
 * src/seals). Files are never overwritten. The signature is checked here first (SEAL_INVALID,
 * exit 1, and nothing written when it does not verify).
 */
export function writeReceiptFiles(dir: string, r: ReceiptView): { files: string[]; base: string } {
  const ok = crypto.verify(
    'sha256',
    Buffer.from(r.body, 'utf8'),
    { key: new crypto.X509Certificate(r.certificate.pem).publicKey, dsaEncoding: 'der' },
    Buffer.from(r.signature, 'base64'),
  );
  if (!ok) throw sealsErrors.signatureInvalid(`the receipt of version ${r.version}`);
  const { base, files } = receiptFiles(r);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const taken = files.map(([n]) => n).filter((n) => fs.existsSync(path.join(dir, n)));
  if (taken.length)
    throw new AppError('USAGE', `${dir} already holds ${taken.join(', ')}`, {
      exitCode: 2,
      hint: 'choose an empty directory',
    });
  for (const [n, data] of files) fs.writeFileSync(path.join(dir, n), data, { flag: 'wx', mode: 0o644 });
  return { files: files.map(([n]) => n), base };
}

/** `coffre doc receipt ID [--version N] -o DIR` */
export async function receipt(
  io: Io,
  client: Client,
  id: string,
  o: { version?: number; output: string; json?: boolean },
): Promise<void> {
  const r = await client.json<ReceiptView>(
    'GET',
    `/documents/${encodeURIComponent(id)}/receipt${o.version ? `?version=${o.version}` : ''}`,
  );
  const dir = path.resolve(o.output);
  const { files, base } = writeReceiptFiles(dir, r);
  emit(
    io,
    o.json,
    { id: r.id, documentId: r.documentId, version: r.version, dir, files, timestamp: r.timestamp.state },
    `wrote the receipt of document ${r.documentId} version ${r.version} to ${dir} (${base}.json, signature verified; timestamp ${r.timestamp.state}); README.txt lists the openssl commands`,
  );
}
