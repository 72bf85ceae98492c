/**
 * Route groups: what metrics (requests, errors, latency) and request budgets are counted by
 * (docs/monitoring.md "Route groups"). Derived from the route pattern, never from the raw URL, so
 * ids and query strings never become labels.
 */
export const ROUTE_GROUPS = [
  'probes',
  'console',
  'auth',
  'users',
  'access',
  'vault',
  'transfer',
  'audit',
  'keys',
  'backup',
  'monitoring',
  'settings',
  'other',
  'unmatched',
] as const;
export type RouteGroup = (typeof ROUTE_GROUPS)[number];

const BY_SEGMENT: Record<string, RouteGroup> = {
  auth: 'auth',
  users: 'users',
  'access-reviews': 'access',
  workspaces: 'vault',
  documents: 'vault',
  folders: 'vault',
  audit: 'audit',
  keys: 'keys',
  backup: 'backup',
  monitoring: 'monitoring',
  settings: 'settings',
};

/** `pattern` is the matched route (`/api/v1/documents/:id`), undefined when none matched (404). */
export function routeGroup(method: string, pattern: string | undefined): RouteGroup {
  if (!pattern) return 'unmatched';
  if (pattern === '/healthz' || pattern === '/readyz' || pattern === '/metrics') return 'probes';
  const m = /^\/api\/v1\/([a-z-]+)/.exec(pattern);
  if (!m) return 'console';
  // document bytes in and out: long requests, their own budget
  if (pattern.endsWith('/content') || (method === 'POST' && /\/(documents|versions)$/.test(pattern))) return 'transfer';
  return BY_SEGMENT[m[1]!] ?? 'other';
}
