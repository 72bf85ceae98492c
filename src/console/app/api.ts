/**
 * The console's only way to the appliance: the documented /api/v1 routes on the same origin.
 *
 * - Cookies travel with `credentials: 'same-origin'`; the session cookie is `__Host-`, HttpOnly:
 *   this code never sees it. The CSRF token is kept in memory only (never localStorage or
 *   sessionStorage) and sent on every state-changing request.
 * - Every error becomes an `ApiError` with the server's stable code; a 401 on a call that needs a
 *   session tells the app that the session ended (idle or absolute timeout, logout elsewhere,
 *   disabled account), and the app goes back to the sign-in page.
 */
import { language, t } from './i18n/index.js';

export const API = '/api/v1';
export const CSRF_HEADER = 'x-csrf-token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
    readonly details?: unknown,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | undefined;
let onSessionLost: (() => void) | undefined;

export function setCsrfToken(t: string | undefined): void {
  csrfToken = t;
}
export function hasCsrfToken(): boolean {
  return csrfToken !== undefined;
}
/** the app installs this: called when an authenticated call answers 401 */
export function setSessionLostHandler(h: () => void): void {
  onSessionLost = h;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** a 401 is an expected answer (sign-in steps), not a lost session */
  anonymous?: boolean;
  query?: Record<string, string | number | boolean | undefined | null>;
  headers?: Record<string, string>;
}

export function url(path: string, query?: CallOptions['query']): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `${API}${path}${s ? `?${s}` : ''}`;
}

function retryAfterOf(h: string | null): number | undefined {
  if (!h) return undefined;
  const n = Number(h);
  return Number.isFinite(n) ? n : undefined;
}

/** the appliance's error reply (`{error: {code, message, requestId, details}}`) as an ApiError */
export function errorFrom(res: Response, body: unknown): ApiError {
  const e = (body as { error?: { code?: string; message?: string; requestId?: string; details?: unknown } } | null)
    ?.error;
  return new ApiError(
    res.status,
    e?.code ?? `HTTP_${res.status}`,
    e?.message ?? (res.statusText || 'request failed'),
    e?.requestId,
    e?.details,
    retryAfterOf(res.headers.get('retry-after')),
  );
}

async function errorOf(res: Response): Promise<ApiError> {
  // not JSON (a proxy's page): the status alone
  return errorFrom(res, await res.json().catch(() => null));
}

/** a 401 on a call that needs a session: the session ended, the app goes back to sign-in */
export function lost(status: number, opts: { anonymous?: boolean } = {}): void {
  if (status === 401 && !opts.anonymous) onSessionLost?.();
}

/** the headers every call carries: JSON, the console's language, the CSRF token on changes */
export function requestHeaders(method: string): Record<string, string> {
  return {
    accept: 'application/json',
    'accept-language': language(),
    ...(unsafe(method) && csrfToken ? { [CSRF_HEADER]: csrfToken } : {}),
  };
}

const unsafe = (m: string) => !['GET', 'HEAD', 'OPTIONS'].includes(m);

export async function call<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  // the appliance answers its messages in the language the console shows
  const headers: Record<string, string> = { ...requestHeaders(method), ...opts.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url(path, opts.query), {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', t('errors.network.text'));
  }
  if (!res.ok) {
    lost(res.status, opts);
    throw await errorOf(res);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  if (!type.includes('json')) return (await res.text()) as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string, opts?: CallOptions) => call<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body?: unknown, opts?: CallOptions) =>
  call<T>('POST', path, body === undefined ? {} : body, opts);
export const put = <T>(path: string, body?: unknown, opts?: CallOptions) => call<T>('PUT', path, body ?? {}, opts);
export const patch = <T>(path: string, body?: unknown, opts?: CallOptions) => call<T>('PATCH', path, body ?? {}, opts);
export const del = <T>(path: string, opts?: CallOptions) => call<T>('DELETE', path, undefined, opts);

