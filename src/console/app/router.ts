import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routing (`#/workspaces/abc?q=x`). The appliance serves one page at `/`, and enrolment and
 * reset links carry their token in the fragment (`#/enrol/<token>`), which browsers never send to
 * a server nor put in a Referer. The app takes such a token into memory and replaces the address
 * (`#/enrol`) so it stays neither in the address bar nor in the history.
 */
export interface Route {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

export function parse(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [p = '/', q = ''] = raw.split('?', 2) as [string?, string?];
  const path = p.startsWith('/') ? p : `/${p}`;
  return { path, parts: path.split('/').filter(Boolean).map(safeDecode), query: new URLSearchParams(q) };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const linkTokens = new Map<string, string>();

/**
 * Takes the secret of an enrolment or reset link (`#/enrol/<token>`) into memory and replaces the
 * address with `#/enrol` before anything renders: the token stays neither in the address bar,
 * nor in the history, nor in any component's state. Called at start and on every hash change.
 */
export function captureLinkToken(): void {
  const m = /^#\/(enrol|reset)\/([A-Za-z0-9_-]{20,})\/?$/.exec(location.hash);
  if (m) {
    linkTokens.set(m[1]!, m[2]!);
    history.replaceState(null, '', `#/${m[1]}`);
  }
}

export function linkToken(kind: 'enrol' | 'reset'): string | undefined {
  return linkTokens.get(kind);
}

export function forgetLinkToken(kind: 'enrol' | 'reset'): void {
  linkTokens.delete(kind);
}

export function current(): Route {
  return parse(location.hash);
}

export function href(path: string, query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export function navigate(path: string, query?: Record<string, string | undefined>, replace = false): void {
  const h = href(path, query);
  if (replace) {
    history.replaceState(null, '', h);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else if (location.hash !== h) {
    location.hash = h;
  } else {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  }
}

/** replaces the address without a navigation (used to drop a token from it) */
export function scrub(path: string): void {
  history.replaceState(null, '', `#${path}`);
}

export function useRoute(): Route {
  const [r, setR] = useState<Route>(current);
  useEffect(() => {
    const on = () => {
      captureLinkToken();
      setR(current());
    };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return r;
}

/** matches `/workspaces/:id/docs/:doc` against a route; returns the params or undefined */
export function match(pattern: string, r: Route): Record<string, string> | undefined {
  const pp = pattern.split('/').filter(Boolean);
  if (pp.length !== r.parts.length) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < pp.length; i++) {
    const want = pp[i]!;
    const got = r.parts[i]!;
    if (want.startsWith(':')) out[want.slice(1)] = got;
    else if (want !== got) return undefined;
  }
  return out;
}
