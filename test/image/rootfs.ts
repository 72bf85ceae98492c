/**
 * Test support for the image checks: an overlay on the cached debootstrap tree (never written),
 * with the appliance's system files and a signed release installed exactly as the Packer build
 * installs them (appliance/install.sh, then coffre-update from a bundle).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const pexec = promisify(execFile);

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on a non-zero exit (the caller asserts). */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  try {
    const p = pexec(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (opts.input !== undefined) {
      p.child.stdin?.end(opts.input);
    }
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof err.code === 'number' ? err.code : 127,
      stdout: err.stdout ?? '',
      stderr: (err.stderr ?? '') + (typeof err.code === 'number' ? '' : err.message),
    };
  }
}

/** Like run() but throws with the output when the command fails. */
export async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Path of the cached Debian tree (debootstrapped on first use: ~4 minutes). */
export async function cachedTree(): Promise<string> {
  const r = await must(path.join(ROOT, 'scripts/image/rootfs'), [], { timeoutMs: 20 * 60_000 });
  return r.stdout.trim().split('\n').pop()!;
}

export interface SigningKey {
  priv: string;
  pub: string;
}

/** An Ed25519 key pair for signing bundles in tests (never a release key). */
export async function testSigningKey(dir: string, name = 'test'): Promise<SigningKey> {
  const priv = path.join(dir, `${name}.pem`);
  await must(path.join(ROOT, 'scripts/image/make-bundle'), ['--new-key', priv]);
  return { priv, pub: path.join(dir, `${name}.pub.pem`) };
}

/** Makes a signed bundle of the built app; returns its path. */
export async function makeBundle(key: SigningKey, outDir: string, version: string): Promise<string> {
  const r = await must(
    path.join(ROOT, 'scripts/image/make-bundle'),
    ['--key', key.priv, '--out', outDir, '--version', version],
    {
      timeoutMs: 300_000,
      env: { ...process.env, COFFRE_BUNDLE_GZIP: '1' },
    },
  );
  return r.stdout.trim().split('\n').pop()!;
}

/** An overlay (upper dir in a temp dir) on the cached tree, with /proc, /sys, /dev, /run mounted. */
export class Overlay {
  readonly root: string;
  private mounted: string[] = [];
  private constructor(readonly dir: string) {
    this.root = path.join(dir, 'root');
  }

  static async create(tree: string): Promise<Overlay> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-image-'));
    const o = new Overlay(dir);
    for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(dir, d));
    await must('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${tree},upperdir=${dir}/upper,workdir=${dir}/work`,
      o.root,
    ]);
    o.mounted.push(o.root);
    return o;
  }

  async mountPseudo(): Promise<void> {
    const r = this.root;
    await must('mount', ['-t', 'proc', 'proc', `${r}/proc`]);
    this.mounted.push(`${r}/proc`);
    await must('mount', ['--rbind', '/sys', `${r}/sys`]);
    await must('mount', ['--make-rslave', `${r}/sys`]);
    this.mounted.push(`${r}/sys`);
    await must('mount', ['--rbind', '/dev', `${r}/dev`]);
    await must('mount', ['--make-rslave', `${r}/dev`]);
    this.mounted.push(`${r}/dev`);
    await must('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'tmpfs', `${r}/run`]);
    this.mounted.push(`${r}/run`);
  }

  /** Runs a command inside the root (chroot). */
  chroot(args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
    return run('chroot', [this.root, ...args], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
      ...opts,
    });
  }

  spawnChroot(args: string[]): ChildProcess {
    return spawn('chroot', [this.root, ...args], {
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  file(p: string): string {
    return path.join(this.root, p);
  }

  async destroy(): Promise<void> {
    for (const m of this.mounted.reverse()) {
      const r = await run('umount', ['-R', m]);
      if (r.code !== 0) await run('umount', ['-lR', m]);
    }
    this.mounted = [];
    // never delete through a mount that is still there (/dev and /sys are bind mounts of the host's)
    const left = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[1]?.startsWith(this.dir + '/'));
    if (left.length) throw new Error(`still mounted, not deleting ${this.dir}:\n${left.join('\n')}`);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Installs the appliance files and a signed release into an overlay, as the image build does. */
export async function installAppliance(o: Overlay, key: SigningKey, bundle: string): Promise<void> {
  await must(path.join(ROOT, 'appliance/install.sh'), ['--root', o.root, '--update-key', key.pub]);
  await must(path.join(ROOT, 'appliance/sbin/coffre-update'), ['--root', o.root, '--no-restart', bundle]);
}
