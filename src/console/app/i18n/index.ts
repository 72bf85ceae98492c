import i18next, { type TOptions } from 'i18next';
import { useEffect, useState } from 'preact/hooks';
import { RESOURCES, type Catalogue } from './resources.js';

/**
 * The console's languages (docs/i18n.md). One i18next instance, initialised synchronously from
 * the catalogues bundled with the console (locales/<lang>/<namespace>.json: each file is the
 * subtree `<namespace>.*` of the keys). Plurals use the `_one` / `_other` suffixes (Intl.PluralRules),
 * values are interpolated with `{{name}}` and escaped by Preact, never by i18next.
 *
 * Which language: the user's choice stored on the appliance (`me.language`, set from My account),
 * else the browser's (navigator.languages), else English.
 */
export const LANGUAGES = ['en', 'fr'] as const;
export type Language = (typeof LANGUAGES)[number];
export const DEFAULT_LANGUAGE: Language = 'en';

declare module 'i18next' {
  interface CustomTypeOptions {
    resources: { translation: Catalogue };
    returnNull: false;
  }
}

const i18n = i18next.createInstance();
void i18n.init({
  resources: RESOURCES,
  lng: DEFAULT_LANGUAGE,
  fallbackLng: DEFAULT_LANGUAGE,
  supportedLngs: [...LANGUAGES],
  initAsync: false,
  // Preact escapes text; escaping here too would show "&amp;" in names
  interpolation: { escapeValue: false },
  returnNull: false,
});

/** the first supported language among these tags ('fr-CA' → 'fr'), or undefined */
export function supported(tags: readonly (string | null | undefined)[]): Language | undefined {
  for (const tag of tags) {
    const base = tag?.toLowerCase().split('-')[0];
    if (base && (LANGUAGES as readonly string[]).includes(base)) return base as Language;
  }
  return undefined;
}

/** the browser's preference, before anyone signs in */
export function browserLanguage(): Language {
  const nav = typeof navigator === 'undefined' ? [] : [...(navigator.languages ?? []), navigator.language];
  return supported(nav) ?? DEFAULT_LANGUAGE;
}

let subs: ((l: Language) => void)[] = [];

export function language(): Language {
  return (supported([i18n.language]) ?? DEFAULT_LANGUAGE) as Language;
}

/** switches the whole console (and the <html lang> attribute) to this language */
export function setLanguage(l: Language): void {
  if (l === language()) return;
  void i18n.changeLanguage(l);
  if (typeof document !== 'undefined') document.documentElement.lang = l;
  subs.forEach((s) => s(l));
}

/** re-renders the caller when the language changes */
export function useLanguage(): Language {
  const [l, setL] = useState(language());
  useEffect(() => {
    subs.push(setL);
    setL(language());
    return () => {
      subs = subs.filter((s) => s !== setL);
    };
  }, []);
  return l;
}

/** the translation of a key in the current language: t('documents.upload.title', { name }) */
export const t: typeof i18n.t = i18n.t.bind(i18n);

/**
 * The text of a key built at run time (a configuration key's label), in the current language or
 * else in English; undefined when the catalogues have no text there, where t() would return the key.
 */
export function lookup(key: string): string | undefined {
  for (const l of [language(), DEFAULT_LANGUAGE]) {
    const v: unknown = i18n.getResource(l, 'translation', key);
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/** the fixed options type of t, for helpers that pass them through */
export type TranslateOptions = TOptions;

// ---- numbers and dates, in the current language (Intl) ----

/** a locale tag for Intl: the language, with the browser's region when it speaks that language */
export function locale(): string {
  const l = language();
  const nav = typeof navigator === 'undefined' ? [] : [...(navigator.languages ?? [])];
  return nav.find((tag) => tag.toLowerCase().split('-')[0] === l) ?? l;
}

export function formatNumber(n: number, o?: Intl.NumberFormatOptions): string {
  return new Intl.NumberFormat(locale(), o).format(n);
}

export function formatDate(d: Date, o?: Intl.DateTimeFormatOptions): string {
  return d.toLocaleString(locale(), o);
}

/**
 * A decimal number as a person types it in the current language: "48,85" or "48.85" (French
 * writes a decimal comma; both are accepted in either language since a coordinate has no
 * thousands separator). Returns NaN when it is not a number.
 */
export function parseDecimal(s: string): number {
  const v = s
    .trim()
    .replace(/\u2212/g, '-')
    .replace(',', '.');
  if (!/^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$/.test(v)) return Number.NaN;
  return Number(v);
}
