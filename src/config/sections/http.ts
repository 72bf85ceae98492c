import { Type, type Static } from '@sinclair/typebox';

export const HttpSection = Type.Object(
  {
    host: Type.String({ default: '0.0.0.0', description: 'address to listen on' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 8443 }),
    /** The address users reach the appliance at; every link is built from it, never from Host. */
    publicUrl: Type.Optional(Type.String({ pattern: '^https://' })),
    /** Host names the TLS certificate covers (besides localhost and 127.0.0.1). */
    hostnames: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    /** Peers whose X-Forwarded-For is believed (docs/brute-force.md). */
    trustedProxies: Type.Array(Type.String(), { default: [] }),
    /** whole-request limit: generous because uploads stream; stalled sockets are cut by connectionTimeoutMs */
    requestTimeoutMs: Type.Integer({ minimum: 1000, default: 3_600_000 }),
    headersTimeoutMs: Type.Integer({ minimum: 1000, default: 10_000 }),
    keepAliveTimeoutMs: Type.Integer({ minimum: 1000, default: 5_000 }),
    connectionTimeoutMs: Type.Integer({ minimum: 1000, default: 60_000 }),
    /** B5: a request body must arrive within this time, on every route but the authenticated uploads (socket closed otherwise) */
    bodyTimeoutMs: Type.Integer({ minimum: 1000, maximum: 120_000, default: 10_000 }),
    /** B5: open connections at once, in total and from one client address (trusted proxies: total only) */
    maxConnections: Type.Integer({ minimum: 1, default: 2048 }),
    maxConnectionsPerAddress: Type.Integer({ minimum: 1, default: 128 }),
    /** Largest JSON body (uploads are streamed and limited by vault.maxUploadBytes). */
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
    shutdownGraceMs: Type.Integer({ minimum: 0, default: 10_000 }),
    hstsMaxAgeSeconds: Type.Integer({ minimum: 31_536_000, default: 63_072_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type HttpConfig = Static<typeof HttpSection>;

export const TlsSection = Type.Object(
  {
    certFile: Type.String({ default: 'tls/cert.pem' }),
    keyFile: Type.String({ default: 'tls/key.pem' }),
    /** optional: file holding the private key's passphrase */
    keyPassphraseFile: Type.Optional(Type.String()),
    /** optional: chain / extra CA certificates to send */
    caFile: Type.Optional(Type.String()),
  },
  { additionalProperties: false, default: {} },
);
export type TlsConfig = Static<typeof TlsSection>;
