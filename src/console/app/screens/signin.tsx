import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { auth, type EnrolAnswer, type LoginAnswer } from '../endpoints.js';
import { checkPassword, DEFAULT_RULES, type PolicyRules } from '../password.js';
import { linkToken, forgetLinkToken, navigate, type Route } from '../router.js';
import { Alert, Button, ErrorAlert, Field, Icon, TextField, useAction } from '../ui.js';
import { t } from '../i18n/index.js';

/** the frame of every sign-in page */
export function AuthFrame({
  title,
  lead,
  children,
  wide,
}: {
  title: string;
  lead?: ComponentChildren;
  children: ComponentChildren;
  wide?: boolean;
}) {
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
      <p class="auth-footer">{t('signin.footer')}</p>
    </main>
  );
}

const methodText = (m: string): string =>
  m === 'totp' || m === 'email' || m === 'sms' ? t(`signin.method.${m}`) : t('signin.method.other');

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
      if (e instanceof ApiError && (e.code === 'CHALLENGE_INVALID' || e.code === 'CHALLENGE_EXPIRED'))
        setChallenge(undefined);
      throw e;
    }
  });

  if (challenge) {
    // no mail server and no second factor yet: the user adds an authenticator now, and its first
    // code both proves it works and completes the sign-in (nothing is kept if they stop here)
    const enrol = challenge.method === 'totp-enrol' && challenge.totp ? challenge.totp : undefined;
    return (
      <AuthFrame
        title={enrol ? t('signin.mfa.enrolTitle') : t('signin.mfa.title')}
        wide={!!enrol}
        lead={
          enrol ? t('signin.mfa.enrolLead') : recovery ? t('signin.mfa.recoveryLead') : methodText(challenge.method)
        }
      >
        {enrol ? <TotpSetup totp={enrol} /> : null}
        {enrol ? <p class="muted small">{t('signin.mfa.enrolCode')}</p> : null}
        <ErrorAlert error={mfa.error} />
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void mfa.run();
          }}
        >
          <TextField
            label={recovery && !enrol ? t('signin.mfa.recoveryCode') : t('signin.mfa.code')}
            value={code}
            onValue={setCode}
            autoComplete="one-time-code"
            inputMode={recovery && !enrol ? 'text' : 'numeric'}
            class={recovery && !enrol ? 'input' : 'input code-input'}
            autoFocus
            required
            name="code"
          />
          <Button type="submit" variant="primary" busy={mfa.busy} class="full">
            {enrol ? t('signin.mfa.enrolVerify') : t('signin.mfa.verify')}
          </Button>
        </form>
        <div class="auth-links">
          {enrol ? null : (
            <button type="button" class="btn btn-ghost btn-sm" onClick={() => (setRecovery(!recovery), setCode(''))}>
              {recovery ? t('signin.mfa.useCode') : t('signin.mfa.useRecovery')}
            </button>
          )}
          <button
            type="button"
            class="btn btn-ghost btn-sm"
            onClick={() => (setChallenge(undefined), setCode(''), mfa.clear())}
          >
            {t('signin.mfa.startAgain')}
          </button>
        </div>
      </AuthFrame>
    );
  }

  return (
    <AuthFrame title={t('signin.title')} lead={t('signin.lead')}>
      {notice ? <Alert kind="info">{notice}</Alert> : null}
      <ErrorAlert error={pw.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void pw.run();
        }}
      >
        <TextField
          label={t('signin.username')}
          value={username}
          onValue={setUsername}
          autoComplete="username"
          name="username"
          autoFocus
          required
          autoCapitalize="none"
          spellcheck={false}
        />
        <TextField
          label={t('signin.password')}
          type="password"
          value={password}
          onValue={setPassword}
          autoComplete="current-password"
          name="password"
          required
        />
        <Button type="submit" variant="primary" busy={pw.busy} class="full">
          {t('signin.submit')}
        </Button>
      </form>
      <div class="auth-links">
        <a href="#/forgot">{t('signin.forgotLink')}</a>
      </div>
    </AuthFrame>
  );
}

