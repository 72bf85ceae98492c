import i18next from 'i18next';
import enErrors from './locales/en/errors.json' with { type: 'json' };
import enMail from './locales/en/mail.json' with { type: 'json' };
import enPages from './locales/en/pages.json' with { type: 'json' };
import frErrors from './locales/fr/errors.json' with { type: 'json' };
import frMail from './locales/fr/mail.json' with { type: 'json' };
import frPages from './locales/fr/pages.json' with { type: 'json' };

/**
 * The appliance's own words in each language (docs/i18n.md): error messages, e-mails, the
 * obsolete-browser page. One i18next instance, initialised synchronously from the catalogues in
 * locales/<lang>/<namespace>.json (each file is the subtree `<namespace>.*`). The console has
 * its own catalogues (src/console/app/i18n); test/i18n/catalogues.test.ts checks both.
 */
export const LANGUAGES = ['en', 'fr'] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = 'en';

const en = { errors: enErrors, mail: enMail, pages: enPages };
const fr: typeof en = { errors: frErrors, mail: frMail, pages: frPages };

const i18n = i18next.createInstance();
void i18n.init({
  resources: { en: { translation: en }, fr: { translation: fr } },
  lng: DEFAULT_LANGUAGE,
  fallbackLng: DEFAULT_LANGUAGE,
  supportedLngs: [...LANGUAGES],
  initAsync: false,
  // callers escape for their medium (HTML pages escape, e-mails are plain text, JSON is JSON)
  interpolation: { escapeValue: false },
  returnNull: false,
});

export const isLanguage = (s: unknown): s is Language =>
  typeof s === 'string' && (LANGUAGES as readonly string[]).includes(s);

/**
 * The languages of an `Accept-Language` header, best first ("fr-CH, fr;q=0.9, en;q=0.8" →
 * fr, en). Entries with q=0, malformed entries and unsupported languages are dropped.
 */
export function acceptedLanguages(header: string | undefined): Language[] {
  if (!header) return [];
  const out: { lang: Language; q: number; i: number }[] = [];
  header
    .slice(0, 512)
    .split(',')
    .forEach((part, i) => {
      const [tag, ...params] = part.trim().split(';');
      const base = tag?.trim().toLowerCase().split('-')[0];
      if (!isLanguage(base)) return;
      const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const q = qp === undefined ? 1 : Number(qp.slice(2));
      if (!Number.isFinite(q) || q <= 0 || q > 1) return;
      out.push({ lang: base, q, i });
    });
  out.sort((a, b) => b.q - a.q || a.i - b.i);
  return [...new Set(out.map((o) => o.lang))];
}

/** a user's stored choice, else the request's Accept-Language, else English */
export function pickLanguage(preferred: string | null | undefined, acceptLanguage?: string | undefined): Language {
  if (isLanguage(preferred)) return preferred;
  return acceptedLanguages(acceptLanguage)[0] ?? DEFAULT_LANGUAGE;
}

/** a message by key, with its `{{values}}`; keys are strings (the console's typed keys are its own) */
export type Translate = (key: string, values?: Record<string, unknown>) => string;

/** t() fixed to one language: translator('fr')('mail.reset.subject') */
export function translator(lang: Language): Translate {
  const t = i18n.getFixedT(lang) as unknown as (key: string, values?: Record<string, unknown>) => string;
  return (key, values) => t(key, values);
}

/** whether the catalogue has this key (e.g. `errors.codes.NOT_FOUND`) */
export function hasMessage(key: string): boolean {
  return i18n.exists(key, { lng: DEFAULT_LANGUAGE });
}

/** a date and time in UTC, written the way this language writes it */
export function utcDateTime(lang: Language, ms: number): string {
  return new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', {
    dateStyle: 'long',
    timeStyle: 'short',
    timeZone: 'UTC',
  }).format(new Date(ms));
}
