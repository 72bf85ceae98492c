import { ApiError, get, post } from './api.js';
import { setAnonymous, setSignedIn, type User } from './session.js';
import { DEFAULT_RULES, type PolicyRules } from './password.js';

/** Identity routes (src/auth/routes.ts on the appliance), as documented in /api/v1/openapi.json. */
export interface MeReply {
  user: User;
  permissions: string[];
  csrfToken?: string;
  sessionId?: string;
}

export type LoginAnswer = { status: 'mfa_required'; challenge: string; method: string; expiresAt: string } | { status: 'ok'; user: User; csrfToken?: string };

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
  setSignedIn({ ...m.user, permissions: m.permissions, ...(m.sessionId ? { sessionId: m.sessionId } : {}) }, m.csrfToken);
}

export const auth = {
  /** on page load: is there a session already (the cookie is HttpOnly, this code cannot see it)? */
  async resume(): Promise<void> {
    try {
      await me();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setAnonymous();
      else setAnonymous(e instanceof ApiError ? `The appliance answered: ${e.message}` : 'The appliance could not be reached.');
    }
  },

  async login(username: string, password: string): Promise<LoginAnswer> {
    const a = await post<LoginAnswer>('/auth/login', { username, password }, { anonymous: true });
    if (a.status === 'ok') await me();
    return a;
  },

  async secondFactor(challenge: string, code: string): Promise<void> {
    await post<LoginAnswer>('/auth/login/mfa', { challenge, code }, { anonymous: true });
    await me();
  },

  refresh: me,

  async logout(notice = 'You have signed out.'): Promise<void> {
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
    return post<EnrolAnswer>('/auth/enrol', { token, password, ...(mfa ? { mfa } : {}), ...(phone ? { phone } : {}) }, { anonymous: true });
  },

  forgot(username: string): Promise<void> {
    return post<void>('/auth/password/forgot', { username }, { anonymous: true });
  },

  reset(token: string, password: string): Promise<void> {
    return post<void>('/auth/password/reset', { token, password }, { anonymous: true });
  },
};
