import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { put, url } from '../api.js';
import { client, data, type Reply } from '../client.js';
import { auth, type TotpProvisioning } from '../endpoints.js';
import { DEFAULT_RULES } from '../password.js';
import type { Route } from '../router.js';
import type { Me } from '../session.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  ErrorAlert,
  Facts,
  Loading,
  PageHeader,
  SelectField,
  TextField,
  Time,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { LANGUAGES, browserLanguage, setLanguage, t, type Language } from '../i18n/index.js';
import { roleLabel } from '../labels.js';
import { PasswordChooser, RecoveryCodes, TotpSetup, passwordReady } from './signin.js';

/** a live session, as the appliance describes it */
export type SessionRow = Reply<'/api/v1/auth/sessions', 'get'>['sessions'][number];

export function AccountPage({ me }: { me: Me; route: Route }) {
  return (
    <>
      <PageHeader title={t('account.title')} description={t('account.description')} />
      <Card title={t('account.profile')}>
        <Facts
          items={[
            [t('account.username'), me.username],
            [t('account.userId'), <code>{me.id}</code>],
            [t('account.role'), roleLabel(me.role)],
            [
              t('account.secondFactor'),
              me.mfaMethod ? (
                <Badge kind="ok">{mfaLabel(me.mfaMethod)}</Badge>
              ) : (
                <Badge kind="warn">{t('account.mfa.none')}</Badge>
              ),
            ],
            [t('account.lastSignIn'), <Time t={me.lastLoginAt} />],
          ]}
        />
      </Card>
      <LanguageCard me={me} />
      <div class="grid-2">
        <SecondFactorCard me={me} />
        <PasswordCard me={me} />
      </div>
      <SessionsCard />
      <Card title={t('account.data.title')}>
        <p class="muted">{t('account.data.text')}</p>
        <a
          class="btn btn-secondary"
          data-testid="export-mine"
          href={url('/users/me/export')}
          download={`coffre-person-${me.id}.zip`}
        >
          {t('account.data.download')}
        </a>
      </Card>
      <Card title={t('account.deposits.title')}>
        <p class="muted">{t('account.deposits.text')}</p>
        <a
          class="btn btn-secondary"
          data-testid="export-deposits"
          href={url(`/users/${encodeURIComponent(me.id)}/archive`)}
          download={`coffre-export-user-${me.id}.tar`}
        >
          {t('account.deposits.download')}
        </a>
      </Card>
    </>
  );
}

export const mfaLabel = (m: string | null) =>
  m === 'totp' || m === 'email' || m === 'sms' ? t(`account.mfa.${m}`) : t('account.mfa.none');

/** the user's language, stored on the appliance: console, error messages and e-mails follow it */
function LanguageCard({ me }: { me: Me }) {
  const [value, setValue] = useState<string>(me.language ?? '');
  const save = useAction(async (v: string) => {
    const language = v === '' ? null : (v as Language);
    await put('/auth/me/language', { language });
    await auth.refresh();
    setLanguage(language ?? browserLanguage());
    notify(t('account.language.saved'));
  });
  return (
    <Card title={t('account.language.title')}>
      <ErrorAlert error={save.error} />
      <SelectField
        label={t('account.language.label')}
        hint={t('account.language.hint')}
        value={value}
        onValue={(v) => (setValue(v), void save.run(v))}
        disabled={save.busy}
        options={[
          { value: '', label: t('account.language.browser') },
          ...LANGUAGES.map((l) => ({ value: l, label: t(`account.languages.${l}`) })),
        ]}
      />
    </Card>
  );
}

