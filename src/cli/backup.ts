import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { Value } from '@sinclair/typebox/value';
import { openAppliance } from '../main.js';
import { resolveDataDir } from '../config/index.js';
import { KeysSection, type KeysConfig } from '../config/sections/keys.js';
import { PostgresDb, type PostgresConfig } from '../config/sections/database.js';
import { StorageSection, type StorageConfig } from '../config/sections/storage.js';
import { createKeyProvider } from '../keys/registry.js';
import { createLogger } from '../shared/logger.js';
import type { JobProgress } from '../jobs/types.js';
import {
  backupErrors,
  fmtBytes,
  openTarget,
  parseHostKey,
  restoreInto,
  secondaryDrill,
  targetOptions,
  targetRef,
  type DrillReport,
  type RunReport,
  type TargetOptions,
} from '../backup/index.js';
import { AppError } from '../shared/errors.js';
import { readSecretFile, resolveConfigPath } from '../config/index.js';
import { action, dataDirOption, emit, interruptible, jsonOption, localActor, parseNumber, type Io } from './output.js';
import {
  isPending,
  withBackupOps,
  type BackupOps,
  type DrillResult,
  type PendingOut,
  type RequestOut,
  type VerifyResult,
} from './backup-ops.js';
import { reexecForTransfers } from '../runtime/index.js';

