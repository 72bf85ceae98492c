/**
 * The typed way to the appliance: openapi-fetch over the types generated from the appliance's own
 * OpenAPI document (api-types.ts, scripts/gen-api-types.mjs), so a route whose schema changes
 * breaks the console's build instead of its users. Same rules as api.ts: same-origin cookies,
 * the CSRF token on changes, the console's language, and a 401 ends the session in the app.
 */
import createClient from 'openapi-fetch';
import type { paths } from './api-types.js';
import { ApiError, errorFrom, lost, requestHeaders } from './api.js';
import { t } from './i18n/index.js';

export type { paths };

export const client = createClient<paths>({ credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
client.use({
  onRequest({ request }) {
    for (const [k, v] of Object.entries(requestHeaders(request.method))) request.headers.set(k, v);
    return request;
  },
});

/** the reply's data, or the ApiError the console shows (network failure, the appliance's error) */
export async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await call;
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', t('errors.network.text'));
  }
  if (!r.response.ok) {
    lost(r.response.status);
    throw errorFrom(r.response, r.error);
  }
  return r.data as T;
}

/** the JSON body of a route's success reply, by path and method */
export type Reply<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: infer R;
}
  ? R extends { 200: { content: { 'application/json': infer T } } }
    ? T
    : R extends { 201: { content: { 'application/json': infer T } } }
      ? T
      : never
  : never;
