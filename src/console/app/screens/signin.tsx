import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { auth, type EnrolAnswer, type LoginAnswer } from '../endpoints.js';
import { checkPassword, DEFAULT_RULES, type PolicyRules } from '../password.js';
import { linkToken, forgetLinkToken, navigate, type Route } from '../router.js';
import { Alert, Button, ErrorAlert, Field, Icon, TextField, useAction } from '../ui.js';

/** the frame of every sign-in page */
export function AuthFrame({ title, lead, children, wide }: { title: string; lead?: ComponentChildren; children: ComponentChildren; wide?: boolean }) {
  useEffect(() => {
    document.title = `${title} — Coffre`;
  }, [title]);
  return (
    <main class="auth-page">
      <div class={`auth-card${wide ? ' wide' : ''}`}>
        <div class="brand">
          <span class="brand-mark">
            <Icon name="lock" size={24} />
          </span>
          Coffre
        </div>
        <h1 class="page-title" tabIndex={-1}>
          {title}
        </h1>
        {lead ? <p class="lead">{lead}</p> : null}
        {children}
      </div>
      <p class="auth-footer">Coffre digital safe · this appliance is operated by your organisation</p>
    </main>
  );
}

const METHOD_TEXT: Record<string, string> = {
  totp: 'Enter the 6-digit code shown by your authenticator app.',
  email: 'We sent a one-time code to your e-mail address. Enter it below.',
  sms: 'We sent a one-time code to your phone by text message. Enter it below.',
};

export function LoginPage({ next: nextPath, notice }: { next?: string | undefined; notice?: string | undefined }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [challenge, setChallenge] = useState<Extract<LoginAnswer, { status: 'mfa_required' }> | undefined>();
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState(false);
  const next = nextPath ?? '/';
  const done = () => {
    // only a path inside the console (never another origin); query kept
    const [path = '/', query = ''] = (next.startsWith('/') ? next : '/').split('?', 2);
    navigate(path, Object.fromEntries(new URLSearchParams(query)), true);
  };

  const pw = useAction(async () => {
    const a = await auth.login(username.trim(), password);
    setPassword(''); // never kept longer than the request
    if (a.status === 'mfa_required') setChallenge(a);
    else done();
  });
  const mfa = useAction(async () => {
    if (!challenge) return;
    try {
      await auth.secondFactor(challenge.challenge, code.trim());
      done();
    } catch (e) {
      setCode('');
      // a burned or expired challenge: start again from the password
      if (e instanceof ApiError && (e.code === 'CHALLENGE_INVALID' || e.code === 'CHALLENGE_EXPIRED')) setChallenge(undefined);
      throw e;
    }
  });

  if (challenge) {
    return (
      <AuthFrame title="Second factor" lead={recovery ? 'Enter one of your recovery codes. Each works only once.' : (METHOD_TEXT[challenge.method] ?? 'Enter your one-time code.')}>
        <ErrorAlert error={mfa.error} />
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void mfa.run();
          }}
        >
          <TextField
            label={recovery ? 'Recovery code' : 'One-time code'}
            value={code}
            onValue={setCode}
            autoComplete="one-time-code"
            inputMode={recovery ? 'text' : 'numeric'}
            class={recovery ? 'input' : 'input code-input'}
            autoFocus
            required
            name="code"
          />
          <Button type="submit" variant="primary" busy={mfa.busy} class="full">
            Verify and sign in
          </Button>
        </form>
        <div class="auth-links">
          <button type="button" class="btn btn-ghost btn-sm" onClick={() => (setRecovery(!recovery), setCode(''))}>
            {recovery ? 'Use a one-time code' : 'Use a recovery code'}
          </button>
          <button type="button" class="btn btn-ghost btn-sm" onClick={() => (setChallenge(undefined), setCode(''), mfa.clear())}>
            Start again
          </button>
        </div>
      </AuthFrame>
    );
  }

  return (
    <AuthFrame title="Sign in" lead="Use your Coffre account.">
      {notice ? <Alert kind="info">{notice}</Alert> : null}
      <ErrorAlert error={pw.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void pw.run();
        }}
      >
        <TextField label="User name" value={username} onValue={setUsername} autoComplete="username" name="username" autoFocus required autoCapitalize="none" spellcheck={false} />
        <TextField label="Password" type="password" value={password} onValue={setPassword} autoComplete="current-password" name="password" required />
        <Button type="submit" variant="primary" busy={pw.busy} class="full">
          Sign in
        </Button>
      </form>
      <div class="auth-links">
        <a href="#/forgot">Forgot your password?</a>
      </div>
    </AuthFrame>
  );
}