/** A progress bar on stderr, one per phase (nothing when stderr is not a terminal). */
export function progressBar(): { update(p: JobProgress): void; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{phase} [{bar}] {percentage}% {detail}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let phase = '';
  let started = false;
  return {
    update(p) {
      const detail =
        p.unit === 'bytes' && p.done !== undefined && p.total !== undefined
          ? `${fmtBytes(p.done)} / ${fmtBytes(p.total)}`
          : '';
      if (p.phase !== phase) {
        if (started) bar.stop();
        phase = p.phase;
        bar.start(100, 0, { phase: phase.padEnd(9), detail });
        started = true;
      }
      bar.update(Math.min(100, p.percent ?? 0), { phase: phase.padEnd(9), detail });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** The verbs that stream a whole backup (run, verify, restore) run with the memory tuning of src/runtime/memory.ts. */
const reexecForTransfer = () => reexecForTransfers({ cliEntryOnly: true });

/** A change asked for through the appliance: the request to approve, exit 0 (docs/cli.md). */
const pendingText = (p: PendingOut) =>
  `request ${p.request.id}: ${p.request.summary}\npending approval by an admin (a person other than you): \`coffre backup request approve ${p.request.id}\` with an admin's token; expires ${p.request.expiresAt}\ndigest ${p.request.digest}`;

const requestLine = (r: RequestOut) =>
  `${r.id}\t${r.state}\t${r.summary}\tby ${r.requestedByName ?? r.requestedBy} at ${r.requestedAt}\t${r.state === 'pending' ? `expires ${r.expiresAt}` : r.decidedBy ? `decided by ${r.decidedByName ?? r.decidedBy}${r.reason ? ` (${r.reason})` : ''}` : ''}\tdigest ${r.digest}`;

export function registerBackup(program: Command, io: Io): void {
  const backup = program
    .command('backup')
    .description(
      "encrypted backups to a distant site in the same jurisdiction; with COFFRE_URL and COFFRE_TOKEN (and no --data-dir) every verb but restore runs against that appliance as the token's user",
    );

  // ---------------------------------------------------------------- targets
  const target = backup.command('target').description('where backups go');
  target
    .command('add <name>')
    .description(
      'register a target at a declared site; refused (exit 2) in another jurisdiction or closer than backup.minDistanceKm',
    )
    .addOption(dataDirOption())
    .addOption(new Option('--type <type>', 'sftp, path or s3').choices(['sftp', 'path', 's3']).makeOptionMandatory())
    .requiredOption(
      '--url <url>',
      'sftp://user@host:port/dir, file:///mnt/secondary or s3://ACCESS_KEY_ID@host:port/bucket/prefix?quotaGiB=N',
    )
    .requiredOption('--jurisdiction <CC>', 'ISO 3166-1 alpha-2 code of the target site')
    .addOption(
      new Option('--lat <deg>', 'latitude of the target site')
        .argParser(parseNumber('--lat', -90, 90))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--lon <deg>', 'longitude of the target site')
        .argParser(parseNumber('--lon', -180, 180))
        .makeOptionMandatory(),
    )
    .option('--host-key <key>', 'SFTP: the server host key to pin (SHA256:… fingerprint or public key line)')
    .option('--identity <file>', 'SFTP: private key file for authentication (a path on the appliance)')
    .option(
      '--password-file <file>',
      'SFTP: file holding the password (when no identity); S3: the secret access key (local mode only)',
    )
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (
          name: string,
          o: {
            dataDir?: string;
            type: 'sftp' | 'path' | 's3';
            url: string;
            jurisdiction: string;
            lat: number;
            lon: number;
            hostKey?: string;
            identity?: string;
            passwordFile?: string;
            json?: boolean;
          },
        ) => {
          const t = await withBackupOps(o, (ops) =>
            ops.addTarget({
              name,
              type: o.type,
              url: o.url,
              jurisdiction: o.jurisdiction,
              lat: o.lat,
              lon: o.lon,
              hostKey: o.hostKey,
              identityFile: o.identity,
              passwordFile: o.passwordFile,
            }),
          );
          if (isPending(t)) return emit(io, o.json, { ...t }, pendingText(t));
          emit(
            io,
            o.json,
            { ...t },
            `target ${t.name} registered: ${t.url} (${t.jurisdiction}, ${t.distanceKm.toFixed(0)} km away)`,
          );
        },
      ),
    );
  target
    .command('list')
    .description('registered targets')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; json?: boolean }) => {
        const ts = await withBackupOps(o, (ops) => ops.listTargets());
        emit(io, o.json, { targets: ts }, () =>
          ts.length
            ? ts
                .map(
                  (t) =>
                    `${t.name}\t${t.url}\t${t.jurisdiction}\t${t.distanceKm} km${t.allowed ? '' : `\tREFUSED: ${t.problems.join('; ')}`}`,
                )
                .join('\n')
            : 'no target registered',
        );
      }),
    );
  target
    .command('remove <name>')
    .description('destroy every backup at the target (keys shredded, files deleted), then unregister it')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (name: string, o: { dataDir?: string; json?: boolean }) => {
        const r = await withBackupOps(o, (ops) => ops.removeTarget(name));
        if (isPending(r)) return emit(io, o.json, { ...r }, pendingText(r));
        emit(
          io,
          o.json,
          { name, deleted: r.deleted },
          `target ${name} removed; ${r.deleted.length} backup(s) destroyed`,
        );
      }),
    );

  // ---------------------------------------------------------------- escrow keys
  const escrow = backup.command('escrow').description("the customer's offline OpenPGP recovery keys");
  escrow
    .command('add')
    .description(
      'also encrypt every future backup to this OpenPGP public key (refused when GnuPG 2.2 could not read the result)',
    )
    .addOption(dataDirOption())
    .requiredOption('--public-key <file>', 'the public key (armored or binary), e.g. from `gpg --export --armor KEYID`')
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; publicKey: string; json?: boolean }) => {
        let text: Buffer;
        try {
          text = fs.readFileSync(o.publicKey);
        } catch (e) {
          throw backupErrors.usage(
            `--public-key: cannot read ${o.publicKey} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
          );
        }
        const k = await withBackupOps(o, (ops) => ops.addEscrow(new Uint8Array(text)));
        if (isPending(k)) return emit(io, o.json, { ...k }, pendingText(k));
        emit(
          io,
          o.json,
          { ...k },
          `escrow key ${k.fingerprint} (${k.userIds.join(', ')}, ${k.algorithm}) added: future backups open with it`,
        );
      }),
    );
  escrow
    .command('list')
    .description('registered escrow keys')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; json?: boolean }) => {
        const ks = await withBackupOps(o, (ops) => ops.listEscrow());
        emit(
          io,
          o.json,
          { keys: ks },
          () =>
            (ks.length
              ? ks
                  .map(
                    (k) =>
                      `${k.fingerprint}\t${k.algorithm}\t${k.userIds.join(', ')}\t${k.expiresAt ? `until ${k.expiresAt}` : 'no expiry'}`,
                  )
                  .join('\n')
              : 'no escrow key') +
            '\nEvery backup encrypted to an escrow key stays readable by that key\'s holder, whatever Coffre destroys (docs/disaster-recovery.md "Escrow keys").',
        );
      }),
    );

  escrow
    .command('remove <fingerprint>')
    .description(
      'stop encrypting backups to this escrow key (backups already encrypted to it stay readable by its holder)',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (fingerprint: string, o: { dataDir?: string; json?: boolean }) => {
        const r = await withBackupOps(o, (ops) => ops.removeEscrow(fingerprint));
        if (isPending(r)) return emit(io, o.json, { ...r }, pendingText(r));
        emit(
          io,
          o.json,
          r,
          `escrow key ${r.fingerprint} removed: later backups are not encrypted to it; destroy its private key to end access to earlier ones`,
        );
      }),
    );
  escrow
    .command('expire <fingerprint>')
    .description('stop encrypting backups to this escrow key from a date on (an expiry can only be brought forward)')
    .requiredOption('--at <date>', 'ISO 8601 date, e.g. 2027-01-31T23:59:59Z')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (fingerprint: string, o: { dataDir?: string; at: string; json?: boolean }) => {
        const at = Date.parse(o.at);
        if (!Number.isFinite(at))
          throw backupErrors.usage(
            `--at ${JSON.stringify(o.at)} is not a date`,
            'use ISO 8601, e.g. 2027-01-31T23:59:59Z',
          );
        const r = await withBackupOps(o, (ops) => ops.expireEscrow(fingerprint, at));
        if (isPending(r)) return emit(io, o.json, { ...r }, pendingText(r));
        emit(io, o.json, r, `escrow key ${r.fingerprint}: no backup taken after ${r.expiresAt} is encrypted to it`);
      }),
    );

  // ---------------------------------------------------------------- change requests (two-person rule)
  const request = backup
    .command('request')
    .description(
      'changes to targets and escrow keys asked for through the appliance, awaiting an admin other than the requester',
    );
  request
    .command('list')
    .description('pending requests (--all: decided and expired ones too)')
    .addOption(dataDirOption())
    .option('--all', 'include approved, rejected, failed and expired requests')
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; all?: boolean; json?: boolean }) => {
        const rs = await withBackupOps(o, (ops) => ops.listRequests(o.all ?? false));
        emit(io, o.json, { requests: rs }, () =>
          rs.length ? rs.map(requestLine).join('\n') : o.all ? 'no change request' : 'no change request pending',
        );
      }),
    );
  request
    .command('approve <id>')
    .description(
      "approve and apply another person's request (an admin's token; the change applied is the one listed, checked by its digest)",
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { dataDir?: string; json?: boolean }) => {
        const r = await withBackupOps(o, (ops) => ops.approveRequest(id));
        emit(io, o.json, { ...r }, `request ${r.request.id} approved and applied: ${r.request.summary}`);
      }),
    );
  request
    .command('reject <id>')
    .description("reject another person's request (nothing is changed)")
    .option('--reason <text>', 'why (recorded with the request; no secret, no personal data)')
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (id: string, o: { dataDir?: string; reason?: string; json?: boolean }) => {
        const r = await withBackupOps(o, (ops) => ops.rejectRequest(id, o.reason ?? null));
        emit(io, o.json, { ...r }, `request ${r.request.id} rejected: ${r.request.summary}`);
      }),
    );

  // ---------------------------------------------------------------- run, list, verify, drill, status
  /** runs a job verb: at once with --no-wait (remote), else to its end with a progress bar */
  const jobVerb = async <T extends object>(
    o: { dataDir?: string; wait?: boolean; json?: boolean },
    job: 'run' | 'verify' | 'drill',
    go: (ops: BackupOps, progress: (p: JobProgress) => void, signal: AbortSignal) => Promise<T>,
    human: (r: T) => string,
    id?: string,
  ) => {
    if (o.wait === false) {
      const s = await withBackupOps(o, (ops) => ops.start(job, id));
      emit(
        io,
        o.json,
        { ...s },
        `${s.job} started: run ${s.runId} (follow it with \`coffre backup status ${s.runId}\`)`,
      );
      return;
    }
    reexecForTransfer();
    // SIGTERM/SIGINT: a local run stops at its next safe point (run recorded, lease released, scratch
    // removed); a remote one stops being followed and goes on at the appliance
    await interruptible(
      io,
      async (signal) => {
        const bar = progressBar();
        try {
          const r = await withBackupOps(o, (ops) => go(ops, (p) => bar.update(p), signal), {
            notice: (m) => io.err(`note: ${m}`),
          });
          bar.stop();
          emit(io, o.json, { ...(r as Record<string, unknown>) }, () => human(r));
        } finally {
          bar.stop(); // with --json, a failure's object (and a run's per-target report) is printed by action()
        }
      },
      { json: o.json },
    );
  };
  const noWait = () =>
    new Option(
      '--no-wait',
      'remote: start it and print its run id at once (follow it with `coffre backup status RUN_ID`)',
    );

  backup
    .command('run')
    .description('take a backup now, to every target (the same code as the daily job); progress on stderr')
    .addOption(dataDirOption())
    .addOption(noWait())
    .addOption(jsonOption())
    .action(
      action(io, (o: { dataDir?: string; wait?: boolean; json?: boolean }) =>
        jobVerb(
          o,
          'run',
          (ops, p, signal) => ops.run(p, signal),
          (report: RunReport) =>
            report.targets
              .map(
                (t) =>
                  `${t.target}: backup ${t.backupId} verified, ${fmtBytes(t.plainSize ?? 0)} in ${t.parts} part(s), ${((t.durationMs ?? 0) / 1000).toFixed(1)} s${t.deleted.length ? `; destroyed ${t.deleted.map((d) => `${d.id} (${d.reason})`).join(', ')}` : ''}`,
              )
              .join('\n'),
        ),
      ),
    );
  backup
    .command('list')
    .description('backups at each target with date, weekday slot, size, verification state')
    .addOption(dataDirOption())
    .option('--all', 'include deleted and failed backups')
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; all?: boolean; json?: boolean }) => {
        const bs = await withBackupOps(o, (ops) => ops.list(o.all ?? false));
        emit(io, o.json, { backups: bs }, () =>
          bs.length
            ? bs
                .map(
                  (b) =>
                    `${b.id}\t${b.target}\t${b.slotName}\t${b.state}\t${b.size === null ? '-' : fmtBytes(b.size)}\t${b.error ? `LAST CHECK FAILED: ${b.error}` : b.verifiedAt ? `verified ${b.verifiedAt}` : 'not verified'}`,
                )
                .join('\n')
            : 'no backup',
        );
      }),
    );
  backup
    .command('verify [id]')
    .description('download, decrypt and check a backup (default: latest); exit 7 when it fails its checks')
    .addOption(dataDirOption())
    .addOption(noWait())
    .addOption(jsonOption())
    .action(
      action(io, (id: string | undefined, o: { dataDir?: string; wait?: boolean; json?: boolean }) =>
        jobVerb(
          o,
          'verify',
          (ops, p, signal) => ops.verify(id ?? 'latest', p, signal),
          (r: VerifyResult) =>
            `backup ${r.id} at ${r.target} verified: ${r.members} member(s), ${fmtBytes(r.plainSize)}, ${(r.durationMs / 1000).toFixed(1)} s`,
          id ?? 'latest',
        ),
      ),
    );
  backup
    .command('drill')
    .description(
      'restore the newest backup into scratch space, check it, record the time taken (RTO); --secondary: on the secondary installation, from the target, with a signed report the primary reads',
    )
    .addOption(dataDirOption())
    .option(
      '--secondary',
      'run on the secondary installation whose --data-dir holds secondary.json (docs/disaster-recovery.md "Drill on the secondary site")',
    )
    .addOption(noWait())
    .addOption(jsonOption())
    .action(
      action(io, (o: { dataDir?: string; wait?: boolean; json?: boolean; secondary?: boolean }) =>
        o.secondary
          ? runSecondaryDrill(io, o)
          : jobVerb(
              o,
              'drill',
              (ops, p, signal) => ops.drill(p, signal),
              (r: DrillResult) =>
                `restore drill of ${r.backupId}: ${r.documents} document(s), ${r.blobs} blob(s), ${r.samples} sample(s) decrypted and matched; RTO ${(r.rtoMs / 1000).toFixed(1)} s`,
            ),
      ),
    );
  backup
    .command('drills')
    .description(
      'the latest restore drill here and the latest on the secondary site (its signed report, read from the targets): when, RTO, outcome',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (o: { dataDir?: string; json?: boolean }) => {
        const r = await withBackupOps(o, (ops) => ops.lastDrills());
        const line = (what: string, d: (typeof r)['local']) =>
          d
            ? `${what}: ${d.ok ? 'succeeded' : 'FAILED'} ${d.endedAt}${d.site ? ` at ${d.site}` : ''}, backup ${d.backupId}${d.rtoMs !== null ? `, RTO ${(d.rtoMs / 1000).toFixed(1)} s` : ''}${d.error ? ` — ${d.error}` : ''}`
            : `${what}: none recorded`;
        emit(
          io,
          o.json,
          { ...r },
          `${line('last drill on this appliance', r.local)}\n${line('last drill on the secondary site', r.secondary)}`,
        );
      }),
    );
  backup
    .command('status <runId>')
    .description(
      'a run of a backup job (run, verify, drill): follows it to its end (progress on stderr) and exits as it ended; --no-wait: its state now',
    )
    .addOption(dataDirOption())
    .addOption(new Option('--no-wait', 'print the run as it is now, without waiting for its end'))
    .addOption(jsonOption())
    .action(
      action(io, async (runId: string, o: { dataDir?: string; wait?: boolean; json?: boolean }) => {
        const id = parseNumber('RUN_ID', 1, Number.MAX_SAFE_INTEGER, true)(runId);
        const bar = progressBar();
        try {
          const r = await withBackupOps(o, (ops) => ops.status(id, o.wait !== false, (p) => bar.update(p)));
          bar.stop();
          emit(
            io,
            o.json,
            { ...r },
            `run ${r.runId} (${r.job}, by ${r.actor}): ${r.outcome}${r.progress && r.outcome === 'running' ? `, ${r.progress.phase} ${Math.round(r.progress.percent ?? 0)} %` : ''}${r.error ? ` — ${r.error}` : ''}`,
          );
        } finally {
          bar.stop();
        }
      }),
    );

  registerRestore(program, io);
}

