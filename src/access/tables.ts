/** Tables of the access module (migrations/2026-11-22T1501-access.ts). Times are ms since the epoch. */
export interface AccessTables {
  workspaces: {
    id: string;
    /** FieldCipher ciphertext, context `workspaces.name:<id>` */
    name_enc: string;
    quota_bytes: number | null;
    created_at: number;
    created_by: string;
    /** 'active' | 'archived' */
    state: string;
  };
  workspace_members: { workspace_id: string; user_id: string; role: string; added_at: number; added_by: string };
  access_reviews: {
    id: string;
    created_at: number;
    created_by: string;
    due_at: number;
    closed_at: number | null;
    reminded_at: number | null;
    overdue_alerted_at: number | null;
  };
  access_review_items: {
    id: string;
    review_id: string;
    /** 'membership' | 'role' | 'token' */
    kind: string;
    user_id: string;
    workspace_id: string | null;
    token_id: string | null;
    role: string | null;
    /** 'owner' | 'admin' */
    reviewer: string;
    /** 'confirm' | 'revoke' | null (pending) */
    decision: string | null;
    decided_by: string | null;
    decided_at: number | null;
  };
}
