import type { BreachClock, Incident } from './types.js';

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/**
 * An incident's report (docs/incidents.md "Report"): the register entry, the GDPR art. 33
 * notification content when personal data is involved, and the fields of a DORA major-incident
 * report. One JSON object; the CSV is the same content flattened to `field,value` rows.
 */
export function incidentReport(
  i: Incident,
  clock: BreachClock | null,
  o: { applianceId: string; organisation: string; generatedAt: number },
) {
  const b = i.breach ?? {};
  const d = i.dora ?? {};
  const corrective = i.actions.filter((a) => a.kind === 'corrective');
  const preventive = i.actions.filter((a) => a.kind === 'preventive');
  return {
    format: 'coffre-incident-report/1',
    generatedAt: iso(o.generatedAt),
    organisation: o.organisation,
    applianceId: o.applianceId,
    incident: {
      id: i.id,
      title: i.title,
      severity: i.severity,
      status: i.status,
      detectedAt: iso(i.detectedAt),
      createdAt: iso(i.createdAt),
      resolvedAt: iso(i.resolvedAt),
      rootCause: i.rootCause,
      affectedComponents: i.affected.components,
      affectedWorkspaces: i.affected.workspaces.length,
      affectedUsers: i.affected.users.length,
      correctiveActions: corrective.map((a) => ({
        description: a.description,
        state: a.state,
        dueAt: iso(a.dueAt),
        closedAt: iso(a.closedAt),
        outcome: a.outcome,
      })),
      preventiveActions: preventive.map((a) => ({
        description: a.description,
        state: a.state,
        dueAt: iso(a.dueAt),
        closedAt: iso(a.closedAt),
        outcome: a.outcome,
      })),
      timeline: i.updates.map((u) => ({ at: iso(u.at), status: u.status, message: u.message, public: u.public })),
    },
    gdpr: i.personalData
      ? {
          article: 'GDPR art. 33',
          personalDataBreach: true,
          detectedAt: iso(clock?.detectedAt),
          notificationDeadline: iso(clock?.deadline),
          clock: clock?.state ?? null,
          authorityNotifiedAt: iso(i.authorityNotifiedAt),
          nature: b.nature ?? null,
          subjectCategories: b.subjectCategories ?? [],
          subjectsApprox: b.subjectsApprox ?? null,
          recordCategories: b.recordCategories ?? [],
          recordsApprox: b.recordsApprox ?? null,
          likelyConsequences: b.consequences ?? null,
          measures: b.measures ?? null,
          contact: b.contact ?? null,
          delayReason: b.delayReason ?? null,
        }
      : { personalDataBreach: false },
    dora: {
      classification: d.classification ?? null,
      incidentDetectedAt: iso(i.detectedAt),
      incidentClassifiedAt: iso(i.createdAt),
      incidentResolvedAt: iso(i.resolvedAt),
      clientsAffected: d.clientsAffected ?? null,
      clientsAffectedPercent: d.clientsAffectedPercent ?? null,
      counterpartsAffected: d.counterpartsAffected ?? null,
      durationMinutes:
        d.durationMinutes ?? (i.resolvedAt !== null ? Math.round((i.resolvedAt - i.detectedAt) / 60_000) : null),
      serviceDowntimeMinutes: d.serviceDowntimeMinutes ?? null,
      memberStates: d.memberStates ?? [],
      dataLosses: d.dataLosses ?? [],
      criticalServicesAffected: d.criticalServicesAffected ?? null,
      economicImpactEur: d.economicImpactEur ?? null,
      reputationalImpact: d.reputationalImpact ?? null,
      rootCauseType: d.rootCauseType ?? null,
      recurring: d.recurring ?? null,
      rootCause: i.rootCause,
      measures: corrective.map((a) => a.description),
    },
  };
}

/** `field,value` rows (RFC 4180), nested fields dotted, arrays indexed. */
export function reportCsv(report: ReturnType<typeof incidentReport>): string {
  const rows: [string, string][] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v === null || v === undefined) rows.push([prefix, '']);
    else if (Array.isArray(v)) {
      if (!v.length) rows.push([prefix, '']);
      v.forEach((x, n) => walk(`${prefix}.${n}`, x));
    } else if (typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
    else rows.push([prefix, String(v)]);
  };
  walk('', report);
  // a cell starting with = + - @ would be a formula in a spreadsheet: quote it with a leading '
  const cell = (s: string) => {
    const t = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\r\n]/.test(t) || t !== s ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return ['field,value', ...rows.map(([k, v]) => `${cell(k)},${cell(v)}`)].join('\r\n') + '\r\n';
}