/**
 * `coffre backup drill --secondary --data-dir DIR`: the secondary installation is DIR, holding
 * `secondary.json` ({site, target: {url, hostKey?, identityFile?, passwordFile?}, keys, samples?};
 * relative paths against DIR), scratch space under DIR/tmp and a log of its reports,
 * DIR/drill-reports.jsonl. It reads the target and writes only its report (drill-reports/).
 */
async function runSecondaryDrill(io: Io, o: { dataDir?: string; json?: boolean }): Promise<void> {
  if (!o.dataDir)
    throw backupErrors.usage(
      "--secondary needs --data-dir: the secondary installation's directory (with secondary.json)",
      'see docs/disaster-recovery.md "Drill on the secondary site"',
    );
  const dir = path.resolve(o.dataDir);
  const file = path.join(dir, 'secondary.json');
  let raw: { site?: unknown; target?: Record<string, unknown>; keys?: unknown; samples?: unknown };
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof raw;
  } catch (e) {
    throw backupErrors.usage(
      `cannot read ${file} as JSON (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      'see docs/disaster-recovery.md "Drill on the secondary site"',
    );
  }
  const tgt = raw.target ?? {};
  if (
    typeof raw.site !== 'string' ||
    !raw.site ||
    typeof tgt.url !== 'string' ||
    !/^(sftp|file):\/\//.test(tgt.url) ||
    !raw.keys
  )
    throw backupErrors.usage(
      `${file}: needs "site" (a name), "target": {"url": "sftp://…" or "file://…"} and "keys" (this site's HSM)`,
    );
  const keysFile = path.join(dir, '.keys.json');
  fs.writeFileSync(keysFile, JSON.stringify({ keys: raw.keys }));
  let keysConfig: KeysConfig;
  try {
    keysConfig = readKeysFile(keysFile);
  } finally {
    fs.rmSync(keysFile, { force: true });
  }
  const rel = (v: unknown) => (typeof v === 'string' && v ? resolveConfigPath(dir, v) : null);
  const spec = {
    type: tgt.url.startsWith('sftp:') ? ('sftp' as const) : ('path' as const),
    url: tgt.url,
    hostKey: typeof tgt.hostKey === 'string' ? parseHostKey(tgt.hostKey) : null,
    identityFile: rel(tgt.identityFile),
    passwordFile: rel(tgt.passwordFile),
  };
  const options: TargetOptions = { retry: { retries: 3, baseMs: 2000 } };
  const log = createLogger({ level: 'warn', destination: 'stderr' });
  reexecForTransfer();
  const target = openTarget(spec, { ...options, readSecret: (f, what) => readSecretFile(f, what) });
  const bar = progressBar();
  let report!: DrillReport;
  try {
    const keys = await createKeyProvider(keysConfig, { log });
    try {
      await interruptible(
        io,
        async (signal) => {
          report = await secondaryDrill({
            target,
            targetRef: targetRef(spec, options, readSecretFile),
            keys,
            keysSection: { ...keysConfig },
            scratchDir: path.join(dir, 'tmp'),
            site: raw.site as string,
            samples: typeof raw.samples === 'number' ? raw.samples : 5,
            log,
            progress: (p) => bar.update(p),
            signal,
          });
        },
        { json: o.json },
      );
    } finally {
      await keys.close();
    }
  } finally {
    bar.stop();
    await target.close();
  }
  if ((report as DrillReport | undefined) === undefined) return;
  fs.appendFileSync(path.join(dir, 'drill-reports.jsonl'), JSON.stringify(report) + '\n', { mode: 0o600 });
  if (!report.ok) {
    const [code, ...rest] = (report.error ?? 'BACKUP_DRILL_FAILED: failed').split(': ');
    throw new AppError(code!, rest.join(': '), {
      details: { reportId: report.reportId },
      hint: 'the signed report of this failure was written to the target; the primary raises backup.drill-failed',
    });
  }
  emit(
    io,
    o.json,
    { ...report },
    `restore drill on the secondary site ${report.site}: backup ${report.backupId} restored and checked (parts, database, audit chain of ${report.checks?.auditRecords} record(s), ${report.checks?.samples} sample(s)); RTO ${((report.rtoMs ?? 0) / 1000).toFixed(1)} s; signed report ${report.reportId} written to the target`,
  );
}

/** Reads `--keys FILE`: the `keys` section for this site's HSM; relative paths against the file. */
function readKeysFile(file: string): KeysConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw backupErrors.usage(`--keys: cannot read ${file} as JSON (${(e as Error).message})`);
  }
  const obj = (
    raw && typeof raw === 'object' && 'keys' in (raw as object) ? (raw as { keys: unknown }).keys : raw
  ) as Record<string, unknown>;
  const withDefaults = Value.Default(KeysSection, structuredClone(obj)) as Record<string, unknown>;
  const problems = [...Value.Errors(KeysSection, withDefaults)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length) throw backupErrors.usage(`--keys: ${problems.join('; ')}`);
  for (const k of ['module', 'pinFile', 'softhsmConfFile']) {
    const v = withDefaults[k];
    if (typeof v === 'string') withDefaults[k] = resolveConfigPath(path.dirname(path.resolve(file)), v);
  }
  return withDefaults as unknown as KeysConfig;
}

