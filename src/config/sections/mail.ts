import { Type, type Static } from '@sinclair/typebox';

/**
 * Outgoing messages: e-mail over SMTP (nodemailer) and SMS through the customer's HTTP gateway.
 * Secrets are only ever `…File` paths.
 */
export const MailSection = Type.Object(
  {
    smtp: Type.Optional(
      Type.Object(
        {
          host: Type.String({ minLength: 1 }),
          port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
          /** `required` (default): STARTTLS or refuse to send; `implicit`: TLS from the start (465); `disabled`: plain text, only when explicitly chosen */
          tls: Type.Union([Type.Literal('required'), Type.Literal('implicit'), Type.Literal('disabled')], {
            default: 'required',
          }),
          user: Type.Optional(Type.String()),
          passwordFile: Type.Optional(Type.String()),
          /** extra CA certificates to trust (PEM), e.g. the customer's internal CA */
          caFile: Type.Optional(Type.String()),
          from: Type.String({ default: 'Coffre <coffre@localhost>' }),
          timeoutMs: Type.Integer({ minimum: 1000, default: 15_000 }),
        },
        { additionalProperties: false },
      ),
    ),
    sms: Type.Optional(
      Type.Object(
        {
          /** the gateway's HTTPS (or loopback HTTP) endpoint */
          url: Type.String({ pattern: '^https?://' }),
          method: Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST' }),
          /** file holding one header line, e.g. `Authorization: Bearer …` */
          authHeaderFile: Type.Optional(Type.String()),
          contentType: Type.String({ default: 'application/json' }),
          /** `{{to}}` and `{{message}}` are replaced (JSON-escaped when contentType is JSON, URL-encoded when form) */
          bodyTemplate: Type.String({ default: '{"to":"{{to}}","text":"{{message}}"}' }),
          /** extra CA certificates to trust (PEM) */
          caFile: Type.Optional(Type.String()),
          timeoutMs: Type.Integer({ minimum: 1000, default: 10_000 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, default: {} },
);
export type MailConfig = Static<typeof MailSection>;
