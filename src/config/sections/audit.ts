import { Type, type Static } from '@sinclair/typebox';

/** Syslog (RFC 5424) export of the audit trail to the customer's SIEM. */
export const AuditSyslogSection = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    /** `tls` (RFC 5425, octet-counted over TLS), `tcp` (octet-counted), `udp` (RFC 5426, one message per datagram) */
    transport: Type.Union([Type.Literal('tls'), Type.Literal('tcp'), Type.Literal('udp')], { default: 'tls' }),
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 6514 }),
    /** PEM file of the CA that issued the collector's certificate (tls); system CAs when absent */
    caFile: Type.Optional(Type.String()),
    /** client certificate and key for mutual TLS (tls) */
    certFile: Type.Optional(Type.String()),
    keyFile: Type.Optional(Type.String()),
    /** name checked against the collector's certificate (tls); default: host */
    serverName: Type.Optional(Type.String()),
    /** RFC 5424 facility number (13 = log audit) */
    facility: Type.Integer({ minimum: 0, maximum: 23, default: 13 }),
    /** APP-NAME field */
    appName: Type.String({ default: 'coffre', maxLength: 48 }),
    /** an alert is raised when the collector has been unreachable for this long */
    alertAfterMs: Type.Integer({ minimum: 1000, default: 300_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type AuditSyslogConfig = Static<typeof AuditSyslogSection>;

/** The audit trail (src/audit/, docs/formats.md "Audit"). */
export const AuditSection = Type.Object(
  {
    /** a checkpoint is MACed by the HSM after this many records… */
    checkpointEvery: Type.Integer({ minimum: 1, default: 10_000 }),
    /** …and at least this often while there is activity */
    checkpointIntervalMs: Type.Integer({ minimum: 1000, default: 60_000 }),
    /** records older than this are pruned (a signed "pruned up to N" checkpoint keeps the rest verifiable) */
    retentionDays: Type.Integer({ minimum: 1, default: 365 }),
    syslog: AuditSyslogSection,
  },
  { additionalProperties: false, default: {} },
);
export type AuditConfig = Static<typeof AuditSection>;