/** new password, confirmation and the live policy checklist */
export function PasswordChooser({
  rules,
  context,
  value,
  onValue,
  confirm,
  onConfirm,
  serverError,
}: {
  rules: PolicyRules;
  context: string[];
  value: string;
  onValue: (v: string) => void;
  confirm: string;
  onConfirm: (v: string) => void;
  serverError?: string | undefined;
}) {
  const checks = checkPassword(value, rules, context);
  const mismatch = confirm.length > 0 && confirm !== value;
  return (
    <>
      <Field
        label={t('signin.pw.new')}
        error={serverError}
        hint={
          <ul class="policy" aria-label={t('signin.pw.rules')}>
            {checks.map((c) => (
              <li class={c.met ? 'met' : 'unmet'} data-check={c.id}>
                <Icon name={c.met ? 'check' : 'x'} size={14} />
                <span>
                  {ruleLabel(c.id, rules, c.label)}
                  <span class="sr-only">{c.met ? t('signin.pw.met') : t('signin.pw.unmet')}</span>
                </span>
              </li>
            ))}
            <li class="unmet">
              <Icon name="info" size={14} />
              <span>{t('signin.pw.blocklist')}</span>
            </li>
          </ul>
        }
      >
        {(p) => (
          <input
            class="input"
            {...p}
            type="password"
            name="new-password"
            autoComplete="new-password"
            value={value}
            onInput={(e) => onValue(e.currentTarget.value)}
            required
          />
        )}
      </Field>
      <TextField
        label={t('signin.pw.repeat')}
        type="password"
        name="confirm-password"
        autoComplete="new-password"
        value={confirm}
        onValue={onConfirm}
        error={mismatch ? t('signin.pw.differ') : undefined}
        required
      />
    </>
  );
}

/** a rule of password.ts in the console's language */
function ruleLabel(id: string, rules: PolicyRules, fallback: string): string {
  if (id === 'length') return t('signin.pw.length', { min: rules.minLength, max: rules.maxLength });
  if (id === 'classes') return t('signin.pw.classes', { count: rules.minClasses });
  if (id === 'context') return t('signin.pw.context');
  return fallback;
}

export const passwordReady = (pw: string, confirm: string, rules: PolicyRules, context: string[]) =>
  pw === confirm && checkPassword(pw, rules, context).every((c) => c.met);

/** the reasons the server gave for refusing a password, if that is what it said */
function passwordErrorOf(e: unknown): string | undefined {
  if (e instanceof ApiError && e.code === 'PASSWORD_REJECTED') {
    const reasons = (e.details as { reasons?: string[] } | undefined)?.reasons;
    return reasons?.length ? t('signin.pw.refused', { reasons: reasons.join('; ') }) : e.message;
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
    const r = await auth.enrol(
      token!,
      password,
      factor === 'none' ? undefined : factor,
      factor === 'sms' ? phone.trim() : undefined,
    );
    setPhone('');
    forgetLinkToken('enrol');
    setPassword('');
    setConfirm('');
    setResult(r);
    setStage(r.totp ? 'totp' : r.recoveryCodes ? 'codes' : 'codes');
  });

  if (result && stage === 'totp' && result.totp) {
    return (
      <AuthFrame
        title={t('signin.enrol.totpTitle')}
        wide
        lead={t('signin.enrol.totpLead', { username: result.username })}
      >
        <TotpSetup totp={result.totp} />
        <Button variant="primary" class="full" onClick={() => setStage('codes')}>
          {t('signin.enrol.added')}
        </Button>
      </AuthFrame>
    );
  }
  if (result) {
    return (
      <AuthFrame
        title={t('signin.enrol.doneTitle')}
        wide
        lead={t('signin.enrol.welcome', { username: result.username })}
      >
        {result.recoveryCodes?.length ? <RecoveryCodes codes={result.recoveryCodes} /> : null}
        <Alert kind="info">{result.totp ? t('signin.enrol.signInTotp') : t('signin.enrol.signIn')}</Alert>
        <Button variant="primary" class="full" onClick={() => navigate('/login', undefined, true)}>
          {t('signin.enrol.continue')}
        </Button>
      </AuthFrame>
    );
  }
  if (!token) {
    return (
      <AuthFrame title={t('signin.enrol.openTitle')}>
        <Alert kind="warn" title={t('signin.enrol.noLink')}>
          {t('signin.enrol.noLinkText')}
        </Alert>
        <a class="btn btn-secondary full" href="#/login">
          {t('signin.goToSignIn')}
        </a>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title={t('signin.enrol.title')} lead={t('signin.enrol.lead')}>
      <ErrorAlert error={passwordErrorOf(act.error) ? undefined : act.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (passwordReady(password, confirm, rules, [])) void act.run();
        }}
      >
        <PasswordChooser
          rules={rules}
          context={[]}
          value={password}
          onValue={setPassword}
          confirm={confirm}
          onConfirm={setConfirm}
          serverError={passwordErrorOf(act.error)}
        />
        <fieldset class="choices">
          <legend>{t('signin.enrol.factor')}</legend>
          {(['totp', 'email', 'sms', 'none'] as const).map((v) => (
            <label class="check">
              <input type="radio" name="factor" value={v} checked={factor === v} onChange={() => setFactor(v)} />
              <span>{t(`signin.enrol.factors.${v}`)}</span>
            </label>
          ))}
        </fieldset>
        {factor === 'sms' ? (
          <TextField
            label={t('signin.enrol.phone')}
            type="text"
            value={phone}
            onValue={setPhone}
            required
            autoComplete="tel"
            hint={t('signin.enrol.phoneHint')}
          />
        ) : null}
        <Button
          type="submit"
          variant="primary"
          busy={act.busy}
          disabled={!passwordReady(password, confirm, rules, []) || (factor === 'sms' && !phone.trim())}
          class="full"
        >
          {t('signin.enrol.activate')}
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
        <li>{t('signin.totp.step1')}</li>
        <li>{t('signin.totp.step2')}</li>
      </ol>
      <div class="qr">
        <img src={src} alt={t('signin.totp.qrAlt')} width={184} height={184} />
        <div>
          <div class="muted small">{t('signin.totp.key')}</div>
          <div class="secret" data-testid="totp-secret">
            {totp.secret.replace(/(.{4})/g, '$1 ').trim()}
          </div>
          <p class="muted small">{t('signin.totp.kind')}</p>
        </div>
      </div>
    </div>
  );
}

