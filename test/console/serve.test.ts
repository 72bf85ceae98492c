import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { build, type App } from '../../src/http/index.js';
import { HttpSection } from '../../src/config/sections/http.js';
import { createLogger } from '../../src/shared/logger.js';
import { consolePlugin, defaultConsoleDir } from '../../src/console/serve.js';
import { tempDir } from '../support/tmp.js';

const log = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const http = Value.Default(HttpSection, {}) as never;
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36';
const IE11 = 'Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko';

// scripts/test builds the console (npm run build) before the suite runs
const dir = defaultConsoleDir();

describe('console static serving', () => {
  let app: App;
  beforeAll(async () => {
    expect(fs.existsSync(path.join(dir, 'index.html')), 'dist/console is built by npm run build').toBe(true);
    app = await build({ http, log, root: [consolePlugin({ log, dir })] });
    await app.ready();
  });
  afterAll(() => app.close());

  it('serves the single page with the strict CSP and no inline script or style', async () => {
    const r = await app.inject({ url: '/', headers: { 'user-agent': CHROME } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.headers['cache-control']).toBe('no-store');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const html = r.body;
    // every script is external, no <style> element, no style= or on*= attribute
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const s of scripts) {
      expect(s[1]).toMatch(/\bsrc="\/assets\/main-[A-Z0-9]+\.js"/);
      expect(s[2]!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    // nothing from another origin
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//i);
  });

  it('serves fingerprinted assets as immutable, and nothing outside them', async () => {
    const html = (await app.inject({ url: '/' })).body;
    const js = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)![1]!;
    const css = /href="(\/assets\/main-[A-Z0-9]+\.css)"/.exec(html)![1]!;
    const a = await app.inject({ url: js });
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toMatch(/javascript/);
    expect(a.headers['cache-control']).toMatch(/immutable/);
    expect(a.headers['cache-control']).toMatch(/max-age=31536000/);
    const c = await app.inject({ url: css });
    expect(c.statusCode).toBe(200);
    expect(c.headers['content-type']).toMatch(/^text\/css/);
    for (const bad of [
      '/assets/..%2F..%2Fpackage.json',
      '/assets/%2e%2e%2findex.html',
      '/assets/.hidden.js',
      '/assets/missing-X.js',
      '/index.html',
      '/assets/',
    ]) {
      const r = await app.inject({ url: bad });
      expect(r.statusCode, bad).toBe(404);
      expect(r.headers['content-type'], bad).toMatch(/json/);
    }
  });

  it('ships no eval, no Function constructor and no inline style setting in the bundle', async () => {
    const html = (await app.inject({ url: '/' })).body;
    const js = (await app.inject({ url: /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)![1]! })).body;
    expect(js.length).toBeGreaterThan(10_000);
    expect(js).not.toMatch(/\beval\(/);
    expect(js).not.toMatch(/new Function\(|\bFunction\(["'`]/);
    expect(js).not.toMatch(/setAttribute\(\s*["']style["']/);
    expect(js).not.toMatch(/localStorage|sessionStorage/);
    expect(js).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i);
  });

  it('gives obsolete browsers the 426 page, never the console', async () => {
    const r = await app.inject({ url: '/', headers: { 'user-agent': IE11 } });
    expect(r.statusCode).toBe(426);
    expect(r.body).toMatch(/not supported/);
    expect(r.body).not.toContain('/assets/');
    const a = await app.inject({ url: '/assets/favicon.svg', headers: { 'user-agent': IE11 } });
    expect(a.statusCode).toBe(426);
  });

  it('answers 503 with a clear message when the console is not built', async () => {
    const empty = tempDir();
    const app2 = await build({ http, log, root: [consolePlugin({ log, dir: empty })] });
    const r = await app2.inject({ url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.body).toMatch(/not built/);
    await app2.close();
  });
});