/** new password, confirmation and the live policy checklist */
export function PasswordChooser({ rules, context, value, onValue, confirm, onConfirm, serverError }: { rules: PolicyRules; context: string[]; value: string; onValue: (v: string) => void; confirm: string; onConfirm: (v: string) => void; serverError?: string | undefined }) {
  const checks = checkPassword(value, rules, context);
  const mismatch = confirm.length > 0 && confirm !== value;
  return (
    <>
      <Field
        label="New password"
        error={serverError}
        hint={
          <ul class="policy" aria-label="Password rules">
            {checks.map((c) => (
              <li class={c.met ? 'met' : 'unmet'} data-check={c.id}>
                <Icon name={c.met ? 'check' : 'x'} size={14} />
                <span>
                  {c.label}
                  <span class="sr-only">{c.met ? ' (met)' : ' (not met yet)'}</span>
                </span>
              </li>
            ))}
            <li class="unmet">
              <Icon name="info" size={14} />
              <span>not a common or leaked password (checked by the appliance)</span>
            </li>
          </ul>
        }
      >
        {(p) => <input class="input" {...p} type="password" name="new-password" autoComplete="new-password" value={value} onInput={(e) => onValue(e.currentTarget.value)} required />}
      </Field>
      <TextField label="Repeat the new password" type="password" name="confirm-password" autoComplete="new-password" value={confirm} onValue={onConfirm} error={mismatch ? 'The two passwords differ.' : undefined} required />
    </>
  );
}

export const passwordReady = (pw: string, confirm: string, rules: PolicyRules, context: string[]) => pw === confirm && checkPassword(pw, rules, context).every((c) => c.met);

/** the reasons the server gave for refusing a password, if that is what it said */
function passwordErrorOf(e: unknown): string | undefined {
  if (e instanceof ApiError && e.code === 'PASSWORD_REJECTED') {
    const reasons = (e.details as { reasons?: string[] } | undefined)?.reasons;
    return reasons?.length ? `Refused: ${reasons.join('; ')}.` : e.message;
  }
  return undefined;
}

/** the token of the link this page was opened from (captured before rendering, see router.ts) */
function useLinkToken(route: Route, kind: 'enrol' | 'reset'): string | undefined {
  void route;
  return linkToken(kind);
}

function usePolicy(): PolicyRules {
  const [rules, setRules] = useState(DEFAULT_RULES);
  useEffect(() => {
    void auth.policy().then(setRules);
  }, []);
  return rules;
}

