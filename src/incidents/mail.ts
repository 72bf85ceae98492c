import type { MailSender } from '../auth/index.js';
import type { Logger } from '../shared/logger.js';
import { pickLanguage, translator, utcDateTime } from '../shared/i18n/index.js';
import type { IncidentNotices, PublicIncident } from './notices.js';

/** someone who may receive an incident e-mail */
export interface Recipient {
  email: string;
  username: string;
  language: string | null;
}

export interface IncidentMailOptions {
  notices: IncidentNotices;
  mailer: MailSender;
  /** an active user's address and language (null: disabled, erased or unknown) */
  recipient(userId: string): Promise<Recipient | null>;
  /** every active user's id (an incident that names no user and no workspace affects everyone) */
  everyone(): Promise<string[]>;
  /** the appliance's public address (the status page is `<publicUrl>/status`) */
  publicUrl: string;
  organisation: string;
  log: Logger;
}

/** the e-mail of one public update, in the recipient's language: public title, status, public message, link; nothing internal */
export function incidentMail(
  i: Pick<PublicIncident, 'title'>,
  u: PublicIncident['updates'][number],
  to: Recipient,
  o: { organisation: string; publicUrl: string },
): { subject: string; text: string } {
  const lang = pickLanguage(to.language);
  const t = translator(lang);
  const status = t(`pages.status.state.${u.status}`);
  const values = {
    organisation: o.organisation,
    title: i.title,
    status,
    username: to.username,
    at: utcDateTime(lang, u.at),
    message: u.message[lang] ?? u.message[lang === 'fr' ? 'en' : 'fr'] ?? '',
    url: `${o.publicUrl.replace(/\/+$/, '')}/status?lang=${lang}`,
  };
  // a subject is one line
  return {
    subject: t('mail.incident.subject', values).replace(/[\r\n]+/g, ' '),
    text: t('mail.incident.text', values),
  };
}

/**
 * Mails every public update to the users an incident affects (docs/incidents.md), in each one's
 * language, after the update is committed. Delivery runs in the background: a failure is logged
 * (ids and the SMTP code only) and never undoes the update. `drain()` waits for what is in flight.
 */
export class IncidentMail {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly o: IncidentMailOptions) {}

  /** starts mailing one public update; resolves once it is queued (`drain` waits for delivery) */
  publish(incidentId: string, updateId: number): void {
    const p: Promise<void> = this.send(incidentId, updateId)
      .then(() => undefined)
      .catch((e: unknown) => this.o.log.error({ err: e, incident: incidentId }, 'incident e-mails failed'))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  /** sends the e-mails of one public update; returns how many were accepted and how many failed */
  async send(incidentId: string, updateId: number): Promise<{ sent: number; failed: number }> {
    const i = (await this.o.notices.published({ limit: 500 })).find((x) => x.id === incidentId);
    const u = i?.updates.find((x) => x.id === updateId);
    if (!i || !u) return { sent: 0, failed: 0 };
    const who = await this.o.notices.audience(incidentId);
    const ids = who === 'everyone' ? await this.o.everyone() : [...who];
    let sent = 0;
    let failed = 0;
    for (const id of ids) {
      const to = await this.o.recipient(id);
      if (!to) continue;
      try {
        await this.o.mailer.send({ to: to.email, ...incidentMail(i, u, to, this.o) });
        sent++;
      } catch (e) {
        failed++;
        this.o.log.warn({ err: e, incident: incidentId, user: id }, 'an incident e-mail could not be delivered');
      }
    }
    this.o.log.info(
      { event: 'incident.mailed', incident: incidentId, update: updateId, sent, failed },
      'incident mailed',
    );
    return { sent, failed };
  }
}
