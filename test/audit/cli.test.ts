import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAppliance } from '../../src/init.js';
import { serve } from '../../src/main.js';
import { main } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/db/index.js';
import { rmrf, silentLog, tamper } from './support.js';
import { canonicalEncoding, chainHash } from '../../src/audit/canonical.js';

let dir: string;
beforeAll(async () => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-audit-cli-')), 'data');
  await initAppliance({ dataDir: dir, jurisdiction: 'FR', timeZone: 'UTC', hostnames: [], actor: 'local:test' });
});
afterAll(() => rmrf(path.dirname(dir)));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'coffre', ...args], {
    out: (s) => void (out += s.endsWith('\n') ? s : s + '\n'),
    err: (s) => void (err += s.endsWith('\n') ? s : s + '\n'),
  });
  process.exitCode = undefined;
  return { code, out, err };
}

async function events(): Promise<{ seq: number; action: string; actor: string; reason: string | null }[]> {
  const h = openDatabase(loadConfig(dir, {}).database);
  try {
    return (
      await h.db.selectFrom('audit_events').select(['seq', 'action', 'actor', 'reason']).orderBy('seq').execute()
    ).map((r) => ({ ...r, seq: Number(r.seq) }));
  } finally {
    await h.close();
  }
}

describe('appliance start/stop and `coffre audit verify`', () => {
  it('records appliance.start before serving and appliance.stop when stopping', async () => {
    // scheduled jobs of other modules (catch-up runs) would add their own records: off here
    const running = await serve({
      dataDir: dir,
      env: { COFFRE_CFG_jobs__enabled: 'false' },
      log: silentLog(),
      port: 0,
      host: '127.0.0.1',
    });
    await running.stop('SIGTERM');
    const evs = await events();
    expect(evs.map((e) => [e.action, e.actor])).toEqual([
      ['appliance.start', 'system'],
      ['appliance.stop', 'system'],
    ]);
    expect(evs[1]!.reason).toBe('SIGTERM');
  });

  it('verifies a clean trail (exit 0, one JSON object) and records the verification', async () => {
    const r = await run(['audit', 'verify', '--data-dir', dir, '--json']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ ok: true, records: 2, firstSeq: 1, lastSeq: 2 });
    const evs = await events();
    expect(evs.at(-1)).toMatchObject({ action: 'audit.verify', actor: expect.stringMatching(/^local:/) });
    const human = await run(['audit', 'verify', '--data-dir', dir]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/audit trail verified: 3 record\(s\)/);
  });

  it('exits 1 and names the first bad sequence number when a record was altered', async () => {
    const file =
      loadConfig(dir, {}).database.type === 'sqlite' ? (loadConfig(dir, {}).database as { file: string }).file : '';
    tamper(file, (db) => db.prepare(`UPDATE audit_events SET actor = 'user:someone' WHERE seq = 2`).run());
    const r = await run(['audit', 'verify', '--data-dir', dir, '--json']);
    expect(r.code).toBe(7);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, firstBadSeq: 2, problem: { code: 'HASH_MISMATCH' } });
    expect(r.err).toMatch(/^AUDIT_TAMPERED: .*first bad seq 2/m);
    const human = await run(['audit', 'verify', '--data-dir', dir]);
    expect(human.code).toBe(7);
    expect(human.out).toMatch(/ALTERED at seq 2/);
    // the failed verification is itself recorded
    expect((await events()).at(-1)).toMatchObject({ action: 'audit.verify', reason: 'HASH_MISMATCH' });
    tamper(file, (db) => db.prepare(`UPDATE audit_events SET actor = 'system' WHERE seq = 2`).run());
    expect((await run(['audit', 'verify', '--data-dir', dir])).code).toBe(0);
  });

  it('detects a cut-off tail with its checkpoints deleted by itself, through the anchor file outside the database', async () => {
    const own = path.join(path.dirname(dir), 'anchored');
    await initAppliance({ dataDir: own, jurisdiction: 'FR', timeZone: 'UTC', hostnames: [], actor: 'local:test' });
    const file = (loadConfig(own, {}).database as { file: string }).file;
    for (let i = 0; i < 3; i++) expect((await run(['audit', 'verify', '--data-dir', own])).code).toBe(0);
    const cp = await run(['audit', 'checkpoint', '--data-dir', own, '--json']);
    expect(cp.code, cp.err).toBe(0);
    const n = (JSON.parse(cp.out) as { seq: number }).seq;
    const anchorFile = path.join(own, 'audit', 'anchor.json');
    expect(JSON.parse(fs.readFileSync(anchorFile, 'utf8'))).toMatchObject({ type: 'coffre.audit.checkpoint', seq: n });
    const ok = await run(['audit', 'verify', '--data-dir', own, '--json']);
    expect(ok.code, ok.out).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, anchors: { total: 1, matched: 1 } });
    // cut the tail, its checkpoints and fix the head: only the database is rewritten
    tamper(file, (db) => {
      db.prepare('DELETE FROM audit_events WHERE seq >= ?').run(n - 1);
      db.prepare('DELETE FROM audit_targets WHERE seq >= ?').run(n - 1);
      db.prepare('DELETE FROM audit_checkpoints WHERE seq >= ?').run(n - 1);
      const prev = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        hash: string;
      };
      db.prepare('UPDATE audit_head SET seq = ?, hash = ?').run(prev.seq, prev.hash);
    });
    const cut = await run(['audit', 'verify', '--data-dir', own, '--json']);
    expect(cut.code).toBe(7);
    expect(JSON.parse(cut.out)).toMatchObject({ ok: false, firstBadSeq: n - 1, problem: { code: 'TRUNCATED' } });
    // an anchor file replaced by something else is reported, not ignored
    fs.writeFileSync(anchorFile, '{"hello":1}');
    const replaced = await run(['audit', 'verify', '--data-dir', own, '--json']);
    expect(JSON.parse(replaced.out)).toMatchObject({ ok: false, problem: { code: 'ANCHOR_UNREADABLE' } });
  });

  it('cut tail, its checkpoints deleted, an older anchor file put back and a forged tail written: the cadence check fails with the range', async () => {
    const own = path.join(path.dirname(dir), 'cadence');
    await initAppliance({ dataDir: own, jurisdiction: 'FR', timeZone: 'UTC', hostnames: [], actor: 'local:test' });
    const file = (loadConfig(own, {}).database as { file: string }).file;
    const anchorFile = path.join(own, 'audit', 'anchor.json');
    expect((await run(['audit', 'verify', '--data-dir', own])).code).toBe(0);
    const old = fs.readFileSync(anchorFile); // the intruder keeps an early copy of the anchor
    const k = (JSON.parse(old.toString()) as { seq: number }).seq;
    for (let i = 0; i < 3; i++) expect((await run(['audit', 'verify', '--data-dir', own])).code).toBe(0);
    // cut everything after the old anchor, delete the checkpoints, write a forged tail over ten minutes of activity
    tamper(file, (db) => {
      db.prepare('DELETE FROM audit_events WHERE seq > ?').run(k);
      db.prepare('DELETE FROM audit_targets WHERE seq > ?').run(k);
      db.prepare('DELETE FROM audit_checkpoints WHERE seq > ?').run(k);
      const last = db.prepare('SELECT at, hash FROM audit_events WHERE seq = ?').get(k) as { at: number; hash: string };
      let prev = last.hash;
      const ins = db.prepare(
        'INSERT INTO audit_events (seq, at, actor, action, outcome, reason, targets, source_ip, user_agent, request_id, hash) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?)',
      );
      for (let i = 1; i <= 4; i++) {
        const r = {
          seq: k + i,
          at: last.at + i * 200_000,
          actor: 'system',
          action: 'appliance.start',
          outcome: 'success' as const,
          reason: null,
          targets: [],
          sourceIp: null,
          userAgent: null,
          requestId: null,
        };
        prev = chainHash(prev, canonicalEncoding(r));
        ins.run(r.seq, r.at, r.actor, r.action, r.outcome, prev);
      }
      db.prepare('UPDATE audit_head SET seq = ?, hash = ?').run(k + 4, prev);
    });
    fs.writeFileSync(anchorFile, old);
    const r = await run(['audit', 'verify', '--data-dir', own, '--json']);
    expect(r.code, r.err).toBe(7);
    const rep = JSON.parse(r.out) as { ok: boolean; firstBadSeq: number; problem: { code: string; message: string } };
    expect(rep).toMatchObject({ ok: false, firstBadSeq: k + 2, problem: { code: 'CHECKPOINT_OVERDUE' } });
    expect(rep.problem.message).toMatch(
      new RegExp(
        `^records ${k + 1}–${k + 4} \\(4 record\\(s\\), .*one was due after 60000 ms of activity.*yet record ${k + 2} was written at`,
      ),
    );
    expect(r.err).toMatch(new RegExp(`^AUDIT_TAMPERED: records ${k + 1}–${k + 4} .* first bad seq ${k + 2}`, 'm'));
  });

  it('detects a cut-off tail against a checkpoint kept off the box, and rejects a file that holds none', async () => {
    const cfg = loadConfig(dir, {});
    const file = (cfg.database as { file: string }).file;
    const cp = await run(['audit', 'checkpoint', '--data-dir', dir, '--json']);
    expect(cp.code).toBe(0);
    const exported = JSON.parse(cp.out) as { seq: number; mac: string; type: string };
    expect(exported).toMatchObject({
      type: 'coffre.audit.checkpoint',
      applianceId: cfg.applianceId,
      mac: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const anchor = path.join(path.dirname(dir), 'cp.jsonl');
    fs.writeFileSync(anchor, `<134>1 noise from the SIEM export\n${cp.out}`);
    expect((await run(['audit', 'verify', '--data-dir', dir, '--checkpoint', anchor, '--json'])).code).toBe(0);
    // the intruder cuts the tail, its checkpoints, and fixes the head row: the database alone looks consistent
    const n = exported.seq;
    tamper(file, (db) => {
      db.prepare('DELETE FROM audit_events WHERE seq >= ?').run(n - 1);
      db.prepare('DELETE FROM audit_checkpoints WHERE seq >= ?').run(n - 1);
      const prev = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        hash: string;
      };
      db.prepare('UPDATE audit_head SET seq = ?, hash = ?').run(prev.seq, prev.hash);
    });
    const cut = await run(['audit', 'verify', '--data-dir', dir, '--checkpoint', anchor, '--json']);
    expect(cut.code).toBe(7);
    expect(JSON.parse(cut.out)).toMatchObject({ ok: false, firstBadSeq: n - 1, problem: { code: 'TRUNCATED' } });
    const none = path.join(path.dirname(dir), 'none.json');
    fs.writeFileSync(none, '{"hello":1}');
    const bad = await run(['audit', 'verify', '--data-dir', dir, '--checkpoint', none]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^USAGE: --checkpoint: .* holds no Coffre audit checkpoint/);
  });

  it('exports a time range as JSON lines (stdout or --out), and audits the export', async () => {
    const out = await run(['audit', 'export', '--data-dir', dir, '--from', '2000-01-01', '--to', '2100-01-01']);
    expect(out.code).toBe(0);
    const lines = out.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; action?: string });
    expect(lines[0]).toMatchObject({ type: 'coffre.audit.export', firstSeq: expect.any(Number) });
    expect(lines.filter((l) => l.type === 'coffre.audit.event').at(-1)).toMatchObject({ action: 'audit.export' });
    expect(out.err).toMatch(/exported \d+ record\(s\)/);
    const file = path.join(path.dirname(dir), 'export.jsonl');
    const r = await run([
      'audit',
      'export',
      '--data-dir',
      dir,
      '--from',
      '2000-01-01T00:00:00Z',
      '--to',
      '2100-01-01',
      '--out',
      file,
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ file, records: expect.any(Number) });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n').length).toBeGreaterThan(3);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
    const again = await run([
      'audit',
      'export',
      '--data-dir',
      dir,
      '--from',
      '2000-01-01',
      '--to',
      '2100-01-01',
      '--out',
      file,
    ]);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/^USAGE: --out: .* exists/);
    const bad = await run(['audit', 'export', '--data-dir', dir, '--from', 'yesterday', '--to', '2100-01-01']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^USAGE: --from must be an ISO 8601/);
  });

  it('prune: nothing within the retention; refused with exit 1 when the trail does not verify', async () => {
    const ok = await run(['audit', 'prune', '--data-dir', dir, '--json']);
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ prunedUpTo: 0, deleted: 0 });
    const file = (loadConfig(dir, {}).database as { file: string }).file;
    tamper(file, (db) => db.prepare(`UPDATE audit_events SET outcome = 'failure' WHERE seq = 3`).run());
    const r = await run(['audit', 'prune', '--data-dir', dir, '--json']);
    expect(r.code).toBe(7);
    expect(r.err).toMatch(/^AUDIT_TAMPERED: .*first bad seq 3/);
    expect((await events()).some((e) => e.seq === 1)).toBe(true);
  });
});
