import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { initAppliance } from '../src/init.js';
import { openAppliance } from '../src/main.js';
import { createLogger } from '../src/shared/logger.js';
import { startSshd, type Sshd } from '../test/support/sshd.js';

/**
 * `npm run bench -- backup`: Coffre's backup against `restic backup` (first backup into a fresh
 * repository; Debian's restic) and `tar | gpg --symmetric --cipher-algo AES256 | ssh`, in one run,
 * to the same loopback OpenSSH sftp server, on the same dataset: an appliance whose blob store
 * holds ~1 GiB of mixed small and large blobs (random bytes, like encrypted documents), each
 * referenced by a document version row. Then Coffre alone at ~3 GiB: its peak RSS must not grow.
 *
 * Coffre runs as the real CLI (`coffre backup run`) in its own process; each tool's wall time,
 * CPU time and peak RSS (VmHWM) are read from /proc. Coffre's time is split as the run reports it:
 * the backup proper (snapshot, archive, encrypt, upload) and the read-back verification that every
 * Coffre backup gets before it is renamed into place (the other tools do no such check).
 * Sizes: BENCH_BACKUP_GIB (default 1) and BENCH_BACKUP_BIG_GIB (default 3; 0 skips).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const GiB = 1024 ** 3;
/** clock ticks per second in /proc/<pid>/stat */
const USER_HZ = 100;

interface Measured {
  wallS: number;
  cpuS: number;
  peakRssMB: number;
  stdout: string;
}

