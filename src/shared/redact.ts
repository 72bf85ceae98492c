/**
 * Secret redaction shared by the logger, error rendering and display strings.
 */

/** pino redact paths: anything that may hold a secret in a log object. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.pin',
  '*.token',
  '*.secret',
  // second-factor and recovery codes where a body is logged (not `*.code`: that would also hide
  // every logged error's code, which operators need)
  'body.code',
  '*.body.code',
  '*.recoveryCodes',
  'recoveryCodes',
  '*.link',
  '*.enrolUrl',
  '*.resetUrl',
  'password',
  'pin',
  'token',
  'secret',
  'link',
  'enrolUrl',
];

const SECRET_QUERY = /([?&](?:token|code|key|secret|password|pin|t)=)[^&#\s]+/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+):([^/@\s]+)@/gi;
const BEARER = /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi;
/** one-time links carry their token in the path after #/enrol/ or /enrol/ or /reset/ */
const LINK_TOKEN = /(\/(?:enrol|reset)\/)[A-Za-z0-9_-]{16,}/gi;

/** Removes credentials from a URL or any free text meant for display or logs. */
export function redactText(s: string): string {
  return s
    .replace(URL_USERINFO, '$1$2:***@')
    .replace(SECRET_QUERY, '$1***')
    .replace(BEARER, '$1***')
    .replace(LINK_TOKEN, '$1***');
}
