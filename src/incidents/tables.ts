import type { Generated } from 'kysely';

/** Tables owned by incidents (migrations/2026-12-07T0430-incidents.ts). Times: ms since the epoch, UTC. */
export interface IncidentsTables {
  incidents: {
    id: string;
    title: string;
    severity: string;
    status: string;
    created_at: number;
    created_by: string;
    detected_at: number;
    updated_at: number;
    resolved_at: number | null;
    personal_data: number;
    root_cause: string | null;
    /** JSON (./types.ts BreachDetails) */
    breach: string | null;
    /** JSON (./types.ts DoraFields) */
    dora: string | null;
    authority_notified_at: number | null;
    public_title: string | null;
    alert_id: string | null;
  };
  incident_updates: {
    id: Generated<number>;
    incident_id: string;
    at: number;
    actor: string;
    status: string;
    message: string;
    public: Generated<number>;
    public_message: string | null;
  };
  incident_actions: {
    id: string;
    incident_id: string;
    kind: string;
    description: string;
    owner: string | null;
    due_at: number | null;
    state: string;
    created_at: number;
    created_by: string;
    closed_at: number | null;
    closed_by: string | null;
    outcome: string | null;
  };
  incident_affected: { incident_id: string; kind: string; ref: string };
  incident_acks: { incident_id: string; user_id: string; update_id: number; at: number };
}
