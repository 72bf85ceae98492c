import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { eventsAbout } from '../src/audit/index.js';
import { withBenchWorkspace } from './_workspace.js';
import { writeWorkspaceExport } from '../src/records/export.js';

/**
 * One-request workspace export (`GET /workspaces/{id}/export`, `coffre export`): throughput of the
 * archive (every version decrypted and checked against its SHA-256, receipts, audit extract, signed
 * manifest) written to a sink that drops it, and how much the process's peak resident memory grows
 * while it runs, against the size of the workspace. BENCH_EXPORT_MIB (default 256) in documents of
 * 16 MiB, plus BENCH_EXPORT_SMALL (default 500) documents of 4 KiB.
 */
const MiB = 1024 * 1024;

const status = () => {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};

export default async function bench(): Promise<Record<string, unknown>> {
  const total = Number(process.env.BENCH_EXPORT_MIB ?? 256) * MiB;
  const small = Number(process.env.BENCH_EXPORT_SMALL ?? 500);
  return withBenchWorkspace('coffre-bench-export-', async ({ a, actor, workspaceId }) => {
    const ws = { id: workspaceId };
    const put = (name: string, body: Buffer) =>
      a.vault.upload(
        { actor },
        { kind: 'new', workspaceId: ws.id, folderId: null, name },
        { stream: Readable.from([body]), mediaType: 'application/octet-stream', finish: async () => ({}) },
      );
    const big = crypto.randomBytes(16 * MiB);
    for (let i = 0; i * 16 * MiB < total; i++) await put(`big-${i}.bin`, big);
    const tiny = crypto.randomBytes(4096);
    for (let i = 0; i < small; i++) await put(`small-${i}.bin`, tiny);
    await a.receipts.settled();

    global.gc?.();
    fs.writeFileSync('/proc/self/clear_refs', '5'); // reset the peak
    const before = status();
    const pack = tar.pack();
    let bytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        bytes += chunk.length;
        done();
      },
    });
    const t = performance.now();
    const [r] = await Promise.all([
      writeWorkspaceExport(
        {
          vault: a.vault,
          workspaceName: (id) => a.identity.workspaces.nameOf(id),
          auditAbout: (id, page) => eventsAbout(a.db.db, { targets: [{ kind: 'workspace', ids: [id] }] }, page),
          receipt: (d, v) => a.receipts.get(d, v),
          seals: () => a.audit.seals?.list() ?? Promise.resolve([]),
          certificates: () => a.seals.certificates(),
          sign: (d) => a.seals.sign(d),
          applianceId: a.config.applianceId,
          now: () => Date.now(),
        },
        { actor },
        ws.id,
        pack,
      ).then((x) => {
        pack.finalize();
        return x;
      }),
      pipeline(pack, sink),
    ]);
    const s = (performance.now() - t) / 1000;
    const after = status();
    return {
      conditions: `${r.documents} documents, ${r.versions} versions, ${(r.bytes / MiB).toFixed(0)} MiB of content, SQLite, SoftHSM2, page cache warm, loadavg ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`,
      archiveMiB: Number((bytes / MiB).toFixed(1)),
      exportMiBps: Number((r.bytes / MiB / s).toFixed(1)),
      seconds: Number(s.toFixed(1)),
      rssBeforeMiB: Number((before.rss / MiB).toFixed(1)),
      peakRssGrowthMiB: Number(((after.peak - before.rss) / MiB).toFixed(1)),
    };
  });
}
