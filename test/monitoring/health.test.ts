import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/main.js';
import type { App } from '../../src/http/index.js';
import { createTestAppliance, type TestAppliance } from '../support/appliance.js';

/** Liveness (/healthz) and readiness (/readyz, per component) are distinct. */
let ta: TestAppliance;
let app: App;

async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  // the audit export points at a collector that is down, and counts as down after 1 s
  const port = await deadPort();
  ta = await createTestAppliance({
    env: {
      COFFRE_CFG_audit__syslog: JSON.stringify({
        enabled: true,
        transport: 'tcp',
        host: '127.0.0.1',
        port,
        alertAfterMs: 1000,
      }),
    },
  });
  app = await buildApp(ta.appliance, false);
  await app.ready();
}, 120_000);
afterAll(async () => {
  await app?.close();
  await ta?.close();
});

const get = async (url: string) => {
  const r = await app.inject({ method: 'GET', url });
  return {
    status: r.statusCode,
    body: r.json() as { status: string; components?: Record<string, string> },
    headers: r.headers,
  };
};
const after = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('/healthz and /readyz', { timeout: 60_000 }, () => {
  it('ready with every component up; liveness says only ok', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const r = await get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      status: 'ready',
      components: { database: 'up', keys: 'up', storage: 'up', 'audit-export': 'up' },
    });
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('storage gone: 503 naming it, while /healthz stays 200; ready again once it is back', async () => {
    const dir = ta.appliance.config.storage.dir;
    fs.renameSync(dir, `${dir}.away`);
    try {
      await after(1100);
      const r = await get('/readyz');
      expect(r.status).toBe(503);
      expect(r.body).toEqual({
        status: 'not-ready',
        components: { database: 'up', keys: 'up', storage: 'down', 'audit-export': 'up' },
      });
      expect(JSON.stringify(r.body)).not.toContain(path.basename(dir));
      expect((await get('/healthz')).status).toBe(200);
    } finally {
      fs.renameSync(`${dir}.away`, dir);
    }
    await after(1100);
    expect((await get('/readyz')).status).toBe(200);
  });

  it('audit export: down once its collector has been unreachable for audit.syslog.alertAfterMs', async () => {
    await ta.appliance.audit.startExport();
    await after(2200);
    const r = await get('/readyz');
    expect(r.status).toBe(503);
    expect(r.body.components).toMatchObject({ 'audit-export': 'down', storage: 'up' });
  });
});