/** `--postgres FILE`: a `database` section of type postgres (or a config holding one), checked like config.json's. */
/** a JSON file holding one configuration section, or a whole configuration that holds it */
function readSectionFile(file: string, flag: string, section: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw backupErrors.usage(`${flag}: cannot read ${file} as JSON (${(e as Error).message})`);
  }
  const inner = raw && typeof raw === 'object' ? (raw as Record<string, unknown>)[section] : undefined;
  return (inner && typeof inner === 'object' ? inner : raw) as Record<string, unknown>;
}

function readPostgresFile(file: string): PostgresConfig {
  const obj = readSectionFile(file, '--postgres', 'database');
  const withDefaults = Value.Default(PostgresDb, structuredClone(obj)) as Record<string, unknown>;
  const problems = [...Value.Errors(PostgresDb, withDefaults)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length) throw backupErrors.usage(`--postgres: ${problems.join('; ')}`);
  if (typeof withDefaults.passwordFile === 'string')
    withDefaults.passwordFile = resolveConfigPath(path.dirname(path.resolve(file)), withDefaults.passwordFile);
  return withDefaults as unknown as PostgresConfig;
}

/** `--storage FILE`: a `storage` section (or a config holding one), checked, its file paths made absolute */
function readStorageFile(file: string): StorageConfig {
  const obj = readSectionFile(file, '--storage', 'storage');
  const cfg = Value.Default(StorageSection, structuredClone(obj)) as StorageConfig;
  const problems = [...Value.Errors(StorageSection, cfg)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (cfg.type === 's3' && !cfg.s3) problems.push('/s3: required when type is s3');
  if (problems.length) throw backupErrors.usage(`--storage: ${problems.join('; ')}`);
  const base = path.dirname(path.resolve(file));
  if (cfg.type === 'fs') return { ...cfg, dir: path.resolve(base, cfg.dir) };
  return {
    ...cfg,
    s3: {
      ...cfg.s3!,
      secretAccessKeyFile: resolveConfigPath(base, cfg.s3!.secretAccessKeyFile),
      ...(cfg.s3!.caFile ? { caFile: resolveConfigPath(base, cfg.s3!.caFile) } : {}),
    },
  };
}

function registerRestore(program: Command, io: Io): void {
  program
    .command('restore')
    .description(
      'build a secondary installation from a backup; the keys come from the HSM (the same partition or its replica)',
    )
    .requiredOption(
      '--from <target>',
      'a target URL (sftp://…, file://…, s3://…) or the name of a target registered at --source-data-dir',
    )
    .requiredOption('--backup <id>', 'a backup id, or latest')
    .requiredOption('--data-dir <dir>', 'the new data directory (absent or empty)')
    .option('--keys <file>', "JSON of the `keys` section for this site's HSM (default: the source appliance's)")
    .option(
      '--source-data-dir <dir>',
      'an appliance whose registered target and HSM to use (e.g. the live one, for a test restore)',
    )
    .option('--host-key <key>', 'SFTP URL: the server host key to pin')
    .option('--identity <file>', 'SFTP URL: private key file')
    .option('--password-file <file>', 'SFTP URL: password file; S3 URL: the secret access key')
    .option(
      '--storage <file>',
      'JSON of a `storage` section: the blob store the restored blobs go into (e.g. an S3 bucket) instead of blobs/ in the data directory',
    )
    .option(
      '--postgres <file>',
      'JSON of a `database` section of type postgres: restore into that new, empty PostgreSQL database instead of a SQLite file',
    )
    .addOption(jsonOption())
    .action(
      action(
        io,
        async (o: {
          postgres?: string;
          storage?: string;
          from: string;
          backup: string;
          dataDir: string;
          keys?: string;
          sourceDataDir?: string;
          hostKey?: string;
          identity?: string;
          passwordFile?: string;
          json?: boolean;
        }) => {
          reexecForTransfer();
          const actor = localActor();
          const log = createLogger({ level: 'warn', destination: 'stderr' });
          const source = o.sourceDataDir
            ? await openAppliance({ dataDir: resolveDataDir(o.sourceDataDir), log, migrate: false })
            : null;
          let sourceOpen = source !== null;
          const closeSource = async () => {
            if (sourceOpen) await source!.close();
            sourceOpen = false;
          };
          const newDir = path.resolve(o.dataDir);
          try {
            let keysConfig: KeysConfig;
            if (o.keys) keysConfig = readKeysFile(o.keys);
            else if (source) keysConfig = { ...source.config.keys };
            else
              throw backupErrors.usage(
                "restore needs the HSM: pass --keys FILE (the keys section for this site's HSM) or --source-data-dir DIR",
                'see docs/disaster-recovery.md',
              );
            let spec;
            if (/^(sftp|file|s3|s3\+http):\/\//.test(o.from)) {
              spec = {
                type: o.from.startsWith('sftp:')
                  ? ('sftp' as const)
                  : o.from.startsWith('s3')
                    ? ('s3' as const)
                    : ('path' as const),
                url: o.from,
                hostKey: o.hostKey ? parseHostKey(o.hostKey) : null,
                identityFile: o.identity ?? null,
                passwordFile: o.passwordFile ?? null,
              };
            } else {
              if (!source)
                throw backupErrors.usage(
                  `--from ${o.from}: a target name needs --source-data-dir (the appliance where it is registered), else give its URL`,
                );
              const t = (await source.backup.listTargets()).find((x) => x.name === o.from);
              if (!t) throw backupErrors.usage(`no target named ${o.from} at ${source.config.dataDir}`);
              spec = t;
            }
            // the source appliance's settings (bandwidth limit included) when there is one
            const options: TargetOptions = source
              ? targetOptions(source.config.backup)
              : { retry: { retries: 3, baseMs: 2000 } };
            const target = openTarget(spec, { ...options, readSecret: (f, what) => readSecretFile(f, what) });
            const bar = progressBar();
            let report!: Awaited<ReturnType<typeof restoreInto>>; // unset when interrupted
            try {
              // the source appliance's own provider when there is one (one HSM session per process)
              const keys = source && !o.keys ? source.keys.provider : await createKeyProvider(keysConfig, { log });
              try {
                // SIGTERM/SIGINT: the new data directory is cleaned up as on any failure, exit 143/130
                await interruptible(
                  io,
                  async (signal) => {
                    report = await restoreInto({
                      target,
                      targetRef: targetRef(spec, options, readSecretFile),
                      backup: o.backup,
                      dataDir: newDir,
                      keys,
                      keysSection: { ...keysConfig },
                      log,
                      progress: (p) => bar.update(p),
                      signal,
                      ...(o.postgres ? { postgres: readPostgresFile(o.postgres) } : {}),
                      ...(o.storage ? { storage: readStorageFile(o.storage) } : {}),
                    });
                  },
                  { json: o.json },
                );
              } finally {
                if (keys !== source?.keys.provider) await keys.close();
              }
            } finally {
              bar.stop();
              await target.close();
            }
            if ((report as typeof report | undefined) === undefined) return; // interrupted: said, exit code set
            if (source)
              await source.audit.recordNow({
                action: 'backup.restore',
                actor,
                outcome: 'success',
                targets: { backup: report.backupId },
              });
            await closeSource();
            // start the restored appliance once: migrations, and the restore recorded in its own trail
            const restored = await openAppliance({ dataDir: newDir, log, migrate: true });
            try {
              await restored.audit.recordNow({
                action: 'backup.restore',
                actor,
                outcome: 'success',
                targets: { backup: report.backupId },
              });
            } finally {
              await restored.close();
            }
            emit(io, o.json, { ...report }, () =>
              [
                `restored backup ${report.backupId} (taken ${report.createdAt}) of appliance ${report.applianceId} into ${report.dataDir}`,
                `  ${report.documents} document(s), ${report.versions} version(s), ${report.blobs} blob(s), ${fmtBytes(report.plainSize)}; every hash and the database checked; ${(report.durationMs / 1000).toFixed(1)} s`,
                'next steps:',
                ...report.nextSteps.map((s, i) => `  ${i + 1}. ${s}`),
              ].join('\n'),
            );
          } finally {
            await closeSource().catch(() => undefined);
          }
        },
      ),
    );
}
