import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import { applySettings, editableView, type Config, type Env } from '../config/index.js';
import type { Auditor } from '../audit/types.js';
import { auditSource } from '../audit/index.js';
import { PERMISSIONS } from '../access/index.js';
import { errors } from '../shared/errors.js';
import { redactText } from '../shared/redact.js';

/** what a redacted value is shown as */
export const REDACTED = '[redacted]';

/**
 * Keys whose value is always replaced, wherever they sit: secrets themselves and the files that
 * hold them (the configuration only ever holds `…File` paths, but a path to a PIN or a private key
 * says where to look, so it is not shown either), and the SMS body template (a gateway may want a
 * key in it).
 */
const SECRET_KEY = /(pin|password|passphrase|secret|credential|authheader|apikey|privatekey|keyfile|bodytemplate)/i;

/**
 * The effective configuration as an admin may see it: every section, defaults filled in, with
 * secrets and secret-file paths replaced by `[redacted]` (only whether they are set is shown) and
 * every other string passed through the display redaction (credentials in URLs, secret query
 * parameters, link tokens). Pure, for tests.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const walk = (v: unknown, key: string): unknown => {
    const object = !!v && typeof v === 'object' && !Array.isArray(v);
    // a section named like a secret (auth.password: the password policy) is walked, its values checked by their own keys
    if (!object && SECRET_KEY.test(key)) return v === undefined || v === null || v === '' ? null : REDACTED;
    if (typeof v === 'string') return redactText(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, ''));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  const { version: _v, applianceId: _a, dataDir: _d, ...sections } = config as Config & Record<string, unknown>;
  return walk(sections, '') as Record<string, unknown>;
}

const EditableSchema = Type.Object(
  {
    key: Type.String(),
    group: Type.String(),
    kind: Type.Union(['text', 'integer', 'choice', 'boolean', 'list', 'secret'].map((k) => Type.Literal(k))),
    choices: Type.Optional(Type.Array(Type.String())),
    value: Type.Optional(Type.Unknown()),
    set: Type.Optional(Type.Boolean()),
    overridden: Type.Boolean(),
    pending: Type.Boolean(),
    restart: Type.Literal(true),
  },
  { additionalProperties: false },
);

const SettingsReply = Type.Object(
  {
    applianceId: Type.String(),
    dataDir: Type.String(),
    /** the safe subset an admin may change here (src/config/edit.ts); secrets only as set or not */
    editable: Type.Array(EditableSchema),
    howToChange: Type.String(),
    sections: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);

const SettingsEdit = Type.Object(
  {
    values: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.Unknown())),
    /** write-only: each goes to a file of its own, never back in a reply, a log or the audit trail */
    secrets: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), Type.String({ maxLength: 4096 }))),
  },
  { additionalProperties: false },
);

/**
 * GET /api/v1/settings (admins, `settings:manage`): the effective configuration, read-only and
 * redacted. Every read is audited (`settings.read`) before the reply leaves.
 */
export function settingsRoutes(o: { config: Config; env: Env; audit: Auditor }): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/settings',
      {
        config: { permission: PERMISSIONS.settingsManage },
        schema: {
          tags: ['settings'],
          summary: 'effective configuration, secrets redacted (read-only)',
          response: { 200: SettingsReply },
        },
      },
      async (req) => {
        if (!req.actor) throw errors.unauthenticated();
        await o.audit.recordNow({
          action: 'settings.read',
          actor: req.actor.id,
          outcome: 'success',
          source: auditSource(req),
        });
        return {
          applianceId: o.config.applianceId,
          dataDir: o.config.dataDir,
          editable: editableView(o.config, o.env),
          howToChange:
            'The other settings: edit config.json in the data directory (or set a COFFRE_* environment override), then restart the service. Secrets are given as files, never as values.',
          sections: redactedConfig(o.config),
        };
      },
    );

    app.put(
      '/settings',
      {
        config: { permission: PERMISSIONS.settingsManage },
        schema: {
          tags: ['settings'],
          summary: 'change the editable settings (written to config.json; effective at the next start)',
          body: SettingsEdit,
          response: {
            200: Type.Object(
              { status: Type.Literal('ok'), changed: Type.Array(Type.String()), restartRequired: Type.Boolean() },
              { additionalProperties: false },
            ),
          },
        },
      },
      async (req) => {
        if (!req.actor) throw errors.unauthenticated();
        const actor = req.actor.id;
        // audited once the edit is known good and before anything is written (fail closed); keys only, never values
        const r = await applySettings(o.config.dataDir, o.env, req.body as never, (changed) =>
          o.audit.recordNow({
            action: 'settings.change',
            actor,
            outcome: 'success',
            targets: { keys: changed.join(',').slice(0, 1000) },
            source: auditSource(req),
          }),
        );
        return { status: 'ok' as const, changed: r.changed, restartRequired: r.changed.length > 0 };
      },
    );
  };
}
