import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { initAppliance } from '../src/init.js';
import { openAppliance, type Appliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { startTestTsa } from '../test/support/tsa.js';

/**
 * Deposit receipts: how many the appliance makes per second, and what they add to a deposit.
 * - `depositsPerS`: 1 KiB deposits through the vault (data key, encrypted blob, fsyncs, audit
 *   record, receipt row, then the receipt signed in the HSM before answering), one after another;
 * - `signPerS`: receipts signed alone (decrypt the facts, build the body, one HSM ECDSA signature,
 *   encrypt the body, one UPDATE), one after another, and `signPerSParallel` with 4 in flight;
 * - `timestampPerS`: RFC 3161 tokens from OpenSSL's `ts` on loopback (a process per request, as in
 *   the tests), checked (imprint, nonce, signature, chain): an upper bound, a real TSA is remote.
 * BENCH_RECEIPTS (default 300) deposits.
 */
export default async function bench(): Promise<Record<string, unknown>> {
  const n = Number(process.env.BENCH_RECEIPTS ?? 300);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-receipts-'));
  const log = createLogger({ level: 'silent', destination: 'stderr' });
  const tsa = await startTestTsa();
  try {
    await initAppliance({
      dataDir,
      jurisdiction: 'FR',
      timeZone: 'UTC',
      hostnames: ['localhost'],
      actor: 'local:bench',
    });
    // no TSA for the deposits: their figures are the request path's (the TSA is asked in the background)
    const a = await openAppliance({ dataDir, log });
    let timestampPerS = 0;
    let r: Record<string, unknown>;
    try {
      r = await deposits(a, n);
    } finally {
      await a.close();
    }
    const b = await openAppliance({
      dataDir,
      log,
      env: {
        ...process.env,
        COFFRE_CFG_seals__tsa__urls: JSON.stringify([tsa.url]),
        COFFRE_CFG_seals__tsa__caFile: tsa.caFile,
      },
    });
    try {
      const m = Math.min(n, 100);
      await b.db.db
        .updateTable('seal_receipts')
        .set({ ts_state: 'pending' })
        .where(
          'id',
          'in',
          (await b.db.db.selectFrom('seal_receipts').select('id').limit(m).execute()).map((x) => x.id),
        )
        .execute();
      const t = performance.now();
      const got = await b.timestamps.tick();
      timestampPerS = got.granted / ((performance.now() - t) / 1000);
    } finally {
      await b.close();
    }
    return {
      ...r,
      timestampPerS: Number(timestampPerS.toFixed(1)),
      conditions: `${n} deposits of 1 KiB, SQLite, SoftHSM2, loadavg ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`,
    };
  } finally {
    await tsa.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function deposits(a: Appliance, n: number): Promise<Record<string, unknown>> {
  const inv = await a.identity.accounts.invite(
    { username: 'bench', email: 'bench@example.test', role: 'member' },
    'local:bench',
    {},
  );
  const actor = {
    id: `user:${inv.user.id}`,
    kind: 'user' as const,
    userId: inv.user.id,
    username: 'bench',
    roles: ['member'],
  };
  const ws = await a.identity.workspaces.create(actor, { name: 'Bench' }, {});
  const body = crypto.randomBytes(1024);
  const put = (i: number) =>
    a.vault.upload(
      { actor },
      { kind: 'new', workspaceId: ws.id, folderId: null, name: `doc-${i}.bin` },
      { stream: Readable.from([body]), mediaType: 'application/octet-stream', finish: async () => ({}) },
    );
  await put(-1); // warm: field keys, sealing certificate
  let t = performance.now();
  for (let i = 0; i < n; i++) await put(i);
  const depositS = (performance.now() - t) / 1000;

  // the same receipts signed again, alone: as if the HSM had been down at deposit time
  const unsign = () =>
    a.db.db
      .updateTable('seal_receipts')
      .set({ body_enc: null, signature: null, cert_fingerprint: null, signed_at: null })
      .execute();
  await unsign();
  t = performance.now();
  const signed = await a.receipts.signUnsigned(n + 1);
  const signS = (performance.now() - t) / 1000;
  await unsign();
  t = performance.now();
  const ids = (await a.db.db.selectFrom('seal_receipts').select('id').execute()).map((x) => x.id);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < ids.length) await a.receipts.issue(ids[next++]!);
    }),
  );
  const parS = (performance.now() - t) / 1000;
  const left = await a.db.db.selectFrom('seal_receipts').select('id').where('signed_at', 'is', null).execute();
  if (left.length) throw new Error(`${left.length} receipts left unsigned`);
  return {
    depositsPerS: Number((n / depositS).toFixed(1)),
    signPerS: Number((signed / signS).toFixed(1)),
    signPerSParallel: Number((ids.length / parS).toFixed(1)),
    receiptMsPerDeposit: Number(((signS / signed) * 1000).toFixed(2)),
  };
}
