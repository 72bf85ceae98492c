import { useEffect, useState } from 'preact/hooks';
import { setCsrfToken } from './api.js';
import { browserLanguage, setLanguage, supported } from './i18n/index.js';

/**
 * Who is signed in, in memory only. Reloading the page asks the appliance again (the session
 * cookie is HttpOnly); closing the tab forgets everything. Nothing goes to localStorage or
 * sessionStorage.
 */
export interface User {
  id: string;
  username: string;
  role: string;
  state: string;
  /** second factor in use ('totp', 'email', 'sms') or null */
  mfaMethod: string | null;
  createdAt: string;
  lastLoginAt: string | null;
  lastSeenAt: string | null;
  /** a role waiting until the user sets up a second factor */
  pendingRole?: string | null;
  /** 'en' | 'fr' chosen on My account, or null: the browser's language */
  language?: string | null;
}

export interface Me extends User {
  permissions: string[];
  sessionId?: string;
}

export type SessionState =
  { status: 'unknown' } | { status: 'anonymous'; notice?: string } | { status: 'signed-in'; me: Me };

let state: SessionState = { status: 'unknown' };
let subs: ((s: SessionState) => void)[] = [];

export function getSession(): SessionState {
  return state;
}

export function setSignedIn(me: Me, csrfToken: string | undefined): void {
  if (csrfToken !== undefined) setCsrfToken(csrfToken);
  // the user's stored choice, else the browser's language (docs/i18n.md)
  setLanguage(supported([me.language]) ?? browserLanguage());
  state = { status: 'signed-in', me };
  subs.forEach((s) => s(state));
}

export function setAnonymous(notice?: string): void {
  setCsrfToken(undefined);
  state = notice ? { status: 'anonymous', notice } : { status: 'anonymous' };
  subs.forEach((s) => s(state));
}

export function useSession(): SessionState {
  const [s, setS] = useState(state);
  useEffect(() => {
    subs.push(setS);
    setS(state);
    return () => {
      subs = subs.filter((x) => x !== setS);
    };
  }, []);
  return s;
}

export function can(me: Me, permission: string): boolean {
  return me.permissions.includes(permission);
}

/**
 * Inactivity lock: after this long without a key, click or upload progress, the console signs
 * out by itself so that nothing stays on an unattended screen. It mirrors the server's default
 * idle timeout (auth.sessions.idleTimeoutMinutes, 30); the server enforces its own in any case.
 */
export const IDLE_MS = 30 * 60_000;
let lastActivity = Date.now();
export function activity(): void {
  lastActivity = Date.now();
}
export const idleFor = (): number => Date.now() - lastActivity;
