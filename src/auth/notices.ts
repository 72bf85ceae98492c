import { pickLanguage, translator, utcDateTime } from '../shared/i18n/index.js';

/**
 * The texts users receive, in the recipient's language (`users.language`, else English: an
 * e-mail has no browser to ask), from src/shared/i18n/locales/<lang>/mail.json. A link or a
 * one-time code is the only secret a message may carry, and never a password (P6).
 */
type Recipient = { language?: string | null } | null | undefined;
const tr = (r: Recipient) => {
  const lang = pickLanguage(r?.language);
  return { lang, t: translator(lang) };
};

/** what an admin did to a member, as told to the workspace's owners */
export type OwnerAlertWhat = 'reinvite' | 'reset' | 'recovery';

export const notices = {
  enrol: (to: Recipient, username: string, url: string, hours: number) => {
    const { t } = tr(to);
    return { subject: t('mail.enrol.subject'), text: t('mail.enrol.text', { username, url, hours }) };
  },
  reset: (to: Recipient, username: string, url: string, hours: number) => {
    const { t } = tr(to);
    return { subject: t('mail.reset.subject'), text: t('mail.reset.text', { username, url, hours }) };
  },
  passwordChanged: (to: Recipient, username: string, atMs: number) => {
    const { t, lang } = tr(to);
    return {
      subject: t('mail.passwordChanged.subject'),
      text: t('mail.passwordChanged.text', { username, at: utcDateTime(lang, atMs) }),
    };
  },
  code: (to: Recipient, code: string, minutes: number) => {
    const { t } = tr(to);
    return { subject: t('mail.code.subject'), text: t('mail.code.text', { code, minutes }) };
  },
  mfaLocked: (to: Recipient, username: string, minutes: number, atMs: number) => {
    const { t, lang } = tr(to);
    return {
      subject: t('mail.mfaLocked.subject'),
      text: t('mail.mfaLocked.text', { username, minutes, at: utcDateTime(lang, atMs) }),
    };
  },
  ownerAlert: (to: Recipient, owner: string, member: string, what: OwnerAlertWhat) => {
    const { t } = tr(to);
    return {
      subject: t('mail.ownerAlert.subject'),
      text: t('mail.ownerAlert.text', { owner, member, what: t(`mail.ownerAlert.what.${what}`) }),
    };
  },
  reviewReminder: (to: Recipient, due: string) => {
    const { t, lang } = tr(to);
    const ms = Date.parse(due);
    return {
      subject: t('mail.reviewReminder.subject'),
      text: t('mail.reviewReminder.text', { due: Number.isNaN(ms) ? due : utcDateTime(lang, ms) }),
    };
  },
};

/** the English words of an owner alert, for the operators' alert (not sent to a person) */
export const ownerAlertText = (what: OwnerAlertWhat): string => translator('en')(`mail.ownerAlert.what.${what}`);
