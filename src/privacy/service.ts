import type { Kysely } from 'kysely';
import type { Database } from '../db/index.js';
import type { FieldCipher } from '../keys/types.js';
import type { UserDirectory, UserRow } from '../auth/index.js';
import type { Auditor, AuditSource } from '../audit/index.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { errors } from '../shared/errors.js';
import { collectPerson, zipExport, type PersonExport } from './export.js';

export interface PrivacyDeps {
  db: Kysely<Database>;
  clock: Clock;
  log: Logger;
  fields: FieldCipher;
  users: UserDirectory;
  audit: Auditor;
}

/**
 * A person's data (GDPR): export (art. 15 and 20). Every export is audited before anything is
 * handed out (fail closed: no audit record, no export).
 */
export class PrivacyService {
  constructor(protected readonly d: PrivacyDeps) {}

  protected async user(userId: string): Promise<UserRow> {
    const u = await this.d.users.byId(userId);
    if (!u) throw errors.notFound('user');
    return u;
  }

  /** everything held about `userId`, as data (audited as `user.export`) */
  async collect(userId: string, actor: string, source: AuditSource): Promise<PersonExport> {
    const u = await this.user(userId);
    const data = await collectPerson({ db: this.d.db, fields: this.d.fields, users: this.d.users, now: this.d.clock.nowMs() }, u);
    await this.d.audit.recordNow({ action: 'user.export', actor, outcome: 'success', targets: { user: u.id }, source });
    return data;
  }

  /** the zip of JSON and CSV (docs/gdpr.md "Export") */
  async exportZip(userId: string, actor: string, source: AuditSource): Promise<{ zip: Buffer; userId: string }> {
    const data = await this.collect(userId, actor, source);
    return { zip: await zipExport(data), userId: data.profile.id };
  }
}
