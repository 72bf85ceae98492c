import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { API, get, patch, post, put } from '../api.js';
import { can, type Me } from '../session.js';
import { navigate } from '../router.js';
import {
  Alert,
  Badge,
  Button,
  Card,
  EmptyState,
  ErrorAlert,
  Facts,
  Field,
  FormDialog,
  Loading,
  PageHeader,
  SelectField,
  TextField,
  Time,
  duration,
  notify,
  useAction,
  useAsync,
} from '../ui.js';
import { language, t, useLanguage } from '../i18n/index.js';

/**
 * The incident register (src/incidents, docs/incidents.md): admins manage it, auditors read it;
 * any signed-in user reports a suspected incident and sees the banner of incidents that affect
 * them. Text: i18n/locales/<lang>/incidents.json.
 */
const STATUSES = ['draft', 'investigating', 'identified', 'monitoring', 'resolved'] as const;
const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
type Status = (typeof STATUSES)[number];
type Severity = (typeof SEVERITIES)[number];
type Localised = { en?: string; fr?: string };

interface BreachClock {
  detectedAt: string;
  deadline: string;
  remainingMs: number;
  notifiedAt: string | null;
  state: 'running' | 'overdue' | 'notified' | 'notified-late';
}
interface Summary {
  id: string;
  title: string;
  severity: Severity;
  status: Status;
  createdAt: string;
  detectedAt: string;
  updatedAt: string;
  resolvedAt: string | null;
  personalData: boolean;
  publicTitle: string | null;
  alertId: string | null;
  authorityNotifiedAt: string | null;
  breachClock: BreachClock | null;
}
interface Action {
  id: string;
  kind: 'corrective' | 'preventive';
  description: string;
  owner: string | null;
  dueAt: string | null;
  state: 'open' | 'closed';
  createdAt: string;
  closedAt: string | null;
  outcome: string | null;
}
interface Update {
  id: number;
  at: string;
  actor: string;
  status: Status;
  message: string;
  public: boolean;
  publicMessage: Localised | null;
}
interface Incident extends Summary {
  rootCause: string | null;
  affected: { components: string[]; workspaces: string[]; users: string[] };
  actions: Action[];
  updates: Update[];
}
interface Banner {
  incidentId: string;
  updateId: number;
  title: string;
  severity: Severity;
  status: Status;
  at: string;
  message: Localised;
}

const SEV_BADGE: Record<Severity, 'neutral' | 'warn' | 'error' | 'accent'> = {
  low: 'neutral',
  medium: 'accent',
  high: 'warn',
  critical: 'error',
};
const statusText = (s: Status) => t(`incidents.status.${s}`);
const severityText = (s: Severity) => t(`incidents.severity.${s}`);
const inLanguage = (m: Localised | null | undefined) => {
  const l = language();
  return m?.[l] ?? m?.[l === 'fr' ? 'en' : 'fr'] ?? '';
};

function TextArea({
  label,
  hint,
  value,
  onValue,
  rows = 3,
  testid,
}: {
  label: string;
  hint?: ComponentChildren;
  value: string;
  onValue: (v: string) => void;
  rows?: number;
  testid?: string;
}) {
  return (
    <Field label={label} hint={hint}>
      {(p) => (
        <textarea
          class="input"
          rows={rows}
          {...p}
          data-testid={testid}
          value={value}
          onInput={(e) => onValue((e.currentTarget as HTMLTextAreaElement).value)}
        />
      )}
    </Field>
  );
}

/** the banner above every console page: incidents that affect the signed-in user, until acknowledged */
export function IncidentBanner() {
  useLanguage();
  const b = useAsync((signal) => get<{ banners: Banner[] }>('/incidents/banner', { signal }), []);
  useEffect(() => {
    const timer = setInterval(() => b.reload(), 60_000);
    return () => clearInterval(timer);
  }, []);
  const ack = useAction(async (x: Banner) => {
    await post(`/incidents/${encodeURIComponent(x.incidentId)}/ack`, { updateId: x.updateId });
    b.reload();
  });
  const list = b.data?.banners ?? [];
  if (!list.length) return null;
  return (
    <div class="incident-banners" data-testid="incident-banner">
      {list.map((x) => (
        <Alert kind={x.status === 'resolved' ? 'ok' : 'warn'} title={`${x.title} — ${statusText(x.status)}`}>
          <p>{inLanguage(x.message)}</p>
          <p class="muted small">
            <Time t={x.at} /> · <a href={`/status?lang=${language()}`}>{t('incidents.banner.statusPage')}</a>
          </p>
          <Button small data-testid="incident-ack" busy={ack.busy} onClick={() => void ack.run(x)}>
            {t('incidents.banner.ack')}
          </Button>
        </Alert>
      ))}
      <ErrorAlert error={ack.error} />
    </div>
  );
}

