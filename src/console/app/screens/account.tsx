import { useState } from 'preact/hooks';
import { del, get, post, url } from '../api.js';
import { auth, type TotpProvisioning } from '../endpoints.js';
import { DEFAULT_RULES } from '../password.js';
import type { Route } from '../router.js';
import type { Me } from '../session.js';
import { Alert, Badge, Button, Card, ErrorAlert, Facts, Loading, PageHeader, TextField, Time, notify, useAction, useAsync } from '../ui.js';
import { PasswordChooser, RecoveryCodes, TotpSetup, passwordReady } from './signin.js';

interface SessionRow {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

export function AccountPage({ me }: { me: Me; route: Route }) {
  return (
    <>
      <PageHeader title="My account" description="Your password, second factor and where you are signed in." />
      <Card title="Profile">
        <Facts
          items={[
            ['User name', me.username],
            ['User id', <code>{me.id}</code>],
            ['Role', me.role],
            ['Second factor', me.mfaMethod ? <Badge kind="ok">{mfaLabel(me.mfaMethod)}</Badge> : <Badge kind="warn">none</Badge>],
            ['Last sign-in', <Time t={me.lastLoginAt} />],
          ]}
        />
      </Card>
      <div class="grid-2">
        <SecondFactorCard me={me} />
        <PasswordCard me={me} />
      </div>
      <SessionsCard />
      <Card title="Your data">
        <p class="muted">Everything this appliance holds about you: your profile, e-mail address and phone number, workspaces and roles, sessions and API tokens (never their secrets), your second factor's kind, and the audit records of what you did or what was done to your account. A zip of JSON and CSV files; the download is recorded in the audit trail.</p>
        <a class="btn btn-secondary" data-testid="export-mine" href={url('/users/me/export')} download={`coffre-person-${me.id}.zip`}>
          Download my data
        </a>
      </Card>
    </>
  );
}

export const mfaLabel = (m: string | null) => (m === 'totp' ? 'authenticator app' : m === 'email' ? 'code by e-mail' : m === 'sms' ? 'code by text message' : 'none');

function SecondFactorCard({ me }: { me: Me }) {
  const [prov, setProv] = useState<TotpProvisioning | undefined>();
  const [code, setCode] = useState('');
  const [current, setCurrent] = useState('');
  const [codes, setCodes] = useState<string[] | undefined>();
  const start = useAction(async () => setProv(await post<TotpProvisioning>('/auth/mfa/totp')));
  const confirm = useAction(async () => {
    // the appliance asks for the password too: a stolen session alone cannot swap the second factor
    const r = await post<{ recoveryCodes: string[] }>('/auth/mfa/totp/confirm', { code: code.trim(), currentPassword: current });
    setCode('');
    setCurrent('');
    setProv(undefined);
    setCodes(r.recoveryCodes);
    await auth.refresh();
    notify('Authenticator app set up');
  });
  if (codes) {
    return (
      <Card title="Second factor">
        <Alert kind="info">Your other sessions were ended.</Alert>
        <RecoveryCodes codes={codes} />
        <Button variant="primary" onClick={() => setCodes(undefined)}>
          I have saved them
        </Button>
      </Card>
    );
  }
  if (prov) {
    return (
      <Card title="Set up an authenticator app">
        <TotpSetup totp={prov} />
        <ErrorAlert error={confirm.error} />
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void confirm.run();
          }}
        >
          <TextField label="Code shown by the app" value={code} onValue={setCode} inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required class="input code-input" />
          <TextField label="Your current password" type="password" value={current} onValue={setCurrent} autoComplete="current-password" required />
          <Button type="submit" variant="primary" busy={confirm.busy}>
            Confirm
          </Button>
          <Button onClick={() => (setProv(undefined), setCurrent(''))}>Cancel</Button>
        </form>
      </Card>
    );
  }
  return (
    <Card title="Second factor">
      <p>
        {me.mfaMethod === 'totp'
          ? 'You sign in with a code from your authenticator app. Setting it up again replaces the old app and gives you new recovery codes.'
          : 'Protect your account with an authenticator app: signing in will need your password and a 6-digit code.'}
      </p>
      <ErrorAlert error={start.error} />
      <Button variant={me.mfaMethod === 'totp' ? 'secondary' : 'primary'} busy={start.busy} onClick={() => void start.run()}>
        {me.mfaMethod === 'totp' ? 'Replace authenticator app' : 'Set up an authenticator app'}
      </Button>
    </Card>
  );
}