/** Runs a process, polling /proc for its peak RSS and CPU time. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let peakKb = 0;
    let cpuTicks = 0;
    const poll = setInterval(() => {
      try {
        const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
        const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpuTicks = Number(f[11]) + Number(f[12]);
      } catch {
        /* exited */
      }
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} exited ${code}: ${stderr}`));
      resolve({ wallS: (performance.now() - t0) / 1000, cpuS: cpuTicks / USER_HZ, peakRssMB: Math.round(peakKb / 1024), stdout });
    });
  });
}

/** An appliance whose blob store holds `bytes` of mixed blobs, each referenced by a version row. */
export async function makeAppliance(dir: string, bytes: number, sshd: Sshd, targetName: string): Promise<{ dataDir: string; datasetBytes: number; files: number }> {
  const dataDir = path.join(dir, 'appliance');
  await initAppliance({ dataDir, jurisdiction: 'FR', timeZone: 'UTC', hostnames: [], actor: 'local:bench' });
  const a = await openAppliance({ dataDir, log: createLogger({ level: 'silent', destination: 'stderr' }) });
  let sum = 0;
  let files = 0;
  try {
    const store = a.keys.blobs.store;
    const now = Date.now();
    const rnd = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));
    while (sum < bytes) {
      const r = Math.random();
      const size = Math.min(bytes - sum, r < 0.9 ? rnd(1024, 64 * 1024) : r < 0.99 ? rnd(1 << 20, 8 << 20) : rnd(32 << 20, 128 << 20));
      const blobId = `${crypto.randomBytes(16).toString('hex')}_doc`;
      const docId = crypto.randomUUID();
      const body = crypto.randomBytes(size);
      await store.put(blobId, Readable.from([body]));
      await a.db.db.transaction().execute(async (trx) => {
        await trx.insertInto('vault_documents').values({ id: docId, workspace_id: 'bench', folder_id: null, name_enc: 'bench', description_enc: null, tags_enc: null, head_version: 1, head_size: size, created_at: now, created_by: 'bench', updated_at: now, trashed_at: null, trashed_by: null, purged_at: null }).execute();
        await trx.insertInto('vault_versions').values({ id: crypto.randomUUID(), document_id: docId, version: 1, blob_id: blobId, key_id: 'dk_bench', size, stored_size: size, sha256: crypto.createHash('sha256').update(body).digest('hex'), media_type: 'application/octet-stream', created_at: now, created_by: 'bench' }).execute();
      });
      sum += size;
      files++;
    }
    fs.mkdirSync(path.join(sshd.root, targetName));
    await a.backup.addTarget({ name: targetName, type: 'sftp', url: sshd.url(targetName), jurisdiction: 'FR', lat: 45.764, lon: 4.8357, hostKey: sshd.hostKeyFingerprint, identityFile: sshd.identityFile }, 'local:bench');
  } finally {
    await a.close();
  }
  return { dataDir, datasetBytes: sum + fs.statSync(path.join(dataDir, 'coffre.db')).size, files };
}

async function coffreRun(dataDir: string, datasetBytes: number) {
  const m = await measure(process.execPath, [CLI, 'backup', 'run', '--data-dir', dataDir, '--json']);
  const r = JSON.parse(m.stdout) as { targets: { durationMs: number; uploadMs: number; verifyMs: number; size: number; parts: number }[] };
  const t = r.targets[0]!;
  const backupS = (t.durationMs - t.verifyMs) / 1000;
  return {
    MBps: +(datasetBytes / 1e6 / backupS).toFixed(1),
    backupS: +backupS.toFixed(2),
    verifyS: +(t.verifyMs / 1000).toFixed(2),
    processWallS: +m.wallS.toFixed(2),
    MBpsWithVerify: +(datasetBytes / 1e6 / m.wallS).toFixed(1),
    cpuS: +m.cpuS.toFixed(1),
    peakRssMB: m.peakRssMB,
    parts: t.parts,
    storedBytes: t.size,
  };
}

export default async function bench(): Promise<Record<string, unknown>> {
  const gib = Number(process.env.BENCH_BACKUP_GIB ?? 1);
  const bigGib = Number(process.env.BENCH_BACKUP_BIG_GIB ?? 3);
  for (const tool of ['restic', 'gpg', 'tar', 'ssh']) {
    try {
      execFileSync('which', [tool], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: apt-get install -y restic gnupg openssh-client`);
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-bench-backup-'));
  const sshd = await startSshd();
  const out: Record<string, unknown> = { machine: { cpus: os.availableParallelism(), loadavg: os.loadavg().map((x) => +x.toFixed(1)) } };
  try {
    const small = await makeAppliance(path.join(dir, 'a1'), gib * GiB, sshd, 'coffre1');
    out.dataset = { bytes: small.datasetBytes, files: small.files };
    const ssh = (extra: string[] = []) => ['-p', String(sshd.port), '-i', sshd.identityFile, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', ...extra];
    const sources = [path.join(small.dataDir, 'blobs'), path.join(small.dataDir, 'coffre.db')];

    // Coffre
    out.coffre = await coffreRun(small.dataDir, small.datasetBytes);

    // restic: first backup into a fresh repository over sftp
    const repo = `sftp:${sshd.user}@127.0.0.1:${path.join(sshd.root, 'restic')}`;
    const resticEnv = { RESTIC_PASSWORD: 'bench-password', RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') };
    const sftpCmd = `sftp.command=ssh ${ssh().join(' ')} ${sshd.user}@127.0.0.1 -s sftp`;
    execFileSync('restic', ['-r', repo, '-o', sftpCmd, 'init', '-q'], { env: { ...process.env, ...resticEnv } });
    const rm = await measure('restic', ['-r', repo, '-o', sftpCmd, 'backup', '-q', ...sources], resticEnv);
    out.restic = { MBps: +(small.datasetBytes / 1e6 / rm.wallS).toFixed(1), wallS: +rm.wallS.toFixed(2), cpuS: +rm.cpuS.toFixed(1), peakRssMB: rm.peakRssMB, version: execFileSync('restic', ['version']).toString().trim() };

    // tar | gpg | ssh (no compression: the data is random, like encrypted blobs)
    const gnupg = path.join(dir, 'gnupg');
    fs.mkdirSync(gnupg, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'pass'), 'bench-password\n', { mode: 0o600 });
    const pipe = (sshExtra: string[], file: string) =>
      `tar -C ${small.dataDir} -cf - blobs coffre.db | gpg --homedir ${gnupg} --batch --pinentry-mode loopback --passphrase-file ${path.join(dir, 'pass')} --symmetric --cipher-algo AES256 --compress-algo none -o - | ssh ${ssh(sshExtra).join(' ')} ${sshd.user}@127.0.0.1 'cat > ${path.join(sshd.root, file)}'`;
    const pm = await measure('bash', ['-o', 'pipefail', '-c', pipe([], 'pipe.tar.gpg')]);
    out.pipe = { MBps: +(small.datasetBytes / 1e6 / pm.wallS).toFixed(1), wallS: +pm.wallS.toFixed(2) };
    fs.rmSync(path.join(sshd.root, 'pipe.tar.gpg'), { force: true });
    const pg = await measure('bash', ['-o', 'pipefail', '-c', pipe(['-c', 'aes256-gcm@openssh.com'], 'pipe-gcm.tar.gpg')]);
    out.pipeAes256Gcm = { MBps: +(small.datasetBytes / 1e6 / pg.wallS).toFixed(1), wallS: +pg.wallS.toFixed(2) };
    execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'gpg-agent']);
    fs.rmSync(path.join(sshd.root, 'pipe-gcm.tar.gpg'), { force: true });
    fs.rmSync(path.join(sshd.root, 'restic'), { recursive: true, force: true });

    const c = out.coffre as { MBps: number; peakRssMB: number };
    out.ratios = {
      coffreVsRestic: +(c.MBps / (out.restic as { MBps: number }).MBps).toFixed(2),
      coffreVsPipe: +(c.MBps / (out.pipe as { MBps: number }).MBps).toFixed(2),
      targets: 'coffreVsRestic >= 1.5 (stretch 2), coffreVsPipe >= 0.8, peakRssMB <= 256',
    };
    fs.rmSync(path.join(dir, 'a1'), { recursive: true, force: true });
    fs.rmSync(path.join(sshd.root, 'coffre1'), { recursive: true, force: true });

    if (bigGib > 0) {
      const big = await makeAppliance(path.join(dir, 'a3'), bigGib * GiB, sshd, 'coffre3');
      const cb = await coffreRun(big.dataDir, big.datasetBytes);
      out.coffreBig = { datasetBytes: big.datasetBytes, ...cb };
      out.rssGrowth = +((cb.peakRssMB - c.peakRssMB) / c.peakRssMB).toFixed(3);
    }
  } finally {
    await sshd.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
