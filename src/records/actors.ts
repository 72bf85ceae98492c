import type { Kysely } from 'kysely';
import type { RecordsSchema } from '../db/index.js';

/**
 * Who an audit actor id is: `user:<id>` and `token:<id>` (an API token of a user) both belong to a
 * user. Reads the identity module's users and api_tokens tables (user names are not confidential;
 * e-mail addresses and phones are never read here).
 */
export interface ActorDirectory {
  /** every actor id a user has acted under: their `user:` id and each of their tokens', revoked ones included */
  actorIdsOf(userId: string): Promise<string[]>;
  /** actor id → user name, for the ids that belong to a user */
  usernames(actorIds: readonly string[]): Promise<Map<string, string>>;
}

export function dbActorDirectory(db: Kysely<RecordsSchema>): ActorDirectory {
  return {
    async actorIdsOf(userId) {
      const tokens = await db.selectFrom('api_tokens').select('id').where('user_id', '=', userId).execute();
      return [`user:${userId}`, ...tokens.map((t) => `token:${t.id}`)];
    },
    async usernames(actorIds) {
      const users = new Set<string>();
      const tokens = new Set<string>();
      for (const a of actorIds) {
        if (a.startsWith('user:')) users.add(a.slice(5));
        else if (a.startsWith('token:')) tokens.add(a.slice(6));
      }
      const out = new Map<string, string>();
      if (tokens.size) {
        const rows = await db
          .selectFrom('api_tokens')
          .innerJoin('users', 'users.id', 'api_tokens.user_id')
          .select(['api_tokens.id', 'users.username'])
          .where('api_tokens.id', 'in', [...tokens])
          .execute();
        for (const r of rows) out.set(`token:${r.id}`, r.username);
      }
      if (users.size) {
        const rows = await db
          .selectFrom('users')
          .select(['id', 'username'])
          .where('id', 'in', [...users])
          .execute();
        for (const r of rows) out.set(`user:${r.id}`, r.username);
      }
      return out;
    },
  };
}