export interface UploadOptions {
  method?: 'POST' | 'PUT';
  headers?: Record<string, string>;
  query?: CallOptions['query'];
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Streams a file up with upload progress (fetch has no upload progress; XMLHttpRequest does).
 * The browser reads the file from disk as it sends it: a large file is never held in memory.
 */
export function upload<T>(path: string, body: Blob | FormData, o: UploadOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(o.method ?? 'POST', url(path, o.query));
    xhr.responseType = 'text';
    xhr.setRequestHeader('accept', 'application/json');
    xhr.setRequestHeader('accept-language', language());
    if (csrfToken) xhr.setRequestHeader(CSRF_HEADER, csrfToken);
    for (const [k, v] of Object.entries(o.headers ?? {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) =>
      o.onProgress?.(e.loaded, e.lengthComputable ? e.total : body instanceof Blob ? body.size : 0);
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', t('errors.network.upload')));
    xhr.onabort = () => reject(new DOMException('upload cancelled', 'AbortError'));
    xhr.onload = () => {
      const text = xhr.responseText;
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(json as T);
      if (xhr.status === 401) onSessionLost?.();
      const e = (
        json as { error?: { code?: string; message?: string; requestId?: string; details?: unknown } } | undefined
      )?.error;
      reject(
        new ApiError(
          xhr.status,
          e?.code ?? `HTTP_${xhr.status}`,
          e?.message ?? 'upload failed',
          e?.requestId,
          e?.details,
          retryAfterOf(xhr.getResponseHeader('retry-after')),
        ),
      );
    };
    o.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** What to tell a person about an error: calm, specific, and what to do next. */
export function describeError(e: unknown): { title: string; text: string; requestId?: string } {
  if (!(e instanceof ApiError)) return { title: t('errors.generic'), text: e instanceof Error ? e.message : String(e) };
  const rid = e.requestId ? { requestId: e.requestId } : {};
  switch (e.code) {
    case 'NETWORK':
      return { title: t('errors.network.title'), text: e.message };
    case 'KEYS_UNAVAILABLE':
      return { title: t('errors.keys.title'), text: t('errors.keys.text'), ...rid };
    case 'TARGET_UNREACHABLE':
      return { title: t('errors.target.title'), text: t('errors.target.text', { message: e.message }), ...rid };
    case 'RATE_LIMITED':
    case 'THROTTLED':
      return {
        title: t('errors.throttled.title'),
        text: e.retryAfter ? t('errors.throttled.wait', { count: e.retryAfter }) : t('errors.throttled.moment'),
        ...rid,
      };
    case 'FORBIDDEN':
      return { title: t('errors.forbidden.title'), text: t('errors.forbidden.text'), ...rid };
    case 'UNAUTHENTICATED':
      return { title: t('errors.unauthenticated.title'), text: t('errors.unauthenticated.text'), ...rid };
    case 'NOT_FOUND':
      return {
        title: t('errors.notFound.title'),
        text: t('errors.notFound.text', { message: capital(e.message) }),
        ...rid,
      };
    case 'BODY_TOO_LARGE':
      return { title: t('errors.tooLarge.title'), text: t('errors.tooLarge.text'), ...rid };
    case 'DB_BUSY':
    case 'SHUTTING_DOWN':
      return {
        title: t('errors.busy.title'),
        text: e.retryAfter ? t('errors.busy.in', { count: e.retryAfter }) : t('errors.busy.moment'),
        ...rid,
      };
    case 'STORAGE_FULL':
      return { title: t('errors.full.title'), text: t('errors.full.text'), ...rid };
    case 'DB_CORRUPT':
      return { title: t('errors.corrupt.title'), text: t('errors.corrupt.text'), ...rid };
    case 'INTERNAL':
      return { title: t('errors.internal.title'), text: t('errors.internal.text'), ...rid };
    default:
      return {
        title: e.status >= 500 ? t('errors.internal.title') : t('errors.failed'),
        text: capital(e.message),
        ...rid,
      };
  }
}

const capital = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);