export function RecoveryCodes({ codes }: { codes: string[] }) {
  return (
    <div class="stack">
      <Alert kind="warn" title={t('signin.codes.title')}>
        {t('signin.codes.text')}
      </Alert>
      <ul class="codes" aria-label={t('signin.codes.label')} data-testid="recovery-codes">
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
    <AuthFrame title={t('signin.forgot.title')} lead={t('signin.forgot.lead')}>
      {sent === 'none' ? (
        <Alert kind="warn" title={t('signin.forgot.noMailTitle')}>
          {t('signin.forgot.noMail')}
        </Alert>
      ) : sent ? (
        <Alert kind="ok" title={t('signin.forgot.sentTitle')}>
          {t('signin.forgot.sent')}
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
            <TextField
              label={t('signin.username')}
              value={username}
              onValue={setUsername}
              autoComplete="username"
              required
              autoFocus
            />
            <Button type="submit" variant="primary" busy={act.busy} class="full">
              {t('signin.forgot.send')}
            </Button>
          </form>
        </>
      )}
      <div class="auth-links">
        <a href="#/login">{t('signin.back')}</a>
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
  const needsCode =
    act.error instanceof ApiError && (act.error.code === 'CODE_REQUIRED' || act.error.code === 'INVALID_CODE');
  if (!token && !done) {
    return (
      <AuthFrame title={t('signin.reset.openTitle')}>
        <Alert kind="warn" title={t('signin.reset.noLink')}>
          {t('signin.reset.noLinkText')}
        </Alert>
        <a class="btn btn-secondary full" href="#/forgot">
          {t('signin.reset.askNew')}
        </a>
      </AuthFrame>
    );
  }
  if (done && recovered?.totp) {
    return (
      <AuthFrame title={t('signin.reset.newTotpTitle')} wide lead={t('signin.reset.newTotpLead')}>
        <TotpSetup totp={recovered.totp} />
        {recovered.recoveryCodes?.length ? <RecoveryCodes codes={recovered.recoveryCodes} /> : null}
        <a class="btn btn-primary full" href="#/login">
          {t('signin.submit')}
        </a>
      </AuthFrame>
    );
  }
  if (done) {
    return (
      <AuthFrame title={t('signin.reset.doneTitle')}>
        <Alert kind="ok">{t('signin.reset.done')}</Alert>
        <a class="btn btn-primary full" href="#/login">
          {t('signin.submit')}
        </a>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title={t('signin.reset.title')}>
      <ErrorAlert error={passwordErrorOf(act.error) ? undefined : act.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (passwordReady(password, confirm, rules, [])) void act.run();
        }}
      >
        <PasswordChooser
          rules={rules}
          context={[]}
          value={password}
          onValue={setPassword}
          confirm={confirm}
          onConfirm={setConfirm}
          serverError={passwordErrorOf(act.error)}
        />
        <TextField
          label={t('signin.reset.code')}
          value={code}
          onValue={setCode}
          autoComplete="one-time-code"
          hint={needsCode ? t('signin.reset.codeNeeded') : t('signin.reset.codeHint')}
        />
        <Button
          type="submit"
          variant="primary"
          busy={act.busy}
          disabled={!passwordReady(password, confirm, rules, [])}
          class="full"
        >
          {t('signin.reset.submit')}
        </Button>
      </form>
    </AuthFrame>
  );
}
