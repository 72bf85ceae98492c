import fs from 'node:fs';
import type { Command } from 'commander';
import { AppError } from '../shared/errors.js';
import type { SealCertificate } from '../seals/index.js';
import type { Appliance } from '../main.js';
import { withAppliance } from './local.js';
import { loadConfig, resolveDataDir } from '../config/index.js';
import { ensureKek } from '../keys/bootstrap.js';
import type { KekAttributes, RotationResult } from '../keys/index.js';
import { keyStatus } from '../keys/status.js';
import type { JobProgress } from '../jobs/types.js';
import { action, dataDirOption, emit, interruptible, jsonOption, localActor, type Io } from './output.js';

/** The attributes that matter for invariant 2, as printed by status and init. */
const kekFlags = (a: KekAttributes) =>
  `extractable=${a.extractable} sensitive=${a.sensitive} neverExtractable=${a.neverExtractable} alwaysSensitive=${a.alwaysSensitive} local=${a.local} ` +
  `usages=${['wrap', 'unwrap', 'encrypt', 'decrypt', 'sign', 'verify', 'derive'].filter((u) => a[u as keyof KekAttributes] === true).join(',') || 'none'}`;

const withQuietAppliance = <T>(dataDir: string | undefined, fn: (a: Appliance) => Promise<T>): Promise<T> =>
  withAppliance(dataDir, fn, { quiet: true });

const sealCertJson = (c: SealCertificate) => ({
  fingerprint: c.fingerprint,
  subject: c.subject,
  issuer: c.issuer,
  notBefore: c.notBefore.toISOString(),
  notAfter: c.notAfter.toISOString(),
  source: c.source,
  pem: c.pem,
});

/** Records a local command in the audit trail; the command's own result stands if that fails. */
async function audited(
  a: Appliance,
  io: Io,
  e: { action: string; outcome: 'success' | 'failure'; reason?: string; targets?: Record<string, string> },
): Promise<void> {
  await a.audit
    .recordNow({ actor: localActor(), ...e })
    .catch((err: unknown) =>
      io.err(`warning: this command could not be recorded in the audit trail (${(err as Error).message})`),
    );
}

