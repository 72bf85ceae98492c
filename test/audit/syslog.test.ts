import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { makeSelfSigned } from '../../src/http/index.js';
import { AuditSyslogSection, type AuditSyslogConfig } from '../../src/config/sections/audit.js';
import { SyslogForwarder } from '../../src/audit/syslog/forwarder.js';
import { recordMessage, SD_ID } from '../../src/audit/syslog/format.js';
import { normalizeEvent, chain, GENESIS_HASH } from '../../src/audit/canonical.js';
import { TestCollector, parse5424 } from './collector.js';
import { createLogger } from '../../src/shared/logger.js';
import { Leases } from '../../src/jobs/leases.js';
import { ev, openTrail, rmrf, silentLog, type TestTrail } from './support.js';

const APPLIANCE = 'a1b2c3d4-0000-4000-8000-000000000002';
let cert: { certPem: string; keyPem: string };
let t: TestTrail | undefined;
let collector: TestCollector | undefined;
let fwd: SyslogForwarder | undefined;
beforeAll(async () => {
  cert = await makeSelfSigned([]);
});
afterEach(async () => {
  await fwd?.stop(500).catch(() => undefined);
  await collector?.stop().catch(() => undefined);
  if (t) {
    await t.close().catch(() => undefined);
    rmrf(t.dir);
  }
  fwd = collector = t = undefined;
});

const cfgFor = (over: Partial<AuditSyslogConfig>): AuditSyslogConfig =>
  Value.Default(AuditSyslogSection, { enabled: true, ...over }) as AuditSyslogConfig;

function auditSeqs(msgs: string[]): number[] {
  return msgs
    .map(parse5424)
    .filter((p) => p.msgId === 'audit')
    .map((p) => Number(p.sd[SD_ID]!.seq));
}
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const uniq = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

async function tlsSetup(
  over: Partial<AuditSyslogConfig> = {},
  fo: Partial<ConstructorParameters<typeof SyslogForwarder>[0]> = {},
) {
  t = await openTrail();
  const caFile = path.join(t.dir, 'collector-ca.pem');
  fs.writeFileSync(caFile, cert.certPem);
  collector = new TestCollector('tls', { key: cert.keyPem, cert: cert.certPem });
  const port = await collector.start();
  fwd = new SyslogForwarder({
    db: t.h.db,
    cfg: cfgFor({ transport: 'tls', host: '127.0.0.1', port, caFile, alertAfterMs: 1000, ...over }),
    applianceId: APPLIANCE,
    clock: t.clock,
    log: process.env.DBG ? createLogger({ level: 'debug', destination: 'stderr' }) : silentLog(),
    pollMs: 50,
    confirmMs: 300,
    hostname: 'coffre-test',
    ...fo,
  });
  t.auditor.onAppended(() => fwd?.wake());
  return { t, collector, fwd };
}

describe('RFC 5424 messages', () => {
  it('escape structured data and carry the whole record as JSON', () => {
    const p = normalizeEvent(
      ev(1, { source: { ip: '::1', userAgent: 'evil"] \\ agent\u0001', requestId: 'r]"1' } }),
      Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    );
    const [r] = chain(0, GENESIS_HASH, [p]);
    const m = parse5424(recordMessage({ facility: 13, appName: 'coffre', hostname: 'host name!' }, r!));
    expect(m.pri).toBe(13 * 8 + 6);
    expect(m).toMatchObject({
      version: 1,
      timestamp: '2026-01-02T03:04:05.006Z',
      hostname: 'host_name!',
      appName: 'coffre',
      msgId: 'audit',
    });
    expect(m.sd[SD_ID]).toMatchObject({ seq: '1', action: 'doc.read', requestId: 'r]"1', hash: r!.hash });
    expect(JSON.parse(m.msg)).toMatchObject({
      type: 'coffre.audit.event',
      seq: 1,
      hash: r!.hash,
      source: { userAgent: 'evil"] \\ agent ' },
    });
  });
});

