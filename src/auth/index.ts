export { wireIdentity, logAlerter, type Identity, type IdentityOptions } from './wire.js';
export { SESSION_COOKIE, csrfTokenFor } from './sessions.js';
export { Links } from './links.js';
export { checkPassword, MAX_PASSWORD_LENGTH } from './passwords/policy.js';
export { normaliseUsername } from './username.js';
export { userView, personalKeyName, ERASED_NAME, UserDirectory, type UserView, type UserRow } from './users.js';
export { authErrors } from './errors.js';
export type { MailSender, SmsSender } from './messaging.js';