export function EnrolPage({ route }: { route: Route }) {
  const token = useLinkToken(route, 'enrol');
  const rules = usePolicy();
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [result, setResult] = useState<EnrolAnswer | undefined>();
  const [stage, setStage] = useState<'password' | 'totp' | 'codes'>('password');
  const [factor, setFactor] = useState<'totp' | 'email' | 'sms' | 'none'>('totp');
  const [phone, setPhone] = useState('');
  const act = useAction(async () => {
    // without a choice, the appliance still sets up an authenticator for roles that require one
    const r = await auth.enrol(token!, password, factor === 'none' ? undefined : factor, factor === 'sms' ? phone.trim() : undefined);
    setPhone('');
    forgetLinkToken('enrol');
    setPassword('');
    setConfirm('');
    setResult(r);
    setStage(r.totp ? 'totp' : r.recoveryCodes ? 'codes' : 'codes');
  });

  if (result && stage === 'totp' && result.totp) {
    return (
      <AuthFrame title="Set up your authenticator" wide lead={`Account ${result.username} is ready. Your role requires a second factor.`}>
        <TotpSetup totp={result.totp} />
        <Button variant="primary" class="full" onClick={() => setStage('codes')}>
          I have added it — next
        </Button>
      </AuthFrame>
    );
  }
  if (result) {
    return (
      <AuthFrame title="You are enrolled" wide lead={`Welcome, ${result.username}.`}>
        {result.recoveryCodes?.length ? <RecoveryCodes codes={result.recoveryCodes} /> : null}
        <Alert kind="info">{result.totp ? 'Sign in now with your password and a code from your authenticator app: this also checks that it works.' : 'Sign in now with your new password.'}</Alert>
        <Button variant="primary" class="full" onClick={() => navigate('/login', undefined, true)}>
          Continue to sign-in
        </Button>
      </AuthFrame>
    );
  }
  if (!token) {
    return (
      <AuthFrame title="Open your invitation link">
        <Alert kind="warn" title="No enrolment link">
          For your safety, the link's secret is removed from the address as soon as the page opens, so this page cannot be reloaded. Open the link from your invitation again, or ask an IT admin for a new one.
        </Alert>
        <a class="btn btn-secondary full" href="#/login">
          Go to sign-in
        </a>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Welcome to Coffre" lead="Choose your password to activate your account. Nobody else, not even an IT admin, will know it.">
      <ErrorAlert error={passwordErrorOf(act.error) ? undefined : act.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (passwordReady(password, confirm, rules, [])) void act.run();
        }}
      >
        <PasswordChooser rules={rules} context={[]} value={password} onValue={setPassword} confirm={confirm} onConfirm={setConfirm} serverError={passwordErrorOf(act.error)} />
        <fieldset class="choices">
          <legend>Second factor at sign-in (required for some roles)</legend>
          {(
            [
              ['totp', 'A code from an authenticator app (recommended)'],
              ['email', 'A code sent by e-mail'],
              ['sms', 'A code sent by text message'],
              ['none', 'None for now'],
            ] as const
          ).map(([v, text]) => (
            <label class="check">
              <input type="radio" name="factor" value={v} checked={factor === v} onChange={() => setFactor(v)} />
              <span>{text}</span>
            </label>
          ))}
        </fieldset>
        {factor === 'sms' ? <TextField label="Mobile phone number" type="text" value={phone} onValue={setPhone} required autoComplete="tel" hint="International format, e.g. +33 6 12 34 56 78." /> : null}
        <Button type="submit" variant="primary" busy={act.busy} disabled={!passwordReady(password, confirm, rules, []) || (factor === 'sms' && !phone.trim())} class="full">
          Activate my account
        </Button>
      </form>
    </AuthFrame>
  );
}

export function TotpSetup({ totp }: { totp: { secret: string; otpauthUrl: string; qrSvg: string } }) {
  // an SVG in an <img> from a data: URL: drawn, never executed (CSP img-src 'self' data:)
  const src = `data:image/svg+xml;base64,${btoa(totp.qrSvg)}`;
  return (
    <div class="stack">
      <ol>
        <li>Open your authenticator app (for example FreeOTP, Aegis, Google or Microsoft Authenticator).</li>
        <li>Scan this QR code, or type the key below.</li>
      </ol>
      <div class="qr">
        <img src={src} alt="QR code to add this account to an authenticator app" width={184} height={184} />
        <div>
          <div class="muted small">Key for manual entry</div>
          <div class="secret" data-testid="totp-secret">
            {totp.secret.replace(/(.{4})/g, '$1 ').trim()}
          </div>
          <p class="muted small">Time-based, 6 digits, every 30 seconds.</p>
        </div>
      </div>
    </div>
  );
}

export function RecoveryCodes({ codes }: { codes: string[] }) {
  return (
    <div class="stack">
      <Alert kind="warn" title="Save your recovery codes now">
        They are shown only once. Each one signs you in once if you lose your authenticator. Keep them somewhere safe, away from this computer.
      </Alert>
      <ul class="codes" aria-label="Recovery codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li>{c}</li>
        ))}
      </ul>
    </div>
  );
}

