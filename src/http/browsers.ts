import type { FastifyInstance } from 'fastify';

/**
 * Obsolete browsers are refused with a 426 page naming those that work.
 * Non-browser clients (curl, scripts, the coffre CLI) are not affected: only a User-Agent that
 * identifies a known browser engine and version is judged.
 */
export const SUPPORTED = 'Chrome, Edge or Chromium 100+, Firefox 115+ (or ESR), Safari 15.4+';

const MIN = { chrome: 100, firefox: 115, safariMajor: 15, safariMinor: 4 };

export function isObsoleteBrowser(ua: string | undefined): boolean {
  if (!ua) return false;
  if (/MSIE |Trident\//.test(ua)) return true; // Internet Explorer, any version
  if (/ Edge\/\d+/.test(ua)) return true; // legacy EdgeHTML
  if (/Presto\//.test(ua)) return true; // Opera 12 and older
  const chrome = /(?:Chrome|Chromium|CriOS)\/(\d+)/.exec(ua);
  if (chrome) return Number(chrome[1]) < MIN.chrome;
  const ff = /(?:Firefox|FxiOS)\/(\d+)/.exec(ua);
  if (ff) return Number(ff[1]) < MIN.firefox;
  if (/Safari\//.test(ua) && /Version\/(\d+)(?:\.(\d+))?/.test(ua) && /AppleWebKit\//.test(ua)) {
    const m = /Version\/(\d+)(?:\.(\d+))?/.exec(ua)!;
    const major = Number(m[1]);
    const minor = Number(m[2] ?? 0);
    return major < MIN.safariMajor || (major === MIN.safariMajor && minor < MIN.safariMinor);
  }
  return false;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Browser not supported — Coffre</title></head>
<body><h1>This browser is not supported</h1>
<p>Coffre protects your documents with current encryption and security policies that this browser does not support.</p>
<p>Please use a current browser: ${SUPPORTED}.</p></body></html>`;

export function installBrowserGate(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    if (isObsoleteBrowser(req.headers['user-agent'])) {
      return reply.code(426).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(PAGE);
    }
  });
}
