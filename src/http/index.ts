export { build, type App, type BuildOptions } from './build.js';
export { listen } from './server.js';
export { tlsServerOptions, TLS_POLICY, CIPHERS } from './tls.js';
export { makeSelfSigned, certFingerprint } from './cert.js';
export type { Actor, Authenticator, Permission } from './permissions.js';
export { runHealthChecks, type HealthCheck, type HealthResult } from './health.js';
export { ErrorReply, errorReplies, Nullable, JobRunSchema } from './schemas.js';
