export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type IncidentSeverity = (typeof SEVERITIES)[number];
/** `draft`: reported by a user or opened by a critical alert, not yet taken in hand by an admin */
export const STATUSES = ['draft', 'investigating', 'identified', 'monitoring', 'resolved'] as const;
export type IncidentStatus = (typeof STATUSES)[number];
export const ACTION_KINDS = ['corrective', 'preventive'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];
export const AFFECTED_KINDS = ['component', 'workspace', 'user'] as const;
export type AffectedKind = (typeof AFFECTED_KINDS)[number];

/**
 * What a supervisory authority asks for in a personal-data breach notification (GDPR art. 33(3)):
 * the nature of the breach, the categories and approximate numbers of people and of records, the
 * likely consequences, the measures taken or proposed, and whom to contact.
 */
export interface BreachDetails {
  nature?: string;
  /** e.g. "customers", "employees", "patients" */
  subjectCategories?: string[];
  subjectsApprox?: number;
  /** e.g. "contact details", "health data" */
  recordCategories?: string[];
  recordsApprox?: number;
  consequences?: string;
  measures?: string;
  contact?: string;
  /** why notification is late (after 72 h), as art. 33(1) requires */
  delayReason?: string;
}

/**
 * Fields of a DORA major ICT-related incident report (Regulation (EU) 2022/2554 art. 19, and the
 * classification criteria of Delegated Regulation (EU) 2024/1772): clients, duration, spread,
 * data losses, criticality of services, economic impact, plus the report's own fields.
 */
export interface DoraFields {
  classification?: 'major' | 'significant' | 'other';
  clientsAffected?: number;
  /** share of clients affected, percent */
  clientsAffectedPercent?: number;
  counterpartsAffected?: number;
  durationMinutes?: number;
  serviceDowntimeMinutes?: number;
  /** EU member states affected, ISO 3166 codes */
  memberStates?: string[];
  /** availability, authenticity, integrity, confidentiality */
  dataLosses?: ('availability' | 'authenticity' | 'integrity' | 'confidentiality')[];
  criticalServicesAffected?: boolean;
  economicImpactEur?: number;
  reputationalImpact?: boolean;
  /** e.g. "cyber-attack", "process failure", "system failure", "external event" */
  rootCauseType?: string;
  recurring?: boolean;
}

export interface IncidentAction {
  id: string;
  kind: ActionKind;
  description: string;
  owner: string | null;
  dueAt: number | null;
  state: 'open' | 'closed';
  createdAt: number;
  createdBy: string;
  closedAt: number | null;
  closedBy: string | null;
  outcome: string | null;
}

export interface IncidentUpdate {
  id: number;
  at: number;
  actor: string;
  status: IncidentStatus;
  message: string;
  public: boolean;
  publicMessage: { en?: string; fr?: string } | null;
}

export interface Incident {
  id: string;
  title: string;
  severity: IncidentSeverity;
  status: IncidentStatus;
  createdAt: number;
  createdBy: string;
  detectedAt: number;
  updatedAt: number;
  resolvedAt: number | null;
  personalData: boolean;
  rootCause: string | null;
  breach: BreachDetails | null;
  dora: DoraFields | null;
  authorityNotifiedAt: number | null;
  publicTitle: string | null;
  alertId: string | null;
  affected: { components: string[]; workspaces: string[]; users: string[] };
  actions: IncidentAction[];
  updates: IncidentUpdate[];
}

/** The GDPR art. 33 clock of a personal-data breach: 72 hours from detection. */
export interface BreachClock {
  detectedAt: number;
  deadline: number;
  /** ms left before the deadline (negative: overdue) */
  remainingMs: number;
  notifiedAt: number | null;
  /** 'running' | 'overdue' | 'notified' | 'notified-late' */
  state: 'running' | 'overdue' | 'notified' | 'notified-late';
}
