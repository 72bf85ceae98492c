import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { setSessionLostHandler } from './api.js';
import { auth } from './endpoints.js';
import { activity, can, getSession, IDLE_MS, idleFor, setAnonymous, useSession, type Me } from './session.js';
import { current, match, navigate, useRoute, type Route } from './router.js';
import { ConfirmHost, Icon, Loading, Notifications, type IconName } from './ui.js';
import { EnrolPage, ForgotPage, LoginPage, ResetPage } from './screens/signin.js';
import { AccountPage } from './screens/account.js';
import { WorkspacesPage, WorkspacePage, DocumentPage, MembersPage } from './screens/documents.js';
import { UsersPage, ReviewsPage, ReviewPage, KeysPage, SettingsPage } from './screens/admin.js';
import { BackupPage } from './screens/backup.js';
import { UserPage } from './screens/user.js';
import { AuditPage } from './screens/audit.js';
import { RecordsPage } from './screens/records.js';
import { AlertsPage, JobsPage, OperationsPage } from './screens/operations.js';
import { IncidentBanner, IncidentPage, IncidentsPage, ReportIncidentPage } from './screens/incidents.js';
import { t, useLanguage } from './i18n/index.js';
import { roleLabel } from './labels.js';

/** the console's sections, shown to whoever holds the permission */
interface NavItem {
  path: string;
  /** a key of locales/<lang>/nav.json */
  label: NavKey;
  icon: IconName;
  permission: string;
  section: SectionKey;
  /** shown only when this also holds */
  also?: (me: Me) => boolean;
}
type NavKey =
  | 'workspaces'
  | 'reviews'
  | 'users'
  | 'keys'
  | 'settings'
  | 'dashboard'
  | 'alerts'
  | 'jobs'
  | 'backups'
  | 'backupApprovals'
  | 'audit'
  | 'records'
  | 'incidents'
  | 'reportIncident'
  | 'account';
type SectionKey = 'documents' | 'administration' | 'operations' | 'you';
const NAV: NavItem[] = [
  { path: '/workspaces', label: 'workspaces', icon: 'folder', permission: 'workspace:use', section: 'documents' },
  // owners confirm their members in access reviews; admins see the item under Administration
  {
    path: '/reviews',
    label: 'reviews',
    icon: 'list',
    permission: 'workspace:use',
    section: 'documents',
    also: (me) => !can(me, 'access:review'),
  },
  { path: '/users', label: 'users', icon: 'users', permission: 'users:read', section: 'administration' },
  { path: '/reviews', label: 'reviews', icon: 'list', permission: 'access:review', section: 'administration' },
  { path: '/keys', label: 'keys', icon: 'key', permission: 'keys:read', section: 'administration' },
  { path: '/settings', label: 'settings', icon: 'settings', permission: 'settings:manage', section: 'administration' },
  { path: '/operations', label: 'dashboard', icon: 'home', permission: 'monitoring:read', section: 'operations' },
  { path: '/operations/alerts', label: 'alerts', icon: 'alert', permission: 'monitoring:read', section: 'operations' },
  { path: '/operations/jobs', label: 'jobs', icon: 'clock', permission: 'monitoring:read', section: 'operations' },
  { path: '/backups', label: 'backups', icon: 'archive', permission: 'backup:read', section: 'operations' },
  // admins decide backup operators' changes to targets and escrow keys (two-person rule)
  {
    path: '/backups',
    label: 'backupApprovals',
    icon: 'archive',
    permission: 'backup:approve',
    section: 'administration',
    also: (me) => !can(me, 'backup:read'),
  },
  { path: '/audit', label: 'audit', icon: 'shield', permission: 'audit:read', section: 'operations' },
  { path: '/records', label: 'records', icon: 'archive', permission: 'records:manage', section: 'documents' },
  { path: '/incidents', label: 'incidents', icon: 'alert', permission: 'incidents:read', section: 'operations' },
  { path: '/account', label: 'account', icon: 'user', permission: 'self', section: 'you' },
  { path: '/report-incident', label: 'reportIncident', icon: 'alert', permission: 'self', section: 'you' },
];

