import type { UserRow } from '../auth/index.js';
import type { AuditSource } from '../audit/index.js';
import type { PrivacyDeps } from './types.js';
import { errors } from '../shared/errors.js';
import type { JobDefinition } from '../jobs/index.js';
import { collectPerson, zipExport, type PersonExport } from './export.js';
import { purgePersonalData, type RetentionResult } from './retention.js';
import { Erasure, type ErasurePlan, type ErasureResult, type Handover } from './erase.js';

/**
 * A person's data (GDPR): export (art. 15 and 20), erasure (art. 17, ./erase.ts). Every export is
 * audited before anything is handed out (fail closed: no audit record, no export).
 */
export class PrivacyService {
  private readonly erasure: Erasure;
  constructor(protected readonly d: PrivacyDeps) {
    this.erasure = new Erasure(d);
  }

  /** what erasing `userId` involves (workspaces they alone own, whether deletion is possible) */
  plan(userId: string): Promise<ErasurePlan> {
    return this.erasure.plan(userId);
  }

  erase(
    userId: string,
    handover: Handover,
    actor: string,
    source: AuditSource,
    confirm?: string,
  ): Promise<ErasureResult> {
    return this.erasure.erase(userId, handover, actor, source, confirm);
  }

  remove(
    userId: string,
    actor: string,
    source: AuditSource,
    confirm?: string,
  ): Promise<{ userId: string; scrubbed: boolean }> {
    return this.erasure.remove(userId, actor, source, confirm);
  }

  /** deletes personal data past its retention (config `privacy.retention`), audited as `privacy.retention` */
  async purge(actor: string): Promise<RetentionResult> {
    const r = await purgePersonalData(this.d.db, this.d.config.retention, this.d.clock.nowMs());
    await this.d.audit.recordNow({
      action: 'privacy.retention',
      actor,
      outcome: 'success',
      targets: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
    });
    return r;
  }

  /** scheduled jobs: `privacy.rekey` (at start and daily), `privacy.retention` (daily) */
  jobs(): JobDefinition[] {
    return [
      { name: 'privacy.retention', schedule: '50 3 * * *', catchUp: true, run: (ctx) => this.purge(ctx.actor) },
      {
        name: 'privacy.rekey',
        schedule: '40 3 * * *',
        runAtStart: true,
        run: async (ctx) => {
          const moved = await this.rekeyAll();
          if (moved)
            ctx.log.info({ event: 'privacy.rekeyed', users: moved }, 'e-mails and phones moved under per-person keys');
          return { moved };
        },
      },
    ];
  }

  /** moves e-mails and phones written before per-person keys under each person's own key */
  async rekeyAll(): Promise<number> {
    let n = 0;
    for (const u of await this.d.users.list()) if (await this.d.users.rekey(u)) n++;
    return n;
  }

  protected async user(userId: string): Promise<UserRow> {
    const u = await this.d.users.byId(userId);
    if (!u) throw errors.notFound('user');
    return u;
  }

  /** everything held about `userId`, as data (audited as `user.export`) */
  async collect(userId: string, actor: string, source: AuditSource): Promise<PersonExport> {
    const u = await this.user(userId);
    const data = await collectPerson(
      { db: this.d.db, fields: this.d.fields, users: this.d.users, now: this.d.clock.nowMs() },
      u,
    );
    await this.d.audit.recordNow({ action: 'user.export', actor, outcome: 'success', targets: { user: u.id }, source });
    return data;
  }

  /** the zip of JSON and CSV (docs/gdpr.md "Export") */
  async exportZip(userId: string, actor: string, source: AuditSource): Promise<{ zip: Buffer; userId: string }> {
    const data = await this.collect(userId, actor, source);
    return { zip: await zipExport(data), userId: data.profile.id };
  }
}
