/**
 * Tables owned by the records module (migrations/2026-12-07T0415-records.ts). Ids only, no
 * confidential text. Times are milliseconds since the epoch; user columns hold user ids.
 */
export interface RecordsTables {
  /** minimum keeping period from deposit, per workspace or folder (a folder's covers its sub-folders) */
  records_policies: {
    /** 'workspace' | 'folder' */
    scope_kind: string;
    scope_id: string;
    workspace_id: string;
    min_days: number;
    set_at: number;
    requested_by: string;
    approved_by: string;
  };
  /** legal holds: no destruction (nor trash) of what they cover while not released */
  records_holds: {
    id: string;
    /** 'workspace' | 'folder' | 'document' */
    scope_kind: string;
    scope_id: string;
    workspace_id: string;
    placed_at: number;
    placed_by: string;
    released_at: number | null;
    released_by: string | null;
  };
  /** changes that need a second person: 'retention' (set or remove a policy) and 'release-hold' */
  records_requests: {
    id: string;
    kind: string;
    scope_kind: string | null;
    scope_id: string | null;
    workspace_id: string;
    /** retention: the new minimum in days; null removes the policy */
    min_days: number | null;
    hold_id: string | null;
    requested_by: string;
    requested_at: number;
    expires_at: number;
    /** 'pending' | 'approved' | 'rejected' | 'cancelled' */
    state: string;
    decided_by: string | null;
    decided_at: number | null;
  };
  /** one per destroyed document: the certificate body (canonical JSON), its SHA-256 and, once sealed, its signature */
  records_certificates: {
    id: string;
    document_id: string;
    workspace_id: string;
    destroyed_at: number;
    body: string;
    sha256: string;
    signature: string | null;
  };
}