const PUBLIC = ['/login', '/enrol', '/reset', '/forgot'];
const isPublic = (r: Route) => PUBLIC.includes(`/${r.parts[0] ?? ''}`);

/** where each role starts: its main task */
const HOME: Record<string, string> = {
  member: '/workspaces',
  admin: '/users',
  'backup-operator': '/backups',
  auditor: '/audit',
  'records-manager': '/records',
};

export function homeOf(me: Me): string {
  const h = HOME[me.role];
  const item = NAV.find((n) => n.path === h);
  if (item && can(me, item.permission)) return item.path;
  return NAV.find((n) => can(me, n.permission))?.path ?? '/account';
}

let bootstrapped = false;

export function App() {
  // the whole console re-renders in the new language when it changes
  useLanguage();
  const session = useSession();
  const route = useRoute();

  useEffect(() => {
    if (bootstrapped) return;
    bootstrapped = true;
    setSessionLostHandler(() => {
      if (getSession().status !== 'signed-in') return;
      const r = current();
      setAnonymous(t('common.sessionEnded'));
      navigate('/login', isPublic(r) ? undefined : { next: r.path }, true);
    });
    void auth.resume();
  }, []);

  useEffect(() => {
    if (session.status !== 'signed-in') return;
    activity();
    const on = () => activity();
    const events = ['pointerdown', 'keydown', 'wheel', 'touchstart'] as const;
    for (const e of events) window.addEventListener(e, on, { passive: true });
    const timer = setInterval(() => {
      if (idleFor() > IDLE_MS) void auth.logout(t('common.idleSignedOut'));
    }, 15_000);
    return () => {
      for (const e of events) window.removeEventListener(e, on);
      clearInterval(timer);
    };
  }, [session.status]);

  if (session.status === 'unknown') {
    return (
      <div class="auth-page">
        <Loading label={t('common.connecting')} />
      </div>
    );
  }
  const p = route.parts[0] ?? '';
  if (p === 'enrol') return <EnrolPage route={route} />;
  if (p === 'reset') return <ResetPage route={route} />;
  if (p === 'forgot') return <ForgotPage />;
  if (session.status === 'anonymous' || p === 'login') {
    if (session.status === 'signed-in') {
      return <Redirect to={route.query.get('next') ?? homeOf(session.me)} />;
    }
    // a signed-out visitor of a console page signs in, then lands on that page
    const next =
      p === 'login'
        ? (route.query.get('next') ?? undefined)
        : `${route.path}${route.query.toString() ? `?${route.query.toString()}` : ''}`;
    return <LoginPage next={next} notice={session.status === 'anonymous' ? session.notice : undefined} />;
  }
  return (
    <Shell me={session.me} route={route}>
      <Screen me={session.me} route={route} />
    </Shell>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, undefined, true), [to]);
  return null;
}

