/** Tables of the identity module (migrations/2026-11-22T1500-auth.ts). Times are ms since the epoch. */
export interface AuthTables {
  users: {
    id: string;
    /** as given (NFKC) */
    username: string;
    /** NFKC + case-folded: the unique key (P1) */
    username_key: string;
    /** FieldCipher ciphertext, context `users.email:<id>` */
    email_enc: string;
    /** FieldCipher blind index of the normalised address */
    email_index: string;
    phone_enc: string | null;
    phone_index: string | null;
    role: string;
    /** 'invited' | 'active' | 'disabled' */
    state: string;
    /** argon2id PHC string (parameters included) */
    password_hash: string | null;
    password_changed_at: number | null;
    /** 'totp' | 'email' | 'sms' | null */
    mfa_method: string | null;
    totp_secret_enc: string | null;
    /** a new TOTP secret being set up (replaces totp_secret_enc once confirmed) */
    totp_pending_enc: string | null;
    totp_confirmed: number;
    /** last accepted TOTP time step (M1: a code works once) */
    totp_last_step: number | null;
    created_at: number;
    created_by: string;
    last_login_at: number | null;
    last_seen_at: number | null;
    disabled_at: number | null;
    /** UTS #39 confusable skeleton of username_key (unique: no `аdmin` beside `admin`) */
    username_skeleton: string | null;
    /** a role given by an admin that needs a second factor the user has not set up yet */
    pending_role: string | null;
    /** 'en' | 'fr' | null (follow the browser): console, error messages and e-mails (docs/i18n.md) */
    language: string | null;
  };
  /** an account whose owner lost both password and second factor: two different admins (each audited) */
  account_recoveries: {
    id: string;
    user_id: string;
    requested_by: string;
    requested_at: number;
    approved_by: string | null;
    approved_at: number | null;
    /** the reset link issued on approval */
    link_id: string | null;
    closed_at: number | null;
  };
  recovery_codes: { code_hash: string; user_id: string; created_at: number; used_at: number | null };
  one_time_links: {
    id: string;
    user_id: string;
    /** 'enrol' | 'reset' */
    purpose: string;
    /** SHA-256 of the token (R1) */
    token_hash: string;
    created_at: number;
    created_by: string;
    expires_at: number;
    used_at: number | null;
    voided_at: number | null;
  };
  sessions: {
    /** public id (listing, ending) */
    id: string;
    /** SHA-256 of the cookie value */
    secret_hash: string;
    user_id: string;
    created_at: number;
    last_seen_at: number;
    /** absolute expiry */
    expires_at: number;
    ended_at: number | null;
    end_reason: string | null;
    ip: string | null;
    user_agent: string | null;
  };
  login_challenges: {
    /** SHA-256 of the challenge id given to the client */
    id_hash: string;
    user_id: string;
    method: string;
    /** SHA-256 of the one-time code sent by e-mail or SMS */
    code_hash: string | null;
    /** 'session' | 'token' */
    purpose: string;
    /** JSON of what to issue on success (token name, scopes, ttl) */
    request: string | null;
    created_at: number;
    expires_at: number;
    attempts: number;
    consumed_at: number | null;
    /** JSON {accountKey, prefix}: the password step's throttle reservation, released once the second factor succeeds */
    throttle_release: string | null;
  };
  api_tokens: {
    id: string;
    user_id: string;
    name: string;
    token_hash: string;
    /** JSON array of permission names */
    scopes: string;
    created_at: number;
    expires_at: number;
    last_used_at: number | null;
    revoked_at: number | null;
    revoked_by: string | null;
  };
  login_throttle: { key: string; failures: number; window_start: number; last_failure_at: number };
  /** single-use proof-of-work challenges (migrations/2026-12-07T0030-auth-friction.ts) */
  auth_proofs: { id_hash: string; account_key: string; prefix: string; bits: number; expires_at: number };
  /** addresses and devices a user completed a sign-in from: SHA-256 of (kind, user, address or device secret) */
  auth_known_clients: {
    client_hash: string;
    user_id: string;
    kind: string;
    first_seen_at: number;
    last_seen_at: number;
  };
  /** notices shown to a user at their next sign-in (e.g. their second factor was locked) */
  auth_user_notices: { id: string; user_id: string; kind: string; created_at: number; shown_at: number | null };
}