function SecondFactorCard({ me }: { me: Me }) {
  const [prov, setProv] = useState<TotpProvisioning | undefined>();
  const [code, setCode] = useState('');
  const [current, setCurrent] = useState('');
  const [codes, setCodes] = useState<string[] | undefined>();
  const start = useAction(async () => setProv(await data(client.POST('/api/v1/auth/mfa/totp'))));
  const confirm = useAction(async () => {
    // the appliance asks for the password too: a stolen session alone cannot swap the second factor
    const r = await data(
      client.POST('/api/v1/auth/mfa/totp/confirm', { body: { code: code.trim(), currentPassword: current } }),
    );
    setCode('');
    setCurrent('');
    setProv(undefined);
    setCodes(r.recoveryCodes);
    await auth.refresh();
    notify(t('account.totp.done'));
  });
  if (codes) {
    return (
      <Card title={t('account.secondFactor')}>
        <Alert kind="info">{t('account.totp.othersEnded')}</Alert>
        <RecoveryCodes codes={codes} />
        <Button variant="primary" onClick={() => setCodes(undefined)}>
          {t('account.totp.saved')}
        </Button>
      </Card>
    );
  }
  if (prov) {
    return (
      <Card title={t('account.totp.setupTitle')}>
        <TotpSetup totp={prov} />
        <ErrorAlert error={confirm.error} />
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void confirm.run();
          }}
        >
          <TextField
            label={t('account.totp.code')}
            value={code}
            onValue={setCode}
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            required
            class="input code-input"
          />
          <TextField
            label={t('account.totp.currentPassword')}
            type="password"
            value={current}
            onValue={setCurrent}
            autoComplete="current-password"
            required
          />
          <Button type="submit" variant="primary" busy={confirm.busy}>
            {t('common.confirm')}
          </Button>
          <Button onClick={() => (setProv(undefined), setCurrent(''))}>{t('common.cancel')}</Button>
        </form>
      </Card>
    );
  }
  return (
    <Card title={t('account.secondFactor')}>
      <p>{me.mfaMethod === 'totp' ? t('account.totp.inUse') : t('account.totp.advice')}</p>
      <ErrorAlert error={start.error} />
      <Button
        variant={me.mfaMethod === 'totp' ? 'secondary' : 'primary'}
        busy={start.busy}
        onClick={() => void start.run()}
      >
        {me.mfaMethod === 'totp' ? t('account.totp.replace') : t('account.totp.setup')}
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
    const r = await data(
      client.POST('/api/v1/auth/password', {
        body: { currentPassword: current, newPassword: pw, endOtherSessions: true },
      }),
    );
    setCurrent('');
    setPw('');
    setConfirm('');
    setEnded(r.sessionsEnded);
  });
  const ready = current.length > 0 && passwordReady(pw, confirm, DEFAULT_RULES, [me.username]);
  return (
    <Card title={t('account.password.title')}>
      {ended !== undefined ? (
        <Alert kind="ok">
          {ended ? t('account.password.changedEnded', { count: ended }) : t('account.password.changed')}
        </Alert>
      ) : null}
      <ErrorAlert error={act.error} />
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (ready) void act.run();
        }}
      >
        <TextField
          label={t('account.password.current')}
          type="password"
          value={current}
          onValue={setCurrent}
          autoComplete="current-password"
          required
        />
        <PasswordChooser
          rules={DEFAULT_RULES}
          context={[me.username]}
          value={pw}
          onValue={setPw}
          confirm={confirm}
          onConfirm={setConfirm}
        />
        <div>
          <Button type="submit" variant="primary" busy={act.busy} disabled={!ready}>
            {t('account.password.change')}
          </Button>
        </div>
      </form>
    </Card>
  );
}

function SessionsCard() {
  const list = useAsync((signal) => data(client.GET('/api/v1/auth/sessions', { signal })), []);
  const endOthers = useAction(async () => {
    const r = await data(client.POST('/api/v1/auth/sessions/end-others'));
    notify(t('account.sessions.ended', { count: r.ended }));
    list.reload();
  });
  const end = useAction(async (id: string) => {
    await data(client.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id } } }));
    list.reload();
  });
  const others = list.data?.sessions.filter((s) => !s.current).length ?? 0;
  return (
    <Card
      title={t('account.sessions.title')}
      class="flush"
      actions={
        others > 0 ? (
          <Button small variant="danger" busy={endOthers.busy} onClick={() => void endOthers.run()}>
            {t('account.sessions.endOthers')}
          </Button>
        ) : null
      }
    >
      <ErrorAlert error={list.error ?? endOthers.error ?? end.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data ? (
        <SessionsTable
          sessions={list.data.sessions}
          action={(s) => (
            <Button small variant="ghost" onClick={() => void end.run(s.id)}>
              {t('account.sessions.signOut')}
            </Button>
          )}
        />
      ) : null}
    </Card>
  );
}

/** live sessions by device and address; `action`: a button for each session but the caller's own */
export function SessionsTable({
  sessions,
  action,
  label,
}: {
  sessions: SessionRow[];
  action: (s: SessionRow) => ComponentChildren;
  label?: string;
}) {
  return (
    <div class="table-wrap">
      <table class="table" aria-label={label}>
        <thead>
          <tr>
            <th>{t('account.sessions.browser')}</th>
            <th>{t('account.sessions.address')}</th>
            <th>{t('account.sessions.signedIn')}</th>
            <th>{t('account.sessions.lastActive')}</th>
            <th>{t('account.sessions.expires')}</th>
            <th class="actions">
              <span class="sr-only">{t('common.actions')}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr data-session={s.id}>
              <td title={s.userAgent ?? undefined}>
                {browserOf(s.userAgent)}{' '}
                {s.current ? <Badge kind="accent">{t('account.sessions.current')}</Badge> : null}
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
              <td class="actions">{s.current ? null : action(s)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function browserOf(ua: string | null): string {
  if (!ua) return t('account.sessions.unknownClient');
  if (/coffre/i.test(ua)) return t('account.sessions.cli');
  const b = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : t('account.sessions.genericBrowser');
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? t('account.sessions.browserOn', { browser: b, os }) : b;
}
