import { Type, type Static } from '@sinclair/typebox';

const severity = (d: 'info' | 'warning') =>
  Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], { default: d });
const opt = { additionalProperties: false, default: {} } as const;
const rule = <T extends Record<string, ReturnType<typeof Type.Integer> | ReturnType<typeof Type.Number>>>(fields: T) =>
  Type.Object({ enabled: Type.Boolean({ default: true }), ...fields }, opt);

/**
 * Metrics, alert rules, alert channels and load shedding (docs/monitoring.md lists every default).
 * Secrets are only ever `…File` paths.
 */
export const MonitoringSection = Type.Object(
  {
    /** metric sampling period */
    sampleIntervalMs: Type.Integer({ minimum: 1000, default: 15_000 }),
    /** metric points are kept this long… */
    retentionDays: Type.Integer({ minimum: 1, maximum: 400, default: 30 }),
    /** …at 1-minute resolution for this long, then as 15-minute means and maxima */
    fullResolutionHours: Type.Integer({ minimum: 1, default: 24 }),
    /** file holding the bearer token Prometheus sends to GET /metrics (absent: /metrics answers 404) */
    scrapeTokenFile: Type.Optional(Type.String()),
    /** CA (PEM) whose client certificates may scrape GET /metrics (mutual TLS), instead of or beside the token */
    scrapeClientCaFile: Type.Optional(Type.String()),
    /** how often the space at each backup target is measured (remote targets are contacted then) */
    targetSpaceIntervalMs: Type.Integer({ minimum: 1000, default: 300_000 }),
    /** the clock-drift rule's reference: HTTPS peers whose Date header is compared with this clock */
    clock: Type.Object(
      {
        peers: Type.Array(Type.String({ pattern: '^https://' }), { default: [] }),
        /** extra CA certificates (PEM) to trust for the peers */
        caFile: Type.Optional(Type.String()),
        intervalMs: Type.Integer({ minimum: 1000, default: 300_000 }),
      },
      opt,
    ),
    alerts: Type.Object(
      {
        /** an open alert raised again is a repeat; after this long without an acknowledgement a reminder is sent */
        renotifyMs: Type.Integer({ minimum: 60_000, default: 4 * 3_600_000 }),
        /** a one-off alert (no condition clears it) raised again after this long opens a new alert */
        dedupeMs: Type.Integer({ minimum: 0, default: 15 * 60_000 }),
        /** delivery attempts per notice and channel before giving up (back-off doubles from 5 s up to 10 min) */
        maxAttempts: Type.Integer({ minimum: 1, default: 12 }),
        email: Type.Object(
          {
            /** recipients (sent through mail.smtp) */
            to: Type.Array(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' }), { default: [] }),
            minSeverity: severity('warning'),
          },
          opt,
        ),
        syslog: Type.Object(
          {
            /** send alerts to the audit trail's syslog collector (audit.syslog), on their own connection */
            enabled: Type.Boolean({ default: true }),
            minSeverity: severity('info'),
          },
          opt,
        ),
        webhook: Type.Optional(
          Type.Object(
            {
              url: Type.String({ pattern: '^https://' }),
              /** file holding the HMAC-SHA256 key; the body's MAC goes in `X-Coffre-Signature: sha256=<hex>` */
              secretFile: Type.String(),
              /** extra CA certificates to trust (PEM) */
              caFile: Type.Optional(Type.String()),
              timeoutMs: Type.Integer({ minimum: 500, default: 10_000 }),
              /** immediate retries within one delivery attempt (back-off 250 ms, doubling) */
              retries: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
              minSeverity: severity('info'),
            },
            { additionalProperties: false },
          ),
        ),
      },
      opt,
    ),
    rules: Type.Object(
      {
        /** evaluation period of the rules */
        intervalMs: Type.Integer({ minimum: 1000, default: 60_000 }),
        disk: rule({
          percent: Type.Number({ minimum: 1, maximum: 100, default: 85 }),
          clearPercent: Type.Number({ minimum: 1, maximum: 100, default: 80 }),
        }),
        memory: rule({
          percent: Type.Number({ minimum: 1, maximum: 100, default: 90 }),
          clearPercent: Type.Number({ minimum: 1, maximum: 100, default: 85 }),
        }),
        eventLoopLag: rule({
          ms: Type.Integer({ minimum: 1, default: 500 }),
          clearMs: Type.Integer({ minimum: 1, default: 200 }),
          forMs: Type.Integer({ minimum: 0, default: 60_000 }),
        }),
        hsm: rule({ forMs: Type.Integer({ minimum: 0, default: 30_000 }) }),
        backupAge: rule({ hours: Type.Number({ minimum: 1, default: 26 }) }),
        drillAge: rule({ days: Type.Number({ minimum: 1, default: 8 }) }),
        jobFailed: rule({}),
        certExpiry: rule({ days: Type.Number({ minimum: 1, default: 30 }) }),
        denials: rule({
          count: Type.Integer({ minimum: 1, default: 30 }),
          windowMs: Type.Integer({ minimum: 60_000, default: 600_000 }),
        }),
        massDownload: rule({
          count: Type.Integer({ minimum: 1, default: 50 }),
          bytes: Type.Integer({ minimum: 1, default: 1024 ** 3 }),
          windowMs: Type.Integer({ minimum: 60_000, default: 600_000 }),
        }),
        offHours: rule({
          /** working hours in site.timeZone, [start, end) in hours, Monday (1) to Friday (5) */
          startHour: Type.Integer({ minimum: 0, maximum: 23, default: 7 }),
          endHour: Type.Integer({ minimum: 1, maximum: 24, default: 20 }),
          firstDay: Type.Integer({ minimum: 0, maximum: 6, default: 1 }),
          lastDay: Type.Integer({ minimum: 0, maximum: 6, default: 5 }),
        }),
        auditChain: rule({ intervalMs: Type.Integer({ minimum: 60_000, default: 3_600_000 }) }),
        accessReview: rule({}),
        /** the oldest audit record not yet at the syslog collector is this old */
        auditExport: rule({
          seconds: Type.Integer({ minimum: 1, default: 900 }),
          clearSeconds: Type.Integer({ minimum: 0, default: 60 }),
        }),
        /** this clock differs from the HTTPS peers' (monitoring.clock) by this much, either way */
        clockDrift: rule({
          seconds: Type.Number({ minimum: 1, default: 5 }),
          clearSeconds: Type.Number({ minimum: 0, default: 2 }),
        }),
        /** a backup target's volume is this full */
        targetDisk: rule({
          percent: Type.Number({ minimum: 1, maximum: 100, default: 85 }),
          clearPercent: Type.Number({ minimum: 1, maximum: 100, default: 80 }),
        }),
      },
      opt,
    ),
    /** @fastify/under-pressure: 503 with Retry-After above these */
    pressure: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        maxEventLoopDelayMs: Type.Integer({ minimum: 10, default: 2000 }),
        /** 0 = no heap limit */
        maxHeapUsedBytes: Type.Integer({ minimum: 0, default: 0 }),
        retryAfterSeconds: Type.Integer({ minimum: 1, default: 10 }),
        /** shed only once the pressure has lasted this long (a start-up or GC blip passes) */
        sustainMs: Type.Integer({ minimum: 0, default: 5000 }),
      },
      opt,
    ),
    /** per route group: requests per minute per source address and per signed-in user (0 = no limit) */
    budgets: Type.Record(
      Type.String({ pattern: '^[a-z][a-z0-9-]*$' }),
      Type.Object(
        { perAddress: Type.Integer({ minimum: 0 }), perUser: Type.Integer({ minimum: 0 }) },
        { additionalProperties: false },
      ),
      { default: {} },
    ),
  },
  opt,
);
export type MonitoringConfig = Static<typeof MonitoringSection>;