export function ForgotPage() {
  const [username, setUsername] = useState('');
  const [sent, setSent] = useState<'email' | 'none' | undefined>();
  const act = useAction(async () => {
    setSent((await auth.forgot(username.trim())).delivery);
  });
  return (
    <AuthFrame title="Forgot your password?" lead="Enter your user name. If the account exists, a reset link is sent to its e-mail address.">
      {sent === 'none' ? (
        <Alert kind="warn" title="No e-mail can be sent from this appliance">
          This appliance has no mail server, so no link is on its way. Ask an IT admin to start a password reset for you: they give you a link that works only with a code from your own authenticator app. If you lost your authenticator too, two IT admins must approve a recovery.
        </Alert>
      ) : sent ? (
        <Alert kind="ok" title="Check your e-mail">
          If an account with this user name exists, a link to choose a new password is on its way. It is valid for 24 hours and works once.
        </Alert>
      ) : (
        <>
          <ErrorAlert error={act.error} />
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void act.run();
            }}
          >
            <TextField label="User name" value={username} onValue={setUsername} autoComplete="username" required autoFocus />
            <Button type="submit" variant="primary" busy={act.busy} class="full">
              Send a reset link
            </Button>
          </form>
        </>
      )}
      <div class="auth-links">
        <a href="#/login">Back to sign-in</a>
      </div>
    </AuthFrame>
  );
}

export function ResetPage({ route }: { route: Route }) {
  const token = useLinkToken(route, 'reset');
  const rules = usePolicy();
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [code, setCode] = useState('');
  const [done, setDone] = useState(false);
  const [recovered, setRecovered] = useState<Awaited<ReturnType<typeof auth.reset>> | undefined>();
  const act = useAction(async () => {
    const r = await auth.reset(token!, password, code.trim() || undefined);
    forgetLinkToken('reset');
    setPassword('');
    setConfirm('');
    setCode('');
    if (r.totp) setRecovered(r);
    setDone(true);
  });
  const needsCode = act.error instanceof ApiError && (act.error.code === 'CODE_REQUIRED' || act.error.code === 'INVALID_CODE');
  if (!token && !done) {
    return (
      <AuthFrame title="Open your reset link">
        <Alert kind="warn" title="No reset link">
          Open the link from the e-mail again, or ask for a new one.
        </Alert>
        <a class="btn btn-secondary full" href="#/forgot">
          Ask for a new link
        </a>
      </AuthFrame>
    );
  }
  if (done && recovered?.totp) {
    return (
      <AuthFrame title="Set up your new authenticator" wide lead="Your account was recovered: your old second factor no longer works.">
        <TotpSetup totp={recovered.totp} />
        {recovered.recoveryCodes?.length ? <RecoveryCodes codes={recovered.recoveryCodes} /> : null}
        <a class="btn btn-primary full" href="#/login">
          Sign in
        </a>
      </AuthFrame>
    );
  }
  if (done) {
    return (
      <AuthFrame title="Password changed">
        <Alert kind="ok">Your password was changed and your other sessions were ended. Sign in with the new password (and your second factor, if you use one).</Alert>
        <a class="btn btn-primary full" href="#/login">
          Sign in
        </a>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Choose a new password">
      <ErrorAlert error={passwordErrorOf(act.error) ? undefined : act.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (passwordReady(password, confirm, rules, [])) void act.run();
        }}
      >
        <PasswordChooser rules={rules} context={[]} value={password} onValue={setPassword} confirm={confirm} onConfirm={setConfirm} serverError={passwordErrorOf(act.error)} />
        <TextField
          label="Code from your authenticator app"
          value={code}
          onValue={setCode}
          autoComplete="one-time-code"
          hint={needsCode ? 'An IT admin started this reset: it works only with a code from your own authenticator app (or one of your recovery codes).' : 'Needed only when an IT admin started the reset for you.'}
        />
        <Button type="submit" variant="primary" busy={act.busy} disabled={!passwordReady(password, confirm, rules, [])} class="full">
          Change my password
        </Button>
      </form>
    </AuthFrame>
  );
}