export function registerKeys(program: Command, io: Io): void {
  const keys = program.command('keys').description("the customer's HSM: key-encryption key, data keys, rotation");

  keys
    .command('status')
    .description(
      'HSM module, slot, token, KEK versions with attributes read back from the HSM, wrapped keys per version, latency; exit 1 when the HSM cannot be used',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        await withQuietAppliance(opts.dataDir, async (a) => {
          const cfg = a.config.keys;
          const status = await keyStatus(a.keys, cfg); // KEYS_UNAVAILABLE: … (CKR_…) — check keys.…
          const { token, latencyMs, versions: withAttrs } = status;
          const current = status.kek.currentVersion;
          const obj = {
            ...status,
            health: a.keys.provider.health(),
            dekCache: { maxEntries: cfg.dekCacheSize, ttlMs: cfg.dekCacheTtlMs },
          };
          emit(io, opts.json, obj, () =>
            [
              ...(status.embeddedToken ? [status.embeddedToken.message] : []),
              `HSM up (round trip ${latencyMs} ms)`,
              `  module:  ${status.module}`,
              `  slot:    ${status.slot}`,
              `  token:   "${token.label}" serial ${token.serial} (${token.manufacturer} ${token.model})`,
              `  KEK:     ${cfg.kekLabel}-${current} (current)`,
              ...withAttrs.map(
                (v) =>
                  `  v${v.version}  ${v.label}  ${v.state}${v.inHsm ? '' : ' (not in HSM)'}  ${v.wrappedKeys} wrapped key(s)` +
                  (v.destroyAfter && v.state === 'retired' ? `  destroyed after ${v.destroyAfter}` : '') +
                  ('attributes' in v && v.attributes ? `\n      ${kekFlags(v.attributes)}` : ''),
              ),
            ].join('\n'),
          );
        });
      }),
    );

  keys
    .command('rotate')
    .description(
      'create a new KEK version in the HSM, re-wrap every data key online (resumable), retire the old version (destroyed after keys.retiredKekGraceDays)',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        await withQuietAppliance(opts.dataDir, (a) =>
          interruptible(
            io,
            async (signal) => {
              await a.keys.provider.ready();
              let last = 0;
              const onProgress = (p: JobProgress) => {
                const now = Date.now();
                if (now - last < 500 && p.done !== p.total) return;
                last = now;
                io.err(`re-wrapping data keys: ${p.done ?? 0}/${p.total ?? '?'} (${p.percent ?? 0}%)`);
              };
              let r: RotationResult;
              try {
                r = (
                  await a.scheduler.run<RotationResult>('keys.rotate', {
                    trigger: 'cli',
                    actor: localActor(),
                    signal,
                    onProgress,
                    onNotice: (m) => io.err(`note: ${m}`),
                  })
                ).result;
              } catch (e) {
                await audited(a, io, {
                  action: 'keys.rotate',
                  outcome: 'failure',
                  reason: (e as { code?: string }).code ?? 'ERROR',
                });
                throw e;
              }
              await audited(a, io, {
                action: 'keys.rotate',
                outcome: 'success',
                targets: { kek_version: String(r.toVersion) },
              });
              emit(io, opts.json, { ...r }, () =>
                [
                  `KEK rotated to version ${r.toVersion}${r.resumed ? ' (resumed an interrupted rotation)' : ''}`,
                  `  re-wrapped: ${r.rewrapped} data key(s) in ${r.seconds} s (${r.keysPerSecond}/s)`,
                  `  retired:    ${r.retired.length ? r.retired.map((v) => `v${v}`).join(', ') : 'none'} (destroyed after ${a.config.keys.retiredKekGraceDays} day(s))`,
                  `  destroyed:  ${r.destroyed.length ? r.destroyed.map((v) => `v${v}`).join(', ') : 'none'}`,
                  ...r.kept.map(
                    (k) =>
                      `  kept:       v${k.version}, it still wraps ${Object.entries(k.wrappedKeys)
                        .map(([h, n]) => `${n} ${h}`)
                        .join(', ')}`,
                  ),
                ].join('\n'),
              );
            },
            { json: opts.json },
          ),
        );
      }),
    );

  keys
    .command('seal-csr')
    .description(
      "a PKCS#10 request for the sealing key (ECDSA P-256 in the HSM), for the customer's CA to issue its certificate",
    )
    .addOption(dataDirOption())
    .option('--out <file>', 'write the PEM request to this file (created, never overwritten) instead of stdout')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; out?: string; json?: boolean }) => {
        if (opts.out && fs.existsSync(opts.out))
          throw new AppError('USAGE', `--out: ${opts.out} exists; nothing was written`, { exitCode: 2 });
        await withQuietAppliance(opts.dataDir, async (a) => {
          const csr = await a.seals.csr();
          await audited(a, io, { action: 'keys.seal_csr', outcome: 'success' });
          if (opts.out) {
            fs.writeFileSync(opts.out, csr, { flag: 'wx', mode: 0o644 });
            emit(
              io,
              opts.json,
              { file: opts.out },
              `certificate request written to ${opts.out}: have it signed by your CA, then run \`coffre keys seal-cert import FILE\``,
            );
          } else if (opts.json) emit(io, true, { csr }, '');
          else io.out(csr.trimEnd());
        });
      }),
    );

  const sealCert = keys
    .command('seal-cert')
    .description("the sealing key's certificate (checked offline with openssl, docs/proofs.md)");
  sealCert
    .command('import')
    .argument(
      '<file>',
      'PEM certificate issued by your CA for the request of `coffre keys seal-csr` (a chain may follow it)',
    )
    .description('make a certificate issued by your CA the current certificate of the sealing key')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (file: string, opts: { dataDir?: string; json?: boolean }) => {
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (e) {
          throw new AppError('USAGE', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
            exitCode: 2,
          });
        }
        await withQuietAppliance(opts.dataDir, async (a) => {
          try {
            const c = await a.seals.importCertificate(text);
            await audited(a, io, {
              action: 'keys.seal_cert_import',
              outcome: 'success',
              targets: { certificate: c.fingerprint },
            });
            emit(
              io,
              opts.json,
              sealCertJson(c),
              () =>
                `sealing certificate imported: ${c.subject}, issued by ${c.issuer}, valid to ${c.notAfter.toISOString()} (SHA-256 ${c.fingerprint})`,
            );
          } catch (e) {
            await audited(a, io, {
              action: 'keys.seal_cert_import',
              outcome: 'failure',
              reason: e instanceof AppError ? e.code : 'ERROR',
            });
            throw e;
          }
        });
      }),
    );
  sealCert
    .command('show')
    .description("the sealing key's current certificate (PEM on stdout, or --out FILE)")
    .addOption(dataDirOption())
    .option('--out <file>', 'write the PEM certificate to this file (created, never overwritten)')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; out?: string; json?: boolean }) => {
        if (opts.out && fs.existsSync(opts.out))
          throw new AppError('USAGE', `--out: ${opts.out} exists; nothing was written`, { exitCode: 2 });
        await withQuietAppliance(opts.dataDir, async (a) => {
          const c = await a.seals.certificate();
          if (opts.out) fs.writeFileSync(opts.out, c.pem, { flag: 'wx', mode: 0o644 });
          if (opts.json) emit(io, true, { ...sealCertJson(c), ...(opts.out ? { file: opts.out } : {}) }, '');
          else if (opts.out) io.out(`sealing certificate written to ${opts.out} (SHA-256 ${c.fingerprint})`);
          else io.out(c.pem.trimEnd());
        });
      }),
    );

  keys
    .command('init')
    .description(
      'customer HSM: find or create the configured KEK label on the configured token (after editing the keys section of config.json)',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        const dataDir = resolveDataDir(opts.dataDir);
        const config = loadConfig(dataDir);
        const { token, kek } = await ensureKek(config.keys);
        await withQuietAppliance(dataDir, async (a) => {
          await a.keys.rotation.sync();
          await audited(a, io, {
            action: 'keys.init',
            outcome: 'success',
            targets: { kek_version: String(kek.version) },
          });
        });
        emit(io, opts.json, { token, kek }, () =>
          [
            `token "${token.label}" serial ${token.serial} in slot ${token.slotId} (${token.module})`,
            `KEK ${kek.label}: ${kekFlags(kek)}`,
          ].join('\n'),
        );
      }),
    );
}
