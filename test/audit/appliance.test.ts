import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSelfSigned } from '../../src/http/index.js';
import { parseExportedCheckpoint, type Checkpoint } from '../../src/audit/index.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';
import { TestCollector, parse5424 } from './collector.js';

let collector: TestCollector;
let ta: TestAppliance;
let tmp: string;
beforeAll(async () => {
  const cert = await makeSelfSigned([]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coffre-audit-app-'));
  fs.writeFileSync(path.join(tmp, 'ca.pem'), cert.certPem);
  collector = new TestCollector('tls', { key: cert.keyPem, cert: cert.certPem });
  const port = await collector.start();
  ta = await createTestAppliance({
    env: {
      COFFRE_CFG_audit__syslog: JSON.stringify({
        enabled: true,
        transport: 'tls',
        host: '127.0.0.1',
        port,
        caFile: path.join(tmp, 'ca.pem'),
      }),
    },
  });
});
afterAll(async () => {
  await ta?.close().catch(() => undefined);
  await collector?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the audit module wired into the appliance', () => {
  it('exports records, alerts and checkpoints to the SIEM and MACs checkpoints in the HSM', async () => {
    const { appliance } = ta;
    await appliance.audit.startExport();
    await appliance.audit.recordNow({ action: 'keys.status', actor: 'user:1', outcome: 'success' });
    await appliance.alerts.raise({ kind: 'keys.down', severity: 'critical', message: 'HSM unreachable (test)' });
    const exported = await appliance.audit.exportCheckpoints();
    const anchors = exported.map(parseExportedCheckpoint).filter((c): c is Checkpoint => c !== undefined);
    // newest first: the one made for this export covers the head
    expect(anchors[0]).toMatchObject({ applianceId: appliance.config.applianceId, seq: 2, kind: 'manual' });
    expect(await appliance.audit.verify(anchors)).toMatchObject({
      ok: true,
      records: 2,
      checkpoints: { matched: anchors.length, macChecked: true },
      anchors: { matched: anchors.length + 1 },
    }); // + the anchor file (src/audit/anchor.ts)
    await collector.waitFor((m) => {
      const ids = m.map(parse5424).map((p) => p.msgId);
      return ids.filter((x) => x === 'audit').length >= 2 && ids.includes('alert') && ids.includes('checkpoint');
    });
    await appliance.audit.recordNow({
      action: 'doc.read',
      actor: 'user:1',
      outcome: 'success',
      targets: { document: 'd1' },
    });
    await ta.close();
    // closing MACs the head and sends what was pending
    const msgs = collector.messages.map(parse5424);
    const stop = msgs
      .filter((p) => p.msgId === 'checkpoint')
      .map((p) => JSON.parse(p.msg) as { kind: string; seq: number });
    expect(stop.at(-1)).toMatchObject({ kind: 'stop', seq: 3 });
    expect(msgs.filter((p) => p.msgId === 'audit').map((p) => JSON.parse(p.msg).action)).toEqual([
      'keys.status',
      'alert.raised',
      'doc.read',
    ]);
  });
});
