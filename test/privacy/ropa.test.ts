import { describe, expect, it } from 'vitest';
import { ropaHtml } from '../../src/privacy/index.js';
import type { Config } from '../../src/config/index.js';

/**
 * The record of processing activities follows the configuration (retention, controller, DPO), in
 * French and English, with a legal basis, recipients and retention per processing, no transfer,
 * the security measures; and escapes what it quotes.
 */
const base = {
  applianceId: 'app-1234',
  site: { name: 'Étude <Martin>', jurisdiction: 'FR' },
  audit: { retentionDays: 400 },
  privacy: { retention: { sessionsDays: 30, loginRecordsDays: 45, alertsDays: 200 }, controller: {} },
};
const at = Date.UTC(2026, 11, 7);

describe('record of processing activities', () => {
  it('states each processing with its legal basis, recipients and retention from the configuration (English)', () => {
    const html = ropaHtml(base as unknown as Config, at, 'en');
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('<h1>Record of processing activities (GDPR art. 30)</h1>');
    expect(html).toContain('30 days after they end (privacy.retention.sessionsDays)');
    expect(html).toContain('45 days (privacy.retention.loginRecordsDays)');
    expect(html).toContain('200 days after resolution');
    expect(html).toContain('400 days (audit.retentionDays)');
    for (const s of ['Legal basis (art. 6)', 'Recipients', 'art. 6(1)(f)', 'art. 6(1)(c)', 'Incident register'])
      expect(html).toContain(s);
    expect(html).toMatch(/Transfers to a third country[^<]*: none/);
    expect(html).toContain('Security measures (art. 32)');
    expect(html.match(/<tr>/g)).toHaveLength(8);
    // the controller defaults to the site's name; the DPO not configured is said so
    expect(html).toContain('Étude &lt;Martin&gt;');
    expect(html).not.toContain('<Martin>');
    expect(html).toContain('not set in the configuration (privacy.controller.dpoName)');
    expect(html).not.toMatch(/<script|https?:\/\/|style=/);
  });

  it('in French, with the controller and DPO from the configuration', () => {
    const c = {
      ...base,
      privacy: {
        ...base.privacy,
        controller: {
          name: 'Étude Martin & Associés',
          address: '12 rue de la Paix, 75002 Paris',
          contact: 'rgpd@etude-martin.example',
          dpoName: 'Claire Dupont',
          dpoContact: 'dpo@etude-martin.example',
        },
      },
    };
    const html = ropaHtml(c as unknown as Config, at, 'fr');
    expect(html).toContain('<html lang="fr">');
    expect(html).toContain('Registre des activités de traitement (RGPD art. 30)');
    expect(html).toContain('Étude Martin &amp; Associés');
    expect(html).toContain('12 rue de la Paix, 75002 Paris');
    expect(html).toContain('Claire Dupont, dpo@etude-martin.example');
    expect(html).toContain('30 jours après leur fin (privacy.retention.sessionsDays)');
    expect(html).toContain('Base légale (art. 6)');
    expect(html).toMatch(/Transferts vers un pays tiers[^<]*: aucun/);
    expect(html).not.toContain('not set');
    expect(html).not.toMatch(/Legal basis|Recipients/);
  });
});