describe('syslog export', () => {
  it('delivers every record over TLS in real time, in order, as RFC 5424', async () => {
    const { t, collector, fwd } = await tlsSetup();
    await fwd.start();
    for (let i = 1; i <= 200; i++)
      await (i % 50 === 0 ? t.auditor.recordNow(ev(i)) : Promise.resolve(void t.auditor.recordNow(ev(i))));
    await t.auditor.flush();
    await collector.waitFor((m) => auditSeqs(m).length >= 200);
    expect(auditSeqs(collector.messages)).toEqual(range(1, 200));
    for (const m of collector.messages) {
      const p = parse5424(m);
      expect(p.appName).toBe('coffre');
      expect(p.hostname).toBe('coffre-test');
      expect(JSON.parse(p.msg)).toMatchObject({ type: 'coffre.audit.event' });
    }
  });

  it('queues records while the collector is down, alerts, then delivers them all (none lost)', async () => {
    const down: { queued: number }[] = [];
    const up: unknown[] = [];
    const { t, collector, fwd } = await tlsSetup(
      {},
      { onDown: (i) => down.push(i), onUp: (i) => up.push(i), maxBackoffMs: 400 },
    );
    await fwd.start();
    await Promise.all(range(1, 100).map((i) => t.auditor.recordNow(ev(i))));
    await collector.waitFor((m) => auditSeqs(m).length >= 100);
    // the collector dies hard, then records keep coming
    await collector.stop();
    const before = collector.messages.length;
    for (let i = 101; i <= 1100; i++) {
      t.auditor.recordNow(ev(i)).catch(() => undefined);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await t.auditor.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(fwd.status()).toMatchObject({ connected: false });
    expect(down).toHaveLength(0);
    t.clock.advance(5000);
    for (let i = 0; i < 100 && down.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(down).toHaveLength(1);
    expect(down[0]!.queued).toBeGreaterThanOrEqual(1000);
    await collector.start();
    await collector.waitFor((m) => uniq(auditSeqs(m)).length >= 1100, 30_000);
    expect(uniq(auditSeqs(collector.messages))).toEqual(range(1, 1100));
    expect(uniq(auditSeqs(collector.messages.slice(before)))).toEqual(expect.arrayContaining(range(101, 1100)));
    expect(up).toHaveLength(1);
  });

  it('resends what a collector lost when it died mid-stream', async () => {
    const { t, collector, fwd } = await tlsSetup({}, { maxBackoffMs: 300, batch: 50 });
    await fwd.start();
    const writing = (async () => {
      for (let i = 1; i <= 3000; i++) {
        t.auditor.recordNow(ev(i)).catch(() => undefined);
        if (i % 100 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      await t.auditor.flush();
    })();
    await collector.waitFor((m) => m.length >= 200);
    await collector.stop();
    // records written to the dying connection after this were lost with it
    const kept = uniq(auditSeqs(collector.messages));
    await writing;
    await collector.start();
    await collector.waitFor((m) => uniq([...kept, ...auditSeqs(m)]).length >= 3000, 30_000);
    expect(uniq(auditSeqs(collector.messages))).toEqual(expect.arrayContaining(range(kept.at(-1)! + 1, 3000)));
  });

  it('resumes from the persisted cursor after a restart without resending what was delivered', async () => {
    const { t, collector, fwd } = await tlsSetup();
    await fwd.start();
    await Promise.all(range(1, 50).map((i) => t.auditor.recordNow(ev(i))));
    await collector.waitFor((m) => auditSeqs(m).length >= 50);
    await fwd.stop();
    expect(
      Number(
        (await t.h.db.selectFrom('audit_cursors').select('seq').where('sink', '=', 'syslog').executeTakeFirstOrThrow())
          .seq,
      ),
    ).toBe(50);
    await Promise.all(range(51, 80).map((i) => t.auditor.recordNow(ev(i))));
    const again = new SyslogForwarder({
      db: t.h.db,
      cfg: cfgFor({
        transport: 'tls',
        host: '127.0.0.1',
        port: collector.port,
        caFile: path.join(t.dir, 'collector-ca.pem'),
      }),
      applianceId: APPLIANCE,
      clock: t.clock,
      log: silentLog(),
      pollMs: 50,
    });
    await again.start();
    try {
      await collector.waitFor((m) => auditSeqs(m).length >= 80);
      await new Promise((r) => setTimeout(r, 200));
      expect(auditSeqs(collector.messages)).toEqual(range(1, 80));
    } finally {
      await again.stop();
    }
  });

  it('sends checkpoints and alerts on the same stream', async () => {
    const { t, collector, fwd } = await tlsSetup();
    await t.auditor.recordNow(ev(1));
    const head = await t.h.db.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
    await t.h.db
      .insertInto('audit_checkpoints')
      .values({
        seq: head.seq,
        kind: 'periodic',
        at: 1,
        hash: head.hash,
        key_name: 'coffre-audit-checkpoint',
        mac: 'ab'.repeat(32),
      })
      .execute();
    await fwd.start();
    fwd.sendAlert('<130>1 2026-01-01T00:00:00.000Z h coffre 1 alert [coffre@32473 kind="x"] test');
    await collector.waitFor(
      (m) => m.some((x) => parse5424(x).msgId === 'checkpoint') && m.some((x) => parse5424(x).msgId === 'alert'),
    );
    const cp = collector.messages.map(parse5424).find((p) => p.msgId === 'checkpoint')!;
    expect(JSON.parse(cp.msg)).toMatchObject({
      type: 'coffre.audit.checkpoint',
      applianceId: APPLIANCE,
      seq: 1,
      hash: head.hash,
      mac: 'ab'.repeat(32),
    });
  });

  it('refuses a collector whose certificate it does not trust', async () => {
    const { t, collector, fwd: _unused } = await tlsSetup();
    await _unused.stop();
    fwd = new SyslogForwarder({
      db: t.h.db,
      cfg: cfgFor({ transport: 'tls', host: '127.0.0.1', port: collector.port }),
      applianceId: APPLIANCE,
      clock: t.clock,
      log: silentLog(),
      pollMs: 50,
    });
    await t.auditor.recordNow(ev(1));
    await fwd.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(collector.messages).toHaveLength(0);
    expect(fwd.status().lastError).toMatch(/SELF_SIGNED|self.signed|certificate/i);
  });

  it('has one sender across processes (lease); another takes over when it stops', async () => {
    const { t, collector, fwd } = await tlsSetup();
    await fwd.stop();
    const mk = (holder: string) =>
      new SyslogForwarder({
        db: t.h.db,
        cfg: cfgFor({
          transport: 'tls',
          host: '127.0.0.1',
          port: collector.port,
          caFile: path.join(t.dir, 'collector-ca.pem'),
        }),
        applianceId: APPLIANCE,
        clock: t.clock,
        log: silentLog(),
        pollMs: 50,
        lease: Object.assign(new Leases(t.h.db, t.clock, holder, 1500), { ttlMs: 1500 }),
      });
    const a = mk('node-a');
    const b = mk('node-b');
    try {
      await a.start();
      await new Promise((r) => setTimeout(r, 100));
      await b.start();
      await Promise.all(range(1, 300).map((i) => t.auditor.recordNow(ev(i))));
      a.wake();
      b.wake();
      await collector.waitFor((m) => auditSeqs(m).length >= 300);
      await new Promise((r) => setTimeout(r, 300));
      expect(auditSeqs(collector.messages)).toEqual(range(1, 300)); // each record once: one sender
      expect([a.status().leader, b.status().leader]).toEqual([true, false]);
      await a.stop();
      await Promise.all(range(301, 400).map((i) => t.auditor.recordNow(ev(i))));
      await collector.waitFor((m) => auditSeqs(m).length >= 400, 10_000);
      expect(auditSeqs(collector.messages)).toEqual(range(1, 400));
      expect(b.status().leader).toBe(true);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  for (const transport of ['tcp', 'udp'] as const) {
    it(`delivers over plain ${transport.toUpperCase()} for legacy collectors`, async () => {
      t = await openTrail();
      collector = new TestCollector(transport);
      const port = await collector.start();
      fwd = new SyslogForwarder({
        db: t.h.db,
        cfg: cfgFor({ transport, host: '127.0.0.1', port }),
        applianceId: APPLIANCE,
        clock: t.clock,
        log: silentLog(),
        pollMs: 50,
      });
      await fwd.start();
      await Promise.all(range(1, 30).map((i) => t!.auditor.recordNow(ev(i))));
      fwd.wake();
      await collector.waitFor((m) => auditSeqs(m).length >= 30);
      expect(auditSeqs(collector.messages)).toEqual(range(1, 30));
    });
  }
});
