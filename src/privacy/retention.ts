import type { Kysely } from 'kysely';
import type { PrivacySchema } from '../db/index.js';
import type { PrivacyConfig } from '../config/sections/privacy.js';

const DAY = 86_400_000;

export interface RetentionResult {
  sessions: number;
  knownClients: number;
  challenges: number;
  proofs: number;
  throttle: number;
  alerts: number;
  notices: number;
}

/**
 * Deletes personal data past its retention (docs/gdpr.md "Retention"), per kind: ended or expired
 * sessions, sign-in records (known clients, spent challenges and proofs, idle throttle counters),
 * resolved alerts and their notices. Open alerts, live sessions and anything newer are kept.
 */
export async function purgePersonalData(
  db: Kysely<PrivacySchema>,
  cfg: PrivacyConfig['retention'],
  now: number,
): Promise<RetentionResult> {
  const sessionsBefore = now - cfg.sessionsDays * DAY;
  const loginBefore = now - cfg.loginRecordsDays * DAY;
  const alertsBefore = now - cfg.alertsDays * DAY;
  return db.transaction().execute(async (trx) => {
    const n = (r: { numDeletedRows: bigint }) => Number(r.numDeletedRows);
    const sessions = n(
      await trx
        .deleteFrom('sessions')
        .where((eb) => eb.or([eb('ended_at', '<', sessionsBefore), eb('expires_at', '<', sessionsBefore)]))
        .executeTakeFirst(),
    );
    const knownClients = n(
      await trx.deleteFrom('auth_known_clients').where('last_seen_at', '<', loginBefore).executeTakeFirst(),
    );
    const challenges = n(
      await trx.deleteFrom('login_challenges').where('expires_at', '<', loginBefore).executeTakeFirst(),
    );
    const proofs = n(await trx.deleteFrom('auth_proofs').where('expires_at', '<', loginBefore).executeTakeFirst());
    const throttle = n(
      await trx.deleteFrom('login_throttle').where('last_failure_at', '<', loginBefore).executeTakeFirst(),
    );
    const old = trx
      .selectFrom('alerts')
      .select('id')
      .where('state', '=', 'resolved')
      .where('resolved_at', '<', alertsBefore);
    const notices = n(await trx.deleteFrom('alert_outbox').where('alert_id', 'in', old).executeTakeFirst());
    const alerts = n(
      await trx
        .deleteFrom('alerts')
        .where('state', '=', 'resolved')
        .where('resolved_at', '<', alertsBefore)
        .executeTakeFirst(),
    );
    return { sessions, knownClients, challenges, proofs, throttle, alerts, notices };
  });
}
