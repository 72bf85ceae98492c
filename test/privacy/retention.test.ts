import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentityEnv, expectNoSecretsLogged, type IdentityEnv } from '../auth/support.js';
import { enrolUser, signIn, type Enrolled } from '../auth/helpers.js';

/**
 * Retention of personal data (config `privacy.retention`, job `privacy.retention`) on the injected
 * clock: an ended session goes once `sessionsDays` have passed since it ended, a live one stays
 * until it expired that long ago; sign-in records not seen for `loginRecordsDays` go; each purge is
 * audited with its counts.
 */
const DAY = 86_400_000;
let env: IdentityEnv;
let u: Enrolled;

beforeAll(async () => {
  env = await openIdentityEnv({
    COFFRE_CFG_privacy: JSON.stringify({ retention: { sessionsDays: 90, loginRecordsDays: 60, alertsDays: 365 } }),
    COFFRE_CFG_audit__checkpointIntervalMs: '86400000',
  });
  u = await enrolUser(env, 'rita', 'member');
}, 120_000);
afterAll(async () => {
  expectNoSecretsLogged(env);
  await env?.close();
});

const db = () => env.t.appliance.db.db;
const sessionIds = async () =>
  (await db().selectFrom('sessions').select('id').where('user_id', '=', u.id).orderBy('created_at').execute()).map(
    (r) => r.id,
  );

describe('retention of personal data', () => {
  it('keeps what is younger than its retention, deletes what is older, per kind', async () => {
    const first = await signIn(env, u, '198.51.100.31');
    expect(
      (await env.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: first.headers })).statusCode,
    ).toBe(200);
    const [ended] = await sessionIds();
    env.clock.advance(30 * DAY);
    await signIn(env, u, '198.51.100.32');
    const [, live] = await sessionIds();
    expect(live).toBeDefined();
    const clients = async () =>
      (await db().selectFrom('auth_known_clients').select('last_seen_at').where('user_id', '=', u.id).execute()).length;
    const clientsBefore = await clients();
    expect(clientsBefore).toBeGreaterThan(0);

    expect(await env.t.appliance.privacy.purge('local:test')).toMatchObject({ sessions: 0, knownClients: 0 });
    expect(await sessionIds()).toEqual([ended, live]);

    // 61 days after the second sign-in: the first sign-in's records (91 days old) go, the second's stay; the ended session is 91 days old
    env.clock.advance(61 * DAY);
    const r = await env.t.appliance.privacy.purge('local:test');
    expect(r.sessions).toBe(1);
    expect(r.knownClients).toBeGreaterThan(0);
    expect(await sessionIds()).toEqual([live]);
    expect(await clients()).toBeLessThan(clientsBefore);

    // the live session expired (12 h) 61 days ago: kept until it expired 90 days ago
    env.clock.advance(30 * DAY);
    expect((await env.t.appliance.privacy.purge('local:test')).sessions).toBe(1);
    expect(await sessionIds()).toEqual([]);
    expect(await clients()).toBe(0);

    const recs = await db().selectFrom('audit_events').selectAll().where('action', '=', 'privacy.retention').execute();
    expect(recs).toHaveLength(3);
    expect(Object.fromEntries(JSON.parse(recs[1]!.targets!) as [string, string][])).toMatchObject({ sessions: '1' });
  });

  it('the purge is a registered daily job', () => {
    expect(env.t.appliance.scheduler.list()).toEqual(
      expect.arrayContaining([
        { name: 'privacy.retention', schedule: '50 3 * * *' },
        { name: 'privacy.rekey', schedule: '40 3 * * *' },
      ]),
    );
  });
});
