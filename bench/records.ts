import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { withBenchWorkspace } from './_workspace.js';

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
  return withBenchWorkspace('coffre-bench-records-', async ({ a, actor, workspaceId }) => {
    const ws = { id: workspaceId };
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
  });
}
