import type { ClientConfig } from 'pg';

/**
 * Messages to every node sharing the database (cache invalidation: a data key destroyed on one
 * node must not stay usable from another node's cache). On PostgreSQL, LISTEN/NOTIFY: delivered
 * to every listening session, the publisher's included, once the publishing transaction commits.
 * On SQLite (one node), within this process.
 *
 * A subscriber that may have missed messages (the listening connection was lost and is being
 * re-established) is told `*`: drop everything.
 */
export interface ChangeBus {
  publish(channel: string, payload: string): Promise<void>;
  /** `fn` gets each payload published on `channel`, or `*` after a possible gap; returns the unsubscribe */
  subscribe(channel: string, fn: (payload: string) => void): () => void;
  close(): Promise<void>;
}

type Handlers = Map<string, Set<(payload: string) => void>>;

function dispatch(handlers: Handlers, channel: string, payload: string): void {
  for (const fn of handlers.get(channel) ?? []) fn(payload);
}

function add(handlers: Handlers, channel: string, fn: (payload: string) => void): () => void {
  let set = handlers.get(channel);
  if (!set) handlers.set(channel, (set = new Set()));
  set.add(fn);
  return () => set.delete(fn);
}

export function localBus(): ChangeBus {
  const handlers: Handlers = new Map();
  return {
    publish: async (channel, payload) => dispatch(handlers, channel, payload),
    subscribe: (channel, fn) => add(handlers, channel, fn),
    close: async () => handlers.clear(),
  };
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
const RECONNECT_MS = 1_000;

/**
 * LISTEN on one dedicated connection (outside the pool), opened at the first subscription and
 * re-opened after a loss; NOTIFY through `query` (the pool).
 */
export function postgresBus(
  pg: typeof import('pg'),
  client: ClientConfig,
  query: (text: string, values: unknown[]) => Promise<unknown>,
  onError: (e: Error) => void = () => undefined,
): ChangeBus {
  const handlers: Handlers = new Map();
  let conn: import('pg').Client | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const listened = new Set<string>();

  const gap = () => {
    for (const ch of handlers.keys()) dispatch(handlers, ch, '*');
  };
  const connect = (): Promise<void> =>
    (connecting ??= (async () => {
      const c = new pg.Client(client);
      c.on('notification', (m) => dispatch(handlers, m.channel, m.payload ?? '*'));
      c.on('error', (e) => {
        onError(e);
        lost(c);
      });
      c.on('end', () => lost(c));
      await c.connect();
      for (const ch of handlers.keys()) await c.query(`LISTEN ${ch}`);
      listened.clear();
      for (const ch of handlers.keys()) listened.add(ch);
      conn = c;
    })().finally(() => (connecting = undefined)));
  const lost = (c: import('pg').Client) => {
    if (conn !== c) return;
    conn = undefined;
    gap();
    if (!closed) schedule();
  };
  const schedule = () => {
    clearTimeout(retry);
    retry = setTimeout(() => {
      connect().then(gap, (e: unknown) => {
        onError(e as Error);
        if (!closed) schedule();
      });
    }, RECONNECT_MS);
    retry.unref();
  };
  return {
    publish: async (channel, payload) => {
      if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
      await query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    subscribe: (channel, fn) => {
      if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
      const off = add(handlers, channel, fn);
      if (conn && !listened.has(channel)) {
        listened.add(channel);
        void conn.query(`LISTEN ${channel}`).catch(onError);
      } else if (!conn && !closed) {
        connect().catch((e: unknown) => {
          onError(e as Error);
          schedule();
        });
      }
      return off;
    },
    close: async () => {
      closed = true;
      clearTimeout(retry);
      handlers.clear();
      await connecting?.catch(() => undefined);
      const c = conn;
      conn = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
