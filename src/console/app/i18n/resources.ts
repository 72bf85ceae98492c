/**
 * The console's catalogues: one JSON file per language and namespace (locales/<lang>/<ns>.json).
 * A namespace is a top-level key: `t('account.language.label')` reads locales/<lang>/account.json.
 * To add a namespace, add its two files and one line per language below; English is the
 * reference type (a key missing in English fails the build), and test/i18n/catalogues.test.ts
 * checks that French has exactly the same keys, none empty.
 */
import enCommon from './locales/en/common.json' with { type: 'json' };
import enNav from './locales/en/nav.json' with { type: 'json' };
import enErrors from './locales/en/errors.json' with { type: 'json' };
import enAccount from './locales/en/account.json' with { type: 'json' };
import enRecords from './locales/en/records.json' with { type: 'json' };
import enSignin from './locales/en/signin.json' with { type: 'json' };
import frSignin from './locales/fr/signin.json' with { type: 'json' };
import enAdmin from './locales/en/admin.json' with { type: 'json' };
import frAdmin from './locales/fr/admin.json' with { type: 'json' };
import enReviews from './locales/en/reviews.json' with { type: 'json' };
import frReviews from './locales/fr/reviews.json' with { type: 'json' };
import enKeys from './locales/en/keys.json' with { type: 'json' };
import frKeys from './locales/fr/keys.json' with { type: 'json' };
import enSettings from './locales/en/settings.json' with { type: 'json' };
import frSettings from './locales/fr/settings.json' with { type: 'json' };
import enBackup from './locales/en/backup.json' with { type: 'json' };
import enPrivacy from './locales/en/privacy.json' with { type: 'json' };
import enDocuments from './locales/en/documents.json' with { type: 'json' };
import frDocuments from './locales/fr/documents.json' with { type: 'json' };
import enAudit from './locales/en/audit.json' with { type: 'json' };
import frAudit from './locales/fr/audit.json' with { type: 'json' };
import frCommon from './locales/fr/common.json' with { type: 'json' };
import frNav from './locales/fr/nav.json' with { type: 'json' };
import frErrors from './locales/fr/errors.json' with { type: 'json' };
import frAccount from './locales/fr/account.json' with { type: 'json' };
import frRecords from './locales/fr/records.json' with { type: 'json' };
import frBackup from './locales/fr/backup.json' with { type: 'json' };
import frPrivacy from './locales/fr/privacy.json' with { type: 'json' };
import enOperations from './locales/en/operations.json' with { type: 'json' };
import frOperations from './locales/fr/operations.json' with { type: 'json' };
import enIntegrity from './locales/en/integrity.json' with { type: 'json' };
import frIntegrity from './locales/fr/integrity.json' with { type: 'json' };
import enIncidents from './locales/en/incidents.json' with { type: 'json' };
import frIncidents from './locales/fr/incidents.json' with { type: 'json' };
import enUser from './locales/en/user.json' with { type: 'json' };
import frUser from './locales/fr/user.json' with { type: 'json' };

const en = {
  common: enCommon,
  nav: enNav,
  errors: enErrors,
  account: enAccount,
  records: enRecords,
  signin: enSignin,
  admin: enAdmin,
  reviews: enReviews,
  keys: enKeys,
  settings: enSettings,
  backup: enBackup,
  privacy: enPrivacy,
  documents: enDocuments,
  audit: enAudit,
  operations: enOperations,
  integrity: enIntegrity,
  incidents: enIncidents,
  user: enUser,
};

export type Catalogue = typeof en;

const fr: Catalogue = {
  common: frCommon,
  nav: frNav,
  errors: frErrors,
  account: frAccount,
  records: frRecords,
  signin: frSignin,
  admin: frAdmin,
  reviews: frReviews,
  keys: frKeys,
  settings: frSettings,
  backup: frBackup,
  privacy: frPrivacy,
  documents: frDocuments,
  audit: frAudit,
  operations: frOperations,
  integrity: frIntegrity,
  incidents: frIncidents,
  user: frUser,
};

export const RESOURCES = { en: { translation: en }, fr: { translation: fr } };
