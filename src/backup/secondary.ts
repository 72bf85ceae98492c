import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { verifyTrail } from '../audit/index.js';
import { openDatabase } from '../db/index.js';
import type { KeyProvider } from '../keys/types.js';
import { isAppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { listTargets, recordCheck } from './catalogue.js';
import type { BackupCore } from './core.js';
import { backupErrors } from './errors.js';
import { canonicalJson, SIDECAR_MAC_KEY } from './format.js';
import type { TargetRef } from './registry.js';
import { pickBackup, restoreInto, sampleDocuments } from './restore.js';
import type { BackupTarget } from './targets/types.js';
import { streamText, type Progress } from './types.js';

/**
 * The restore drill on the secondary installation (DORA art. 12: restores tested on systems
 * segregated from the source), and how the primary learns its result.
 *
 * The secondary site runs `coffre backup drill --secondary --data-dir DIR`: from the target's
 * newest backup it restores into scratch space with its replica of the primary's HSM partition,
 * checks every part and member (restore), the database (`PRAGMA integrity_check`), the audit chain
 * of the restored database (checkpoint MACs in the HSM) and sample documents, measures the time
 * taken (RTO), and writes a report to the target under `drill-reports/`, MACed inside the HSM.
 * The primary reads those reports (the hourly watchdog, `coffre backup drills`), checks the MAC with
 * its own HSM and records them: only a holder of the HSM partition's keys can make a report the
 * primary accepts (docs/disaster-recovery.md "Drill on the secondary site").
 */

export const DRILL_REPORTS = 'drill-reports';
export const REPORT_FORMAT = 'coffre-drill-report/1';
const REPORT_NAME = /^\d{8}T\d{6}Z-[0-9a-f]{8}\.json$/;

export interface DrillReport {
  format: typeof REPORT_FORMAT;
  /** `<UTC time>-<8 hex>`: also the file name under drill-reports/ */
  reportId: string;
  /** the secondary site's name (its secondary.json) */
  site: string;
  /** the appliance whose backup was restored (from the backup's sidecar) */
  applianceId: string | null;
  backupId: string | null;
  startedAt: string;
  endedAt: string;
  ok: boolean;
  /** `CODE: message` when the drill failed */
  error: string | null;
  rtoMs: number | null;
  counts: { documents: number; versions: number; blobs: number } | null;
  checks: { parts: boolean; database: boolean; auditChain: boolean; auditRecords: number; samples: number } | null;
  /** hex HMAC-SHA256 inside the HSM (the sidecar MAC key, which the replica holds) over the canonical JSON of every other field */
  mac: string;
}

const macInput = (r: Omit<DrillReport, 'mac'>) => Buffer.from(canonicalJson({ ...r, mac: undefined }), 'utf8');

export interface SecondaryDrillOptions {
  target: BackupTarget;
  targetRef: TargetRef;
  keys: KeyProvider;
  keysSection: Record<string, unknown>;
  scratchDir: string;
  site: string;
  samples: number;
  threads?: number;
  log: Logger;
  progress?: Progress;
  signal?: AbortSignal;
}

/** Runs the drill at the secondary site and writes its signed report to the target (also when it fails). */
export async function secondaryDrill(o: SecondaryDrillOptions): Promise<DrillReport> {
  const started = new Date();
  const t0 = performance.now();
  const reportId = `${started
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${crypto.randomBytes(4).toString('hex')}`;
  fs.mkdirSync(o.scratchDir, { recursive: true, mode: 0o700 });
  const dir = path.join(o.scratchDir, `drill-${crypto.randomBytes(4).toString('hex')}`);
  let body: Omit<DrillReport, 'mac'>;
  let backupId: string | null = null;
  try {
    backupId = await pickBackup(o.target, 'latest');
    const r = await restoreInto({
      target: o.target,
      targetRef: o.targetRef,
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      backup: backupId,
      dataDir: dir,
      keys: o.keys,
      keysSection: o.keysSection,
      log: o.log,
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const s = await sampleDocuments(dir, o.keys, o.samples);
    const got = { documents: s.documents, versions: s.versions, blobs: r.blobs };
    if (
      got.documents !== r.expected.documents ||
      got.versions !== r.expected.versions ||
      got.blobs !== r.expected.blobs
    ) {
      throw backupErrors.integrity(
        `restored ${JSON.stringify(got)}, the backup recorded ${JSON.stringify(r.expected)}`,
      );
    }
    const h = openDatabase(
      { type: 'sqlite', file: path.join(dir, 'coffre.db'), busyTimeoutMs: 5000 },
      { mustExist: true },
    );
    let audit;
    try {
      audit = await verifyTrail({ db: h.db, applianceId: r.applianceId, keys: o.keys });
    } finally {
      await h.close();
    }
    if (!audit.ok)
      throw backupErrors.integrity(
        `the restored audit trail does not verify: ${audit.problem?.code ?? 'problem'} at record ${audit.firstBadSeq ?? '?'}`,
      );
    body = {
      format: REPORT_FORMAT,
      reportId,
      site: o.site,
      applianceId: r.applianceId,
      backupId,
      startedAt: started.toISOString(),
      endedAt: new Date().toISOString(),
      ok: true,
      error: null,
      rtoMs: Math.round(performance.now() - t0),
      counts: got,
      checks: { parts: true, database: true, auditChain: true, auditRecords: audit.records, samples: s.checked },
    };
  } catch (e) {
    if (o.signal?.aborted) throw e;
    const code = isAppError(e) ? e.code : 'BACKUP_DRILL_FAILED';
    body = {
      format: REPORT_FORMAT,
      reportId,
      site: o.site,
      applianceId: null,
      backupId,
      startedAt: started.toISOString(),
      endedAt: new Date().toISOString(),
      ok: false,
      error: `${code}: ${(e as Error).message}`.slice(0, 1000),
      rtoMs: null,
      counts: null,
      checks: null,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // the key must already be in the replica: a key made here would not be the primary's
  const mac = await o.keys.mac(SIDECAR_MAC_KEY, macInput(body), { create: false });
  const report: DrillReport = { ...body, mac: mac.toString('hex') };
  await o.target.put(`${DRILL_REPORTS}/${reportId}.json`, Buffer.from(JSON.stringify(report, null, 1) + '\n'));
  return report;
}

/**
 * The primary's side: reads the reports at every registered target that it has not recorded yet,
 * checks each report's MAC with its HSM and that it names this appliance, and records it
 * (`backup_checks`, kind `drill-secondary`). A report that does not verify is not recorded and
 * raises `backup.drill-report-forged`; a failed drill raises `backup.drill-failed`.
 */
export async function collectSecondaryDrills(c: BackupCore): Promise<{ recorded: number; refused: number }> {
  let recorded = 0;
  let refused = 0;
  const known = new Set(
    (await c.db.selectFrom('backup_checks').select('details').where('kind', '=', 'drill-secondary').execute()).map(
      (r) => (JSON.parse(r.details ?? '{}') as { reportId?: string }).reportId,
    ),
  );
  for (const info of await listTargets(c.db)) {
    const t = c.open(info);
    try {
      let names: string[];
      try {
        names = (await t.list(DRILL_REPORTS))
          .filter((e) => e.type === 'file' && REPORT_NAME.test(e.name))
          .map((e) => e.name);
      } catch (e) {
        if (isAppError(e) && e.code === 'TARGET_NOT_FOUND') continue;
        c.d.log.warn({ err: e, target: info.name }, 'secondary drill reports could not be listed');
        continue;
      }
      for (const name of names.sort()) {
        const reportId = name.replace(/\.json$/, '');
        if (known.has(reportId)) continue;
        const v = await readReport(c, t, name);
        if (!v.ok) {
          refused++;
          await c.alert({
            kind: 'backup.drill-report-forged',
            severity: 'critical',
            message: `the secondary drill report ${name} at target ${info.name} ${v.why}; it was not recorded`,
            targets: { target: info.name, report: reportId },
          });
          continue;
        }
        const r = v.report;
        await recordCheck(c.db, {
          backupId: r.backupId ?? '-',
          kind: 'drill-secondary',
          startedAt: Date.parse(r.startedAt),
          endedAt: Date.parse(r.endedAt),
          ok: r.ok,
          ...(r.error ? { error: r.error } : {}),
          details: {
            reportId,
            site: r.site,
            target: info.name,
            rtoMs: r.rtoMs,
            ...(r.counts ?? {}),
            ...(r.checks ? { samples: r.checks.samples, auditRecords: r.checks.auditRecords } : {}),
          },
        });
        known.add(reportId);
        recorded++;
        await c.d.audit.recordNow({
          action: 'backup.drill.secondary',
          actor: 'system',
          outcome: r.ok ? 'success' : 'failure',
          ...(r.ok ? {} : { reason: (r.error ?? 'FAILED').split(':')[0]!.slice(0, 64) }),
          targets: { target: info.name, report: reportId, ...(r.backupId ? { backup: r.backupId } : {}) },
        });
        if (!r.ok)
          await c.alert({
            kind: 'backup.drill-failed',
            severity: 'critical',
            message: `the restore drill on the secondary site ${r.site} failed: ${r.error}`,
            targets: { target: info.name, report: reportId },
          });
      }
    } finally {
      await t.close();
    }
  }
  return { recorded, refused };
}

async function readReport(
  c: BackupCore,
  t: BackupTarget,
  name: string,
): Promise<{ ok: true; report: DrillReport } | { ok: false; why: string }> {
  let r: Partial<DrillReport>;
  try {
    r = JSON.parse(await streamText(await t.get(`${DRILL_REPORTS}/${name}`))) as Partial<DrillReport>;
  } catch {
    return { ok: false, why: 'is not JSON' };
  }
  if (
    r.format !== REPORT_FORMAT ||
    typeof r.mac !== 'string' ||
    !/^[0-9a-f]{64}$/.test(r.mac) ||
    `${r.reportId}.json` !== name
  )
    return { ok: false, why: 'is not a drill report' };
  const { mac, ...rest } = r as DrillReport;
  let ok = false;
  try {
    ok = await c.d.keys.verifyMac(SIDECAR_MAC_KEY, macInput(rest), Buffer.from(mac, 'hex'));
  } catch (e) {
    if (!isAppError(e) || e.code !== 'KEY_DESTROYED') throw e;
  }
  if (!ok) return { ok: false, why: 'carries a MAC this HSM does not verify (not made with this HSM partition)' };
  if (r.ok && r.applianceId !== c.d.config.applianceId)
    return { ok: false, why: `restored appliance ${r.applianceId}, not this one` };
  return { ok: true, report: r as DrillReport };
}
