import type { FastifyPluginAsync } from 'fastify';
import { isLanguage, pickLanguage, translator, utcDateTime, type Language } from '../shared/i18n/index.js';
import type { IncidentNotices, PublicIncident } from './notices.js';

const DAY = 86_400_000;
const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** the page's style sheet (a file of its own: the CSP allows no inline style) */
export const STATUS_CSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:46rem;margin:0 auto;padding:1.5rem}
header{display:flex;align-items:baseline;justify-content:space-between;gap:1rem;flex-wrap:wrap}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1.05rem;margin:0 0 .3rem}
.lang a{margin-left:.6rem}.lang a[aria-current]{font-weight:700;text-decoration:none;color:inherit}
.summary{padding:1rem;border-radius:.5rem;background:#e6f4ea;border:1px solid #a8d5b5}
.summary.degraded{background:#fff4e5;border-color:#f0c27b}
article{background:#fff;border:1px solid #d8dde3;border-radius:.5rem;padding:1rem;margin:.8rem 0}
.meta{color:#57606a;font-size:.9rem}.badge{display:inline-block;padding:0 .45rem;border-radius:.3rem;background:#eef1f4;font-size:.85rem}
.sev-critical,.sev-high{background:#fde2e1}.sev-medium{background:#fff4e5}
ol{list-style:none;padding:0;margin:.6rem 0 0}ol li{border-left:3px solid #d8dde3;padding:.1rem 0 .5rem .8rem}
time{white-space:nowrap}footer{margin-top:2rem;color:#57606a;font-size:.85rem}
`;

function renderIncident(i: PublicIncident, lang: Language): string {
  const t = translator(lang);
  const other: Language = lang === 'fr' ? 'en' : 'fr';
  const when = (ms: number) => `<time datetime="${new Date(ms).toISOString()}">${esc(utcDateTime(lang, ms))}</time>`;
  const updates = [...i.updates]
    .reverse()
    .map(
      (u) =>
        `<li><strong>${esc(t(`pages.status.state.${u.status}`))}</strong> — ${when(u.at)}<br>${esc(
          u.message[lang] ?? u.message[other] ?? '',
        )}</li>`,
    )
    .join('\n');
  const comps = i.components.length
    ? `<p class="meta">${esc(t('pages.status.components'))} ${i.components.map(esc).join(', ')}</p>`
    : '';
  return `<article data-incident="${esc(i.id)}">
<h3>${esc(i.title)} <span class="badge sev-${esc(i.severity)}">${esc(t(`pages.status.severity.${i.severity}`))}</span></h3>
<p class="meta">${esc(t(`pages.status.state.${i.status}`))} · ${esc(t('pages.status.started'))} ${when(i.startedAt)}${
    i.resolvedAt !== null ? ` · ${esc(t('pages.status.resolvedAt'))} ${when(i.resolvedAt)}` : ''
  }</p>
${comps}<ol>
${updates}
</ol>
</article>`;
}

/** the public status page in one language: current incidents, then those resolved in the last `pastDays` days */
export function statusPage(
  incidents: readonly PublicIncident[],
  lang: Language,
  o: { organisation: string; now: number; pastDays: number },
): string {
  const t = translator(lang);
  const current = incidents.filter((i) => i.status !== 'resolved');
  const past = incidents.filter((i) => i.status === 'resolved');
  const lang2 = (l: Language, label: string) =>
    `<a href="/status?lang=${l}" hreflang="${l}" lang="${l}"${l === lang ? ' aria-current="true"' : ''}>${label}</a>`;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(t('pages.status.title', { organisation: o.organisation }))}</title>
<link rel="stylesheet" href="/status.css"></head>
<body><main>
<header><h1>${esc(t('pages.status.title', { organisation: o.organisation }))}</h1>
<nav class="lang" aria-label="${esc(t('pages.status.language'))}">${lang2('fr', 'Français')}${lang2('en', 'English')}</nav></header>
<p class="summary${current.length ? ' degraded' : ''}" role="status">${esc(
    current.length ? t('pages.status.degraded', { count: current.length }) : t('pages.status.allGood'),
  )}</p>
<h2>${esc(t('pages.status.current'))}</h2>
${current.length ? current.map((i) => renderIncident(i, lang)).join('\n') : `<p>${esc(t('pages.status.noCurrent'))}</p>`}
<h2>${esc(t('pages.status.past', { days: o.pastDays }))}</h2>
${past.length ? past.map((i) => renderIncident(i, lang)).join('\n') : `<p>${esc(t('pages.status.noPast'))}</p>`}
<footer>${esc(t('pages.status.updated'))} <time datetime="${new Date(o.now).toISOString()}">${esc(
    utcDateTime(lang, o.now),
  )}</time> (UTC)</footer>
</main></body></html>
`;
}

export interface StatusRoutesOptions {
  notices: IncidentNotices;
  organisation: string;
  now: () => number;
  /** resolved incidents stay listed this many days */
  pastDays?: number;
}

/**
 * `GET /status` (public, no sign-in): the public face of the incident register, in French or
 * English (`?lang=`, else Accept-Language). No script; its style sheet is `/status.css`, so the
 * appliance's CSP applies unchanged.
 */
export function statusRoutes(o: StatusRoutesOptions): FastifyPluginAsync {
  const pastDays = o.pastDays ?? 30;
  return async (app) => {
    app.get<{ Querystring: { lang?: string } }>(
      '/status',
      {
        config: { public: true },
        schema: {
          hide: true,
          querystring: {
            type: 'object',
            properties: { lang: { type: 'string', enum: ['en', 'fr'] } },
            additionalProperties: false,
          },
        },
      },
      async (req, reply) => {
        const q = req.query.lang;
        const h = req.headers['accept-language'];
        const lang = isLanguage(q) ? q : pickLanguage(null, typeof h === 'string' ? h : undefined);
        const list = await o.notices.published({ pastMs: pastDays * DAY });
        return reply
          .header('content-type', 'text/html; charset=utf-8')
          .header('content-language', lang)
          .header('vary', 'Accept-Language')
          .header('cache-control', 'no-store')
          .send(statusPage(list, lang, { organisation: o.organisation, now: o.now(), pastDays }));
      },
    );
    app.get('/status.css', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'max-age=3600').send(STATUS_CSS),
    );
  };
}
