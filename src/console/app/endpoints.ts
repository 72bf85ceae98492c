import { ApiError, get, post } from './api.js';
import { setAnonymous, setSignedIn, type Me } from './session.js';
import { DEFAULT_RULES, type PolicyRules } from './password.js';

/** Identity routes (src/auth/routes.ts on the appliance). */
export interface SessionInfo {
  user: Me;
  csrfToken: string;
}

export type LoginAnswer = { status: 'mfa_required'; challenge: string; method: string; expiresAt: number } | ({ status: 'ok' } & SessionInfo);

export interface TotpProvisioning {
  secret: string;
  otpauthUrl: string;
  qrSvg: string;
}

export interface EnrolAnswer {
  userId: string;
  username: string;
  totp?: TotpProvisioning;
  recoveryCodes?: string[];
}

export const auth = {
  /** on page load: is there a session already (the cookie is HttpOnly)? */
  async resume(): Promise<void> {
    try {
      const s = await get<SessionInfo>('/auth/session', { anonymous: true });
      setSignedIn(s.user, s.csrfToken);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setAnonymous();
      else setAnonymous(e instanceof ApiError ? `The appliance answered: ${e.message}` : 'The appliance could not be reached.');
    }
  },

  async login(username: string, password: string): Promise<LoginAnswer> {
    const a = await post<LoginAnswer>('/auth/login', { username, password }, { anonymous: true });
    if (a.status === 'ok') setSignedIn(a.user, a.csrfToken);
    return a;
  },

  async secondFactor(challenge: string, code: string): Promise<SessionInfo> {
    const a = await post<{ status: 'ok' } & SessionInfo>('/auth/login/mfa', { challenge, code }, { anonymous: true });
    setSignedIn(a.user, a.csrfToken);
    return a;
  },

  async logout(): Promise<void> {
    try {
      await post('/auth/logout', {}, { anonymous: true });
    } catch {
      /* the session may be gone already */
    }
    setAnonymous('You have signed out.');
    location.hash = '#/login';
  },

  async policy(): Promise<PolicyRules> {
    try {
      return { ...DEFAULT_RULES, ...(await get<Partial<PolicyRules>>('/auth/password-policy', { anonymous: true })) };
    } catch {
      return DEFAULT_RULES;
    }
  },

  enrol(token: string, password: string, mfa?: string): Promise<EnrolAnswer> {
    return post<EnrolAnswer>('/auth/enrol', { token, password, ...(mfa ? { mfa } : {}) }, { anonymous: true });
  },

  forgot(username: string): Promise<void> {
    return post<void>('/auth/forgot', { username }, { anonymous: true });
  },

  reset(token: string, password: string): Promise<void> {
    return post<void>('/auth/reset', { token, password }, { anonymous: true });
  },
};
