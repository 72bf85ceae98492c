import { ApiError, get, post } from './api.js';
import { setAnonymous, setSignedIn, type User } from './session.js';
import { DEFAULT_RULES, type PolicyRules } from './password.js';
import { solveProof } from './proof.js';
import { t } from './i18n/index.js';

/** Identity routes (src/auth/routes.ts on the appliance), as documented in /api/v1/openapi.json. */
export interface MeReply {
  user: User;
  permissions: string[];
  csrfToken?: string;
  sessionId?: string;
}

export type LoginAnswer =
  | {
      status: 'mfa_required';
      challenge: string;
      method: string;
      expiresAt: string;
      /** method `totp-enrol` (no mail server, no second factor yet): the authenticator to add now */
      totp?: TotpProvisioning;
    }
  | { status: 'ok'; user: User; csrfToken?: string; notices?: { kind: string; at: string }[] };

const noticeText = (kind: string): string => (kind === 'mfa.locked' ? t('common.notices.mfaLocked') : kind);

/** notices the appliance kept for this sign-in (shown once) */
function showNotices(notices: { kind: string; at: string }[] | undefined): void {
  for (const n of notices ?? []) window.alert(`${noticeText(n.kind)} (${n.at})`);
}

export interface TotpProvisioning {
  secret: string;
  otpauthUrl: string;
  qrSvg: string;
}

export interface EnrolAnswer {
  status: 'ok';
  username: string;
  totp?: TotpProvisioning;
  recoveryCodes?: string[];
}

async function me(): Promise<void> {
  const m = await get<MeReply>('/auth/me', { anonymous: true });
  setSignedIn(
    { ...m.user, permissions: m.permissions, ...(m.sessionId ? { sessionId: m.sessionId } : {}) },
    m.csrfToken,
  );
}

export const auth = {
  /** on page load: is there a session already (the cookie is HttpOnly, this code cannot see it)? */
  async resume(): Promise<void> {
    try {
      await me();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setAnonymous();
      else
        setAnonymous(e instanceof ApiError ? t('common.answered', { message: e.message }) : t('errors.network.text'));
    }
  },

  async login(username: string, password: string): Promise<LoginAnswer> {
    let proof: { challenge: string; nonce: string } | undefined;
    for (let i = 0; ; i++) {
      try {
        const a = await post<LoginAnswer>(
          '/auth/login',
          { username, password, ...(proof ? { proof } : {}) },
          { anonymous: true },
        );
        if (a.status === 'ok') {
          showNotices(a.notices);
          await me();
        }
        return a;
      } catch (e) {
        // the account or address is under attack: the appliance asks for a proof of work first
        const p =
          e instanceof ApiError && e.code === 'PROOF_REQUIRED'
            ? (e.details as { proof?: { challenge: string; bits: number } } | undefined)?.proof
            : undefined;
        if (!p || i >= 3) throw e;
        proof = { challenge: p.challenge, nonce: await solveProof(p.challenge, p.bits) };
      }
    }
  },

  async secondFactor(challenge: string, code: string): Promise<void> {
    const a = await post<LoginAnswer>('/auth/login/mfa', { challenge, code }, { anonymous: true });
    if (a.status === 'ok') showNotices(a.notices);
    await me();
  },

  refresh: me,

  async logout(notice = t('common.signedOut')): Promise<void> {
    try {
      await post('/auth/logout', {}, { anonymous: true });
    } catch {
      /* the session may be gone already */
    }
    setAnonymous(notice);
    location.hash = '#/login';
  },

  /**
   * The server's rules. The appliance publishes no policy route (yet): these are its defaults
   * (auth.password.minLength 10, minClasses 3); a stricter configuration is still enforced by the
   * server, whose reasons the form shows.
   */
  async policy(): Promise<PolicyRules> {
    return DEFAULT_RULES;
  },

  enrol(token: string, password: string, mfa?: string, phone?: string): Promise<EnrolAnswer> {
    return post<EnrolAnswer>(
      '/auth/enrol',
      { token, password, ...(mfa ? { mfa } : {}), ...(phone ? { phone } : {}) },
      { anonymous: true },
    );
  },

  /** delivery 'none': no mail server, nothing will be sent (the same answer for every account) */
  forgot(username: string): Promise<{ status: string; delivery: 'email' | 'none' }> {
    return post<{ status: string; delivery: 'email' | 'none' }>(
      '/auth/password/forgot',
      { username },
      { anonymous: true },
    );
  },

  /** code: the user's own authenticator (or recovery) code, needed when an admin started the reset; a recovery answers with a new authenticator */
  reset(
    token: string,
    password: string,
    code?: string,
  ): Promise<{
    status: string;
    totp?: { secret: string; otpauthUrl: string; qrSvg: string };
    recoveryCodes?: string[];
  }> {
    return post('/auth/password/reset', { token, password, ...(code ? { code } : {}) }, { anonymous: true });
  },
};
