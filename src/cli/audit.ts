import { EXIT } from './exit-codes.js';
import fs from 'node:fs';
import type { Command } from 'commander';
import { withAppliance } from './local.js';
import { AppError } from '../shared/errors.js';
import {
  parseExportedCheckpoint,
  type Checkpoint,
  type PruneResult,
  type SealResult,
  type VerifyReport,
} from '../audit/index.js';
import { action, dataDirOption, emit, jsonOption, localActor, parseTime, type Io } from './output.js';

/** Reads exported checkpoints (a JSON object, an array, or JSON lines: other lines are ignored). */
export function readAnchors(files: readonly string[]): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new AppError('USAGE', `--checkpoint: cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
        exitCode: 2,
      });
    }
    const found: Checkpoint[] = [];
    const take = (o: unknown) => {
      const c = parseExportedCheckpoint(o);
      if (c) found.push(c);
    };
    try {
      const whole = JSON.parse(text) as unknown;
      if (Array.isArray(whole)) whole.forEach(take);
      else take(whole);
    } catch {
      for (const line of text.split('\n')) {
        const t = line.trim();
        if (!t.startsWith('{')) continue;
        try {
          take(JSON.parse(t));
        } catch {
          /* not a JSON line */
        }
      }
    }
    if (!found.length)
      throw new AppError('USAGE', `--checkpoint: ${f} holds no Coffre audit checkpoint`, {
        exitCode: 2,
        hint: 'pass a checkpoint exported to the SIEM or included with a backup',
      });
    out.push(...found);
  }
  return out;
}

function human(r: VerifyReport): string {
  if (!r.ok) return `audit trail ALTERED at seq ${r.firstBadSeq}: ${r.problem?.message ?? ''}`;
  const range = r.records ? `seq ${r.firstSeq}–${r.lastSeq}` : 'empty';
  const pruned = r.prunedUpTo ? `, pruned up to ${r.prunedUpTo}` : '';
  const mac = r.checkpoints.macChecked ? 'MACs checked in the HSM' : 'MACs not checked';
  const anchors = r.anchors.total ? `, ${r.anchors.matched}/${r.anchors.total} exported checkpoint(s) matched` : '';
  return `audit trail verified: ${r.records} record(s) (${range}${pruned}), ${r.checkpoints.matched}/${r.checkpoints.total} checkpoint(s) matched (${mac})${anchors}`;
}

export function registerAudit(program: Command, io: Io): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description(
      'recompute the audit chain and check every checkpoint; exit 1 and the first bad record if it was altered',
    )
    .addOption(dataDirOption())
    .option('--checkpoint <file...>', 'exported checkpoint(s) (from the SIEM or a backup): detects a cut-off tail')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; checkpoint?: string[]; json?: boolean }) => {
        const anchors = readAnchors(opts.checkpoint ?? []);
        return withAppliance(
          opts.dataDir,
          async (a) => {
            // a damaged page surfaces as DB_CORRUPT (exit 7, integrity), from the database layer
            const report = await a.audit.verify(anchors);
            // local commands are audited like any other actor; the verdict is printed even if that fails
            await a.audit
              .recordNow({
                action: 'audit.verify',
                actor: localActor(),
                outcome: report.ok ? 'success' : 'failure',
                ...(report.ok ? {} : { reason: report.problem!.code }),
              })
              .catch((e: unknown) =>
                io.err(`warning: this verification could not be recorded in the audit trail (${(e as Error).message})`),
              );
            emit(io, opts.json, { ...report }, () => human(report));
            if (!report.ok) {
              io.err(
                `AUDIT_TAMPERED: ${report.problem!.message} — first bad seq ${report.firstBadSeq}; keep this database and the exported checkpoints as evidence`,
              );
              process.exitCode = EXIT.integrity;
            }
          },
          { migrate: false },
        );
      }),
    );
  audit
    .command('checkpoint')
    .description(
      'MAC the head of the trail in the HSM now and print the checkpoint (keep it off the appliance: verify --checkpoint detects a trail cut back before it)',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        return withAppliance(
          opts.dataDir,
          async (a) => {
            await a.audit.recordNow({ action: 'audit.checkpoint', actor: localActor(), outcome: 'success' });
            const [latest] = await a.audit.exportCheckpoints(1);
            if (!latest) throw new AppError('AUDIT_EMPTY', 'the audit trail is empty: nothing to checkpoint');
            emit(io, opts.json, latest, () => `checkpoint at seq ${String(latest.seq)}: ${JSON.stringify(latest)}`);
          },
          { migrate: false },
        );
      }),
    );
  audit
    .command('export')
    .description('JSON-lines export of the audit records in [--from, --to) for auditors (stdout, or --out FILE)')
    .addOption(dataDirOption())
    .requiredOption('--from <time>', 'start, inclusive (ISO 8601, e.g. 2026-01-01 or 2026-01-01T00:00:00Z)')
    .requiredOption('--to <time>', 'end, exclusive (ISO 8601)')
    .option('--out <file>', 'write to this file (created, never overwritten) instead of stdout')
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; from: string; to: string; out?: string; json?: boolean }) => {
        const range = { from: parseTime('--from', opts.from), to: parseTime('--to', opts.to) };
        if (range.to <= range.from) throw new AppError('USAGE', '--to must be after --from', { exitCode: 2 });
        if (opts.json && !opts.out)
          throw new AppError('USAGE', '--json needs --out (without it, stdout carries the JSON lines)', {
            exitCode: 2,
          });
        return withAppliance(
          opts.dataDir,
          async (a) => {
            let fd: number | undefined;
            const tmp = opts.out ? `${opts.out}.partial` : undefined;
            try {
              if (opts.out && fs.existsSync(opts.out))
                throw new AppError('USAGE', `--out: ${opts.out} exists; nothing was written`, { exitCode: 2 });
              // reads are recorded before the data is released
              await a.audit.recordNow({ action: 'audit.export', actor: localActor(), outcome: 'success' });
              if (tmp) fd = fs.openSync(tmp, 'wx', 0o600);
              const summary = await a.audit.export(range, (line) => {
                if (fd !== undefined) fs.writeSync(fd, line + '\n');
                else io.out(line);
              });
              if (fd !== undefined && tmp && opts.out) {
                fs.fsyncSync(fd);
                fs.closeSync(fd);
                fd = undefined;
                fs.renameSync(tmp, opts.out);
                emit(
                  io,
                  opts.json,
                  { file: opts.out, ...summary },
                  `exported ${summary.records} record(s) to ${opts.out}`,
                );
              } else io.err(`exported ${summary.records} record(s)`);
            } catch (e) {
              if (fd !== undefined) fs.closeSync(fd);
              if (tmp) fs.rmSync(tmp, { force: true });
              throw e;
            }
          },
          { migrate: false },
        );
      }),
    );
  audit
    .command('seal')
    .description(
      'seal every complete UTC day not sealed yet now (also the daily job audit.seal): signed by the HSM sealing key, chained day to day',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        return withAppliance(
          opts.dataDir,
          async (a) => {
            const { result } = await a.scheduler.run<SealResult>('audit.seal', { trigger: 'cli', actor: localActor() });
            emit(
              io,
              opts.json,
              { ...result },
              result.sealed.length
                ? `sealed ${result.sealed.length} day(s), up to ${result.latest}`
                : `nothing to seal${result.latest ? ` (latest seal: ${result.latest})` : ''}`,
            );
          },
          { migrate: false },
        );
      }),
    );
  audit
    .command('seals')
    .description('the daily audit seals, checked offline with openssl (docs/proofs.md)')
    .command('export')
    .argument('<dir>', 'directory to write into (created; must not exist or be empty)')
    .description('write the seals, their signatures, timestamps and certificates, and a README of the openssl commands')
    .addOption(dataDirOption())
    .option('--from <day>', 'first day (YYYY-MM-DD)')
    .option('--to <day>', 'last day (YYYY-MM-DD)')
    .addOption(jsonOption())
    .action(
      action(io, async (dir: string, opts: { dataDir?: string; from?: string; to?: string; json?: boolean }) => {
        for (const [flag, v] of [
          ['--from', opts.from],
          ['--to', opts.to],
        ] as const) {
          if (v !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(v))
            throw new AppError('USAGE', `${flag} must be a day, YYYY-MM-DD (got "${v}")`, { exitCode: 2 });
        }
        if (fs.existsSync(dir) && fs.readdirSync(dir).length)
          throw new AppError('USAGE', `${dir} is not empty; nothing was written`, { exitCode: 2 });
        return withAppliance(
          opts.dataDir,
          async (a) => {
            if (!a.audit.seals)
              throw new AppError('SEALS_UNAVAILABLE', 'this appliance has no sealing key', { httpStatus: 503 });
            await a.audit.recordNow({ action: 'audit.seals_export', actor: localActor(), outcome: 'success' });
            const r = await a.audit.seals.exportTo(dir, await a.seals.certificates(), {
              ...(opts.from ? { from: opts.from } : {}),
              ...(opts.to ? { to: opts.to } : {}),
            });
            emit(
              io,
              opts.json,
              { ...r },
              `${r.seals} seal(s) written to ${dir} (${r.timestamped} timestamped); see ${dir}/README.txt`,
            );
          },
          { migrate: false },
        );
      }),
    );
  audit
    .command('prune')
    .description(
      'apply the retention now (audit.retentionDays): delete older records under a MACed "pruned up to N" checkpoint, once the whole trail verifies',
    )
    .addOption(dataDirOption())
    .addOption(jsonOption())
    .action(
      action(io, async (opts: { dataDir?: string; json?: boolean }) => {
        return withAppliance(
          opts.dataDir,
          async (a) => {
            const { result } = await a.scheduler.run<PruneResult>('audit.prune', {
              trigger: 'cli',
              actor: localActor(),
            });
            emit(
              io,
              opts.json,
              { prunedUpTo: result.prunedUpTo, deleted: result.deleted },
              result.deleted
                ? `pruned ${result.deleted} record(s) up to seq ${result.prunedUpTo}`
                : `nothing to prune (records are kept ${a.config.audit.retentionDays} days)`,
            );
          },
          { migrate: false },
        );
      }),
    );
}