function ClockBadge({ c }: { c: BreachClock }) {
  const kind = c.state === 'notified' ? 'ok' : c.state === 'running' ? 'warn' : 'error';
  return (
    <span data-testid="breach-clock">
      <Badge kind={kind}>{t(`incidents.clock.${c.state}`)}</Badge>{' '}
      {c.state === 'running'
        ? t('incidents.clock.left', { time: duration(c.remainingMs) })
        : c.state === 'overdue'
          ? t('incidents.clock.over', { time: duration(-c.remainingMs) })
          : null}
    </span>
  );
}

export function IncidentsPage({ me }: { me: Me }) {
  useLanguage();
  const [filter, setFilter] = useState('open');
  const list = useAsync(
    (signal) => get<{ incidents: Summary[] }>('/incidents', { signal, query: { status: filter || undefined } }),
    [filter],
  );
  const [creating, setCreating] = useState(false);
  const [title, setTitle] = useState('');
  const [severity, setSeverity] = useState<Severity>('high');
  const [personal, setPersonal] = useState(false);
  const create = useAction(async () => {
    const i = await post<Incident>('/incidents', { title: title.trim(), severity, personalData: personal });
    setCreating(false);
    setTitle('');
    navigate(`/incidents/${i.id}`);
  });
  const manage = can(me, 'incidents:manage');
  return (
    <>
      <PageHeader
        title={t('incidents.title')}
        description={t('incidents.description')}
        actions={
          manage ? (
            <Button variant="primary" data-testid="incident-new" onClick={() => setCreating(true)}>
              {t('incidents.new')}
            </Button>
          ) : null
        }
      />
      <div class="toolbar">
        <SelectField
          label={t('incidents.filter')}
          value={filter}
          onValue={setFilter}
          options={[
            { value: 'open', label: t('incidents.filterOpen') },
            { value: '', label: t('incidents.filterAll') },
            ...STATUSES.map((s) => ({ value: s, label: statusText(s) })),
          ]}
        />
      </div>
      <ErrorAlert error={list.error} />
      {!list.data ? (
        list.error ? null : (
          <Loading />
        )
      ) : list.data.incidents.length === 0 ? (
        <EmptyState title={t('incidents.empty')} icon="inbox" />
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label={t('incidents.title')} data-testid="incident-list">
            <thead>
              <tr>
                <th>{t('incidents.field.title')}</th>
                <th>{t('incidents.field.severity')}</th>
                <th>{t('incidents.field.status')}</th>
                <th>{t('incidents.field.detectedAt')}</th>
                <th>{t('incidents.field.breachClock')}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.incidents.map((i) => (
                <tr key={i.id}>
                  <td>
                    <a href={`#/incidents/${encodeURIComponent(i.id)}`}>{i.title}</a>
                    {i.alertId ? <span class="muted small"> · {t('incidents.fromAlert')}</span> : null}
                  </td>
                  <td>
                    <Badge kind={SEV_BADGE[i.severity]}>{severityText(i.severity)}</Badge>
                  </td>
                  <td>{statusText(i.status)}</td>
                  <td>
                    <Time t={i.detectedAt} />
                  </td>
                  <td>{i.breachClock ? <ClockBadge c={i.breachClock} /> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <FormDialog
        open={creating}
        title={t('incidents.new')}
        id="incident-new-form"
        class="stack"
        submitLabel={t('incidents.create')}
        action={create}
        ready={title.trim().length > 0}
        onClose={() => setCreating(false)}
      >
        <TextField label={t('incidents.field.title')} value={title} onValue={setTitle} required maxLength={200} />
        <SelectField
          label={t('incidents.field.severity')}
          value={severity}
          onValue={(v) => setSeverity(v as Severity)}
          options={SEVERITIES.map((s) => ({ value: s, label: severityText(s) }))}
        />
        <label class="check">
          <input type="checkbox" checked={personal} onChange={(e) => setPersonal(e.currentTarget.checked)} />{' '}
          {t('incidents.field.personalData')}
        </label>
      </FormDialog>
    </>
  );
}

export function IncidentPage({ me, id }: { me: Me; id: string }) {
  useLanguage();
  const i = useAsync((signal) => get<Incident>(`/incidents/${encodeURIComponent(id)}`, { signal }), [id]);
  const manage = can(me, 'incidents:manage');
  if (i.error)
    return (
      <>
        <PageHeader title={t('incidents.title')} back={{ href: '#/incidents', label: t('incidents.back') }} />
        <ErrorAlert error={i.error} />
      </>
    );
  if (!i.data) return <Loading />;
  const x = i.data;
  const reload = () => i.reload();
  return (
    <>
      <PageHeader
        title={x.title}
        back={{ href: '#/incidents', label: t('incidents.back') }}
        actions={
          <>
            <a
              class="btn btn-secondary"
              href={`${API}/incidents/${encodeURIComponent(x.id)}/report?format=json`}
              download
            >
              {t('incidents.report.json')}
            </a>
            <a
              class="btn btn-secondary"
              href={`${API}/incidents/${encodeURIComponent(x.id)}/report?format=csv`}
              download
            >
              {t('incidents.report.csv')}
            </a>
          </>
        }
      />
      {x.breachClock ? (
        <Alert
          kind={x.breachClock.state === 'notified' ? 'ok' : x.breachClock.state === 'running' ? 'warn' : 'error'}
          title={t('incidents.clock.title')}
        >
          <p>
            <ClockBadge c={x.breachClock} />
          </p>
          <p class="small">
            {t('incidents.clock.deadline')} <Time t={x.breachClock.deadline} />
            {x.breachClock.notifiedAt ? (
              <>
                {' '}
                · {t('incidents.clock.notifiedAt')} <Time t={x.breachClock.notifiedAt} />
              </>
            ) : null}
          </p>
        </Alert>
      ) : null}
      <Card title={t('incidents.summary')}>
        <Facts
          items={[
            [t('incidents.field.severity'), <Badge kind={SEV_BADGE[x.severity]}>{severityText(x.severity)}</Badge>],
            [t('incidents.field.status'), <span data-testid="incident-status">{statusText(x.status)}</span>],
            [t('incidents.field.detectedAt'), <Time t={x.detectedAt} />],
            [t('incidents.field.resolvedAt'), x.resolvedAt ? <Time t={x.resolvedAt} /> : null],
            [t('incidents.field.personalData'), x.personalData ? t('incidents.yes') : t('incidents.no')],
            [t('incidents.field.publicTitle'), x.publicTitle],
            [t('incidents.field.components'), x.affected.components.join(', ') || null],
            [
              t('incidents.field.affected'),
              t('incidents.affectedCount', {
                workspaces: x.affected.workspaces.length,
                users: x.affected.users.length,
              }),
            ],
            [t('incidents.field.rootCause'), x.rootCause],
          ]}
        />
        {manage ? <EditIncident x={x} onDone={reload} /> : null}
      </Card>
      <Card title={t('incidents.timeline')}>
        <ol class="timeline" data-testid="incident-timeline">
          {[...x.updates].reverse().map((u) => (
            <li key={u.id}>
              <p>
                <strong>{statusText(u.status)}</strong> · <Time t={u.at} />{' '}
                {u.public ? <Badge kind="accent">{t('incidents.public')}</Badge> : null}
              </p>
              <p class="pre-wrap">{u.message}</p>
              {u.publicMessage ? (
                <p class="muted pre-wrap">
                  {t('incidents.publicSays')} {inLanguage(u.publicMessage)}
                </p>
              ) : null}
            </li>
          ))}
        </ol>
        {manage ? <PostUpdate x={x} onDone={reload} /> : null}
      </Card>
      <Card title={t('incidents.actions.title')}>
        {x.actions.length === 0 ? (
          <p class="muted">{t('incidents.actions.none')}</p>
        ) : (
          <ul class="plain-list" data-testid="incident-actions">
            {x.actions.map((a) => (
              <ActionRow key={a.id} incident={x.id} a={a} manage={manage} onDone={reload} />
            ))}
          </ul>
        )}
        {manage && x.status !== 'resolved' ? <AddAction incident={x.id} onDone={reload} /> : null}
      </Card>
    </>
  );
}

function EditIncident({ x, onDone }: { x: Incident; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [publicTitle, setPublicTitle] = useState(x.publicTitle ?? '');
  const [rootCause, setRootCause] = useState(x.rootCause ?? '');
  const [components, setComponents] = useState(x.affected.components.join(', '));
  const [notified, setNotified] = useState(x.authorityNotifiedAt ? x.authorityNotifiedAt.slice(0, 16) : '');
  const save = useAction(async () => {
    await patch(`/incidents/${encodeURIComponent(x.id)}`, {
      publicTitle: publicTitle.trim() || null,
      rootCause: rootCause.trim() || null,
      ...(x.personalData ? { authorityNotifiedAt: notified ? new Date(notified).toISOString() : null } : {}),
    });
    await put(`/incidents/${encodeURIComponent(x.id)}/affected`, {
      components: components
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean),
    });
    setOpen(false);
    notify(t('incidents.saved'));
    onDone();
  });
  return (
    <>
      <Button small data-testid="incident-edit" onClick={() => setOpen(true)}>
        {t('incidents.edit')}
      </Button>
      <FormDialog
        open={open}
        title={t('incidents.edit')}
        id="incident-edit-form"
        class="stack"
        submitLabel={t('incidents.save')}
        action={save}
        ready
        onClose={() => setOpen(false)}
      >
        <TextField
          label={t('incidents.field.publicTitle')}
          hint={t('incidents.publicTitleHint')}
          value={publicTitle}
          onValue={setPublicTitle}
          maxLength={200}
        />
        <TextField
          label={t('incidents.field.components')}
          hint={t('incidents.componentsHint')}
          value={components}
          onValue={setComponents}
        />
        <TextArea label={t('incidents.field.rootCause')} value={rootCause} onValue={setRootCause} />
        {x.personalData ? (
          <TextField
            type="datetime-local"
            label={t('incidents.clock.notifiedAt')}
            value={notified}
            onValue={setNotified}
          />
        ) : null}
      </FormDialog>
    </>
  );
}

function PostUpdate({ x, onDone }: { x: Incident; onDone: () => void }) {
  const [status, setStatus] = useState<Status>(x.status === 'draft' ? 'investigating' : x.status);
  const [message, setMessage] = useState('');
  const [pubEn, setPubEn] = useState('');
  const [pubFr, setPubFr] = useState('');
  const send = useAction(async () => {
    const pub = { ...(pubEn.trim() ? { en: pubEn.trim() } : {}), ...(pubFr.trim() ? { fr: pubFr.trim() } : {}) };
    await post(`/incidents/${encodeURIComponent(x.id)}/updates`, {
      status,
      message: message.trim(),
      ...(pub.en || pub.fr ? { publicMessage: pub } : {}),
    });
    setMessage('');
    setPubEn('');
    setPubFr('');
    notify(t('incidents.update.posted'));
    onDone();
  });
  const canPublish = x.publicTitle !== null;
  return (
    <form
      class="stack"
      data-testid="incident-update-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (message.trim()) void send.run();
      }}
    >
      <h3>{t('incidents.update.title')}</h3>
      <SelectField
        label={t('incidents.field.status')}
        value={status}
        onValue={(v) => setStatus(v as Status)}
        options={STATUSES.filter((s) => s !== 'draft' || x.status === 'draft').map((s) => ({
          value: s,
          label: statusText(s),
        }))}
      />
      <TextArea
        label={t('incidents.update.internal')}
        value={message}
        onValue={setMessage}
        testid="incident-update-message"
      />
      {canPublish ? (
        <>
          <TextArea
            label={t('incidents.update.publicEn')}
            hint={t('incidents.update.publicHint')}
            value={pubEn}
            onValue={setPubEn}
            rows={2}
          />
          <TextArea label={t('incidents.update.publicFr')} value={pubFr} onValue={setPubFr} rows={2} />
        </>
      ) : (
        <p class="muted small">{t('incidents.update.noPublicTitle')}</p>
      )}
      <ErrorAlert error={send.error} />
      <div>
        <Button variant="primary" type="submit" busy={send.busy} disabled={!message.trim()}>
          {t('incidents.update.post')}
        </Button>
      </div>
    </form>
  );
}

function ActionRow({
  incident,
  a,
  manage,
  onDone,
}: {
  incident: string;
  a: Action;
  manage: boolean;
  onDone: () => void;
}) {
  const [outcome, setOutcome] = useState('');
  const [closing, setClosing] = useState(false);
  const close = useAction(async () => {
    await post(`/incidents/${encodeURIComponent(incident)}/actions/${encodeURIComponent(a.id)}/close`, {
      ...(outcome.trim() ? { outcome: outcome.trim() } : {}),
    });
    setClosing(false);
    onDone();
  });
  return (
    <li>
      <Badge kind={a.state === 'open' ? 'warn' : 'ok'}>{t(`incidents.actions.${a.state}`)}</Badge>{' '}
      <strong>{t(`incidents.actions.${a.kind}`)}</strong> — {a.description}
      {a.dueAt ? (
        <span class="muted small">
          {' '}
          · {t('incidents.actions.due')} <Time t={a.dueAt} />
        </span>
      ) : null}
      {a.outcome ? <p class="muted small">{a.outcome}</p> : null}
      {manage && a.state === 'open' ? (
        <>
          {' '}
          <Button small data-testid="incident-action-close" onClick={() => setClosing(true)}>
            {t('incidents.actions.close')}
          </Button>
          <FormDialog
            open={closing}
            title={t('incidents.actions.close')}
            id={`close-${a.id}`}
            class="stack"
            submitLabel={t('incidents.actions.close')}
            action={close}
            ready
            onClose={() => setClosing(false)}
          >
            <TextArea label={t('incidents.actions.outcome')} value={outcome} onValue={setOutcome} />
          </FormDialog>
        </>
      ) : null}
    </li>
  );
}

function AddAction({ incident, onDone }: { incident: string; onDone: () => void }) {
  const [kind, setKind] = useState<'corrective' | 'preventive'>('corrective');
  const [description, setDescription] = useState('');
  const [due, setDue] = useState('');
  const add = useAction(async () => {
    await post(`/incidents/${encodeURIComponent(incident)}/actions`, {
      kind,
      description: description.trim(),
      ...(due ? { dueAt: new Date(due).toISOString() } : {}),
    });
    setDescription('');
    setDue('');
    onDone();
  });
  return (
    <form
      class="stack"
      data-testid="incident-action-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (description.trim()) void add.run();
      }}
    >
      <h3>{t('incidents.actions.add')}</h3>
      <SelectField
        label={t('incidents.actions.kind')}
        value={kind}
        onValue={(v) => setKind(v as 'corrective' | 'preventive')}
        options={[
          { value: 'corrective', label: t('incidents.actions.corrective') },
          { value: 'preventive', label: t('incidents.actions.preventive') },
        ]}
      />
      <TextField
        label={t('incidents.actions.description')}
        value={description}
        onValue={setDescription}
        maxLength={2000}
      />
      <TextField type="date" label={t('incidents.actions.due')} value={due} onValue={setDue} />
      <ErrorAlert error={add.error} />
      <div>
        <Button type="submit" busy={add.busy} disabled={!description.trim()}>
          {t('incidents.actions.add')}
        </Button>
      </div>
    </form>
  );
}

/** any signed-in user: report a suspected incident (a draft for the admins, and an alert) */
export function ReportIncidentPage() {
  useLanguage();
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [sent, setSent] = useState(false);
  const send = useAction(async () => {
    await post('/incidents/report', { title: title.trim(), description: description.trim() });
    setTitle('');
    setDescription('');
    setSent(true);
  });
  return (
    <>
      <PageHeader title={t('incidents.reportPage.title')} description={t('incidents.reportPage.description')} />
      {sent ? (
        <Alert kind="ok" title={t('incidents.reportPage.sent')}>
          <p>{t('incidents.reportPage.sentText')}</p>
        </Alert>
      ) : null}
      <form
        class="stack narrow"
        data-testid="incident-report-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (title.trim() && description.trim()) void send.run();
        }}
      >
        <TextField
          label={t('incidents.reportPage.what')}
          value={title}
          onValue={(v) => (setTitle(v), setSent(false))}
          required
          maxLength={200}
        />
        <TextArea
          label={t('incidents.reportPage.details')}
          hint={t('incidents.reportPage.detailsHint')}
          value={description}
          onValue={setDescription}
          rows={5}
        />
        <ErrorAlert error={send.error} />
        <div>
          <Button variant="primary" type="submit" busy={send.busy} disabled={!title.trim() || !description.trim()}>
            {t('incidents.reportPage.send')}
          </Button>
        </div>
      </form>
    </>
  );
}
