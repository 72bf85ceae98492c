import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { initAppliance } from '../src/init.js';
import { openAppliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';

/**
 * Integrity control (`vault.scrub`, `coffre vault verify`): throughput of the scrub, which decrypts
 * every chunk (checking its tag) and hashes the plaintext, against a raw read of the same blob
 * files (page cache warm for both, so the comparison is the CPU cost of checking). Unbounded rate.
 * BENCH_SCRUB_MIB (default 256) of documents of 16 MiB each.
 */
const MiB = 1024 * 1024;

async function rawRead(files: string[]): Promise<number> {
  let n = 0;
  for (const f of files)
    for await (const b of fs.createReadStream(f, { highWaterMark: MiB })) n += (b as Buffer).length;
  return n;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && !e.name.startsWith('.')) out.push(...walk(path.join(dir, e.name)));
    else if (e.isFile() && e.name.endsWith('_doc')) out.push(path.join(dir, e.name));
  }
  return out;
}

export default async function bench(): Promise<Record<string, unknown>> {
  const total = Number(process.env.BENCH_SCRUB_MIB ?? 256) * MiB;
  const docSize = 16 * MiB;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-records-'));
  const log = createLogger({ level: 'silent', destination: 'stderr' });
  try {
    await initAppliance({
      dataDir,
      jurisdiction: 'FR',
      timeZone: 'UTC',
      hostnames: ['localhost'],
      actor: 'local:bench',
    });
    const a = await openAppliance({ dataDir, log });
    try {
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
      const piece = crypto.randomBytes(docSize);
      for (let i = 0; i * docSize < total; i++) {
        await a.vault.upload(
          { actor },
          { kind: 'new', workspaceId: ws.id, folderId: null, name: `doc-${i}.bin` },
          { stream: Readable.from([piece]), mediaType: 'application/octet-stream', finish: async () => ({}) },
        );
      }
      const files = walk(a.config.storage.dir);
      await rawRead(files); // warm the page cache
      let t = performance.now();
      const rawBytes = await rawRead(files);
      const rawS = (performance.now() - t) / 1000;
      t = performance.now();
      const r = await a.vault.verifyScope({ kind: 'all' });
      const scrubS = (performance.now() - t) / 1000;
      if (!r.ok) throw new Error('the bench store failed its own integrity check');
      const load = fs.readFileSync('/proc/loadavg', 'utf8').trim();
      return {
        conditions: `${files.length} blobs, ${(rawBytes / MiB).toFixed(0)} MiB stored, page cache warm, unbounded rate, loadavg ${load}`,
        rawReadMiBps: Number((rawBytes / MiB / rawS).toFixed(1)),
        scrubMiBps: Number((r.bytes / MiB / scrubS).toFixed(1)),
        scrubVsRaw: Number((r.bytes / scrubS / (rawBytes / rawS)).toFixed(3)),
        versions: r.versions,
      };
    } finally {
      await a.close();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