function PasswordCard({ me }: { me: Me }) {
  const [current, setCurrent] = useState('');
  const [pw, setPw] = useState('');
  const [confirm, setConfirm] = useState('');
  const [ended, setEnded] = useState<number | undefined>();
  const act = useAction(async () => {
    const r = await post<{ sessionsEnded: number }>('/auth/password', { currentPassword: current, newPassword: pw, endOtherSessions: true });
    setCurrent('');
    setPw('');
    setConfirm('');
    setEnded(r.sessionsEnded);
  });
  const ready = current.length > 0 && passwordReady(pw, confirm, DEFAULT_RULES, [me.username]);
  return (
    <Card title="Password">
      {ended !== undefined ? <Alert kind="ok">Password changed. {ended ? `${ended} other session(s) were ended.` : ''} You will get an e-mail about this change.</Alert> : null}
      <ErrorAlert error={act.error} />
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (ready) void act.run();
        }}
      >
        <TextField label="Current password" type="password" value={current} onValue={setCurrent} autoComplete="current-password" required />
        <PasswordChooser rules={DEFAULT_RULES} context={[me.username]} value={pw} onValue={setPw} confirm={confirm} onConfirm={setConfirm} />
        <div>
          <Button type="submit" variant="primary" busy={act.busy} disabled={!ready}>
            Change password
          </Button>
        </div>
      </form>
    </Card>
  );
}

function SessionsCard() {
  const list = useAsync((signal) => get<{ sessions: SessionRow[] }>('/auth/sessions', { signal }), []);
  const endOthers = useAction(async () => {
    const r = await post<{ ended: number }>('/auth/sessions/end-others');
    notify(`${r.ended} other session(s) ended`);
    list.reload();
  });
  const end = useAction(async (id: string) => {
    await del(`/auth/sessions/${encodeURIComponent(id)}`);
    list.reload();
  });
  const others = list.data?.sessions.filter((s) => !s.current).length ?? 0;
  return (
    <Card
      title="Where you are signed in"
      class="flush"
      actions={
        others > 0 ? (
          <Button small variant="danger" busy={endOthers.busy} onClick={() => void endOthers.run()}>
            Sign out everywhere else
          </Button>
        ) : null
      }
    >
      <ErrorAlert error={list.error ?? endOthers.error ?? end.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data ? (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>Browser</th>
                <th>Address</th>
                <th>Signed in</th>
                <th>Last active</th>
                <th>Expires</th>
                <th class="actions">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.sessions.map((s) => (
                <tr>
                  <td>
                    {browserOf(s.userAgent)} {s.current ? <Badge kind="accent">this session</Badge> : null}
                  </td>
                  <td class="mono">{s.ip ?? '—'}</td>
                  <td>
                    <Time t={s.createdAt} />
                  </td>
                  <td>
                    <Time t={s.lastSeenAt} />
                  </td>
                  <td>
                    <Time t={s.expiresAt} />
                  </td>
                  <td class="actions">
                    {s.current ? null : (
                      <Button small variant="ghost" onClick={() => void end.run(s.id)}>
                        Sign out
                      </Button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}

export function browserOf(ua: string | null): string {
  if (!ua) return 'Unknown client';
  if (/coffre/i.test(ua)) return 'coffre CLI';
  const b = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${b} on ${os}` : b;
}
