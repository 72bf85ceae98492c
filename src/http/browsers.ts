import type { FastifyInstance } from 'fastify';
import { acceptedLanguages, DEFAULT_LANGUAGE, translator, type Language } from '../shared/i18n/index.js';

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

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** the 426 page in one language (src/shared/i18n/locales/<lang>/pages.json) */
export function obsoletePage(lang: Language): string {
  const t = translator(lang);
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${escape(t('pages.obsolete.title'))}</title></head>
<body><h1>${escape(t('pages.obsolete.heading'))}</h1>
<p>${escape(t('pages.obsolete.why'))}</p>
<p>${escape(t('pages.obsolete.use', { browsers: t('pages.obsolete.browsers') }))}</p></body></html>`;
}

export function installBrowserGate(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    if (isObsoleteBrowser(req.headers['user-agent'])) {
      // no session is read here: the browser's language (Accept-Language), else English
      const h = req.headers['accept-language'];
      const lang = acceptedLanguages(typeof h === 'string' ? h : undefined)[0] ?? DEFAULT_LANGUAGE;
      return reply
        .code(426)
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-language', lang)
        .header('vary', 'Accept-Language, User-Agent')
        .header('cache-control', 'no-store')
        .send(obsoletePage(lang));
    }
  });
}
