import { describe, expect, it } from 'vitest';
import { ropaHtml } from '../../src/privacy/index.js';
import type { Config } from '../../src/config/index.js';

/** The record of processing activities follows the configuration and escapes what it quotes. */
describe('record of processing activities', () => {
  it('states each processing with its retention from the configuration', () => {
    const c = {
      applianceId: 'app-1234',
      site: { name: 'Étude <Martin>', jurisdiction: 'FR' },
      audit: { retentionDays: 400 },
      privacy: { retention: { sessionsDays: 30, loginRecordsDays: 45, alertsDays: 200 } },
    } as unknown as Config;
    const html = ropaHtml(c, Date.UTC(2026, 11, 7));
    expect(html).toContain('<h1>Record of processing activities (GDPR art. 30)</h1>');
    expect(html).toContain('30 days after they end (privacy.retention.sessionsDays)');
    expect(html).toContain('45 days (privacy.retention.loginRecordsDays)');
    expect(html).toContain('200 days after resolution');
    expect(html).toContain('400 days (audit.retentionDays)');
    expect(html).toContain('Étude &lt;Martin&gt;');
    expect(html).not.toContain('<Martin>');
    expect(html).not.toMatch(/<script|https?:\/\//);
  });
});