function Screen({ me, route }: { me: Me; route: Route }) {
  let m: Record<string, string> | undefined;
  if (route.path === '/' || route.path === '') return <Redirect to={homeOf(me)} />;
  if (match('/workspaces', route)) return <WorkspacesPage me={me} />;
  if ((m = match('/workspaces/:ws', route))) return <WorkspacePage me={me} ws={m.ws!} route={route} />;
  if ((m = match('/workspaces/:ws/members', route))) return <MembersPage me={me} ws={m.ws!} />;
  if ((m = match('/workspaces/:ws/documents/:doc', route))) return <DocumentPage me={me} ws={m.ws!} doc={m.doc!} />;
  if (match('/users', route)) return <UsersPage me={me} />;
  if ((m = match('/users/:id', route))) return <UserPage me={me} id={m.id!} />;
  if (match('/reviews', route)) return <ReviewsPage me={me} />;
  if ((m = match('/reviews/:id', route))) return <ReviewPage me={me} id={m.id!} />;
  if (match('/keys', route)) return <KeysPage me={me} />;
  if (match('/settings', route)) return <SettingsPage me={me} />;
  if (match('/backups', route)) return <BackupPage me={me} />;
  if (match('/audit', route)) return <AuditPage me={me} route={route} />;
  if (match('/records', route)) return <RecordsPage me={me} />;
  if (match('/operations', route)) return <OperationsPage me={me} />;
  if (match('/operations/alerts', route)) return <AlertsPage me={me} />;
  if (match('/operations/jobs', route)) return <JobsPage me={me} />;
  if (match('/account', route) || match('/account/:tab', route)) return <AccountPage me={me} route={route} />;
  if (match('/incidents', route)) return <IncidentsPage me={me} />;
  if ((m = match('/incidents/:id', route))) return <IncidentPage me={me} id={m.id!} />;
  if (match('/report-incident', route)) return <ReportIncidentPage />;
  return (
    <div class="empty">
      <h1 class="page-title" tabIndex={-1}>
        {t('common.notFound.title')}
      </h1>
      <p class="muted">
        {t('common.notFound.text')} <a href={`#${homeOf(me)}`}>{t('common.notFound.home')}</a>
      </p>
    </div>
  );
}

function Shell({ me, route, children }: { me: Me; route: Route; children: ComponentChildren }) {
  const main = useRef<HTMLElement>(null);
  // move focus to the page's title on navigation (screen readers announce the new page)
  useEffect(() => {
    const timer = setTimeout(() => {
      const h = main.current?.querySelector<HTMLElement>('.page-title');
      if (h && !main.current?.contains(document.activeElement)) h.focus({ preventScroll: true });
    }, 0);
    document.title = `${titleOf(route)} — Coffre`;
    return () => clearTimeout(timer);
  }, [route.path]);
  const items = NAV.filter((n) => can(me, n.permission) && (n.also?.(me) ?? true));
  const sections = [...new Set(items.map((i) => i.section))];
  const here = items.some((i) => i.path === route.path) ? route.path : `/${route.parts[0] ?? ''}`;
  return (
    <div class="shell">
      <a class="skip-link" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        {t('common.skipToContent')}
      </a>
      <header class="topbar">
        <a class="brand" href={`#${homeOf(me)}`}>
          <span class="brand-mark">
            <Icon name="lock" size={20} />
          </span>
          Coffre
        </a>
        <span class="spacer" />
        <div class="user">
          <Icon name="user" />
          <span data-testid="whoami">{me.username}</span>
          <span class="badge">{roleLabel(me.role)}</span>
          <button type="button" class="btn btn-ghost btn-sm" onClick={() => void auth.logout()}>
            <Icon name="logout" /> {t('common.signOut')}
          </button>
        </div>
      </header>
      <nav class="sidebar" aria-label={t('common.mainNav')}>
        {sections.map((s) => (
          <div class="nav-section">
            <h2>{t(`nav.sections.${s}`)}</h2>
            {items
              .filter((i) => i.section === s)
              .map((i) => (
                <a class="nav-link" href={`#${i.path}`} aria-current={here === i.path ? 'page' : undefined}>
                  <Icon name={i.icon} />
                  {t(`nav.${i.label}`)}
                </a>
              ))}
          </div>
        ))}
      </nav>
      <main id="main" class="content" ref={main} tabIndex={-1}>
        <IncidentBanner />
        {children}
      </main>
      <Notifications />
      <ConfirmHost />
    </div>
  );
}

function titleOf(r: Route): string {
  const n = NAV.find((i) => i.path === r.path) ?? NAV.find((i) => i.path === `/${r.parts[0] ?? ''}`);
  return t(`nav.${n?.label ?? 'console'}`);
}
