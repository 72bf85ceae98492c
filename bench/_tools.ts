import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * The programs a bench compares against, by the Debian package that brings each. Missing ones are
 * installed with apt-get when the bench runs as root on a Debian-like system (a fresh machine),
 * unless `BENCH_INSTALL=no`; otherwise the bench stops and names exactly what is missing.
 */
export function ensureTools(tools: Record<string, string>): void {
  const has = (bin: string) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return true;
    } catch {
      return fs.existsSync(bin);
    }
  };
  let missing = Object.entries(tools).filter(([bin]) => !has(bin));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  const canInstall = process.getuid?.() === 0 && has('apt-get') && process.env.BENCH_INSTALL !== 'no';
  if (canInstall) {
    process.stderr.write(`bench: installing ${pkgs.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'ignore', env });
    } catch {
      execFileSync('apt-get', ['update'], { stdio: 'ignore', env });
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'ignore', env });
    }
    missing = missing.filter(([bin]) => !has(bin));
    if (!missing.length) return;
  }
  throw new Error(
    `missing: ${missing.map(([bin, pkg]) => `${bin} (Debian package ${pkg})`).join(', ')}; ` +
      `install with: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(' ')}`,
  );
}
