import crypto from 'node:crypto';
import { isAppError } from '../shared/errors.js';
import { getTarget } from './catalogue.js';
import type { BackupCore } from './core.js';
import { BackupError, backupErrors } from './errors.js';
import { addEscrow, checkEscrowExpiry, escrowRow, expireEscrow, removeEscrow } from './escrow.js';
import { addTarget, checkNewTarget, removeTarget } from './targets-admin.js';
import type { AddTargetInput } from './types.js';

/**
 * Two-person rule on where backups go and who can open them. A change to targets or escrow keys
 * asked for through the API (a backup operator, `backup:manage`) is not applied: it is stored as
 * a pending request with the SHA-256 of its canonical form, audited and alerted. A different
 * person with `backup:approve` (the admin role) approves it, naming the digest they reviewed, or
 * rejects it; the requester never decides their own request. Approval applies exactly the
 * stored change (its digest is computed again and must match), as the requester. Requests expire
 * after `backup.approvalTtlHours`. Local commands (the appliance's data directory and HSM PIN)
 * apply at once and raise an alert (docs/disaster-recovery.md "Two-person rule").
 */

export const CHANGE_KINDS = ['target.add', 'target.remove', 'escrow.add', 'escrow.remove', 'escrow.expire'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** A change exactly as it will be applied. */
export type Change =
  | {
      kind: 'target.add';
      target: Required<Pick<AddTargetInput, 'name' | 'type' | 'url' | 'jurisdiction' | 'lat' | 'lon'>> & {
        hostKey: string | null;
        identityFile: string | null;
        passwordFile: string | null;
      };
    }
  | { kind: 'target.remove'; name: string }
  | { kind: 'escrow.add'; fingerprint: string; userIds: string[]; algorithm: string; armored: string }
  | { kind: 'escrow.remove'; fingerprint: string }
  | { kind: 'escrow.expire'; fingerprint: string; expiresAt: number };

/** Who asks or decides: the audit actor (`user:…`, `token:…`) and the person behind it (`user:<id>`). */
export interface Person {
  actor: string;
  person: string;
}

export interface ChangeRequest {
  id: string;
  kind: ChangeKind;
  change: Change;
  digest: string;
  summary: string;
  state: 'pending' | 'applying' | 'applied' | 'rejected' | 'expired' | 'failed';
  requestedBy: string;
  requestedAt: number;
  expiresAt: number;
  decidedBy: string | null;
  decidedAt: number | null;
  reason: string | null;
}

/** JSON with keys sorted at every level: one byte string per change. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** hex SHA-256 of `coffre-backup-change-v1\n` ‖ the canonical JSON of the change */
export function changeDigest(c: Change): string {
  return crypto
    .createHash('sha256')
    .update(`coffre-backup-change-v1\n${canonical(c)}`)
    .digest('hex');
}

function summaryOf(c: Change): string {
  switch (c.kind) {
    case 'target.add':
      return `add target ${c.target.name}: ${c.target.url} (${c.target.jurisdiction}, ${c.target.lat}, ${c.target.lon})${c.target.hostKey ? `, host key ${c.target.hostKey}` : ''}`;
    case 'target.remove':
      return `remove target ${c.name} (every backup at it is destroyed)`;
    case 'escrow.add':
      return `add escrow key ${c.fingerprint} (${c.algorithm}; ${c.userIds.join(', ')})`;
    case 'escrow.remove':
      return `remove escrow key ${c.fingerprint}`;
    case 'escrow.expire':
      return `expire escrow key ${c.fingerprint} at ${new Date(c.expiresAt).toISOString()}`;
  }
}

const err = {
  notFound: (id: string) =>
    new BackupError('REQUEST_NOT_FOUND', `no change request ${id}`, {
      httpStatus: 404,
      hint: 'see `coffre backup request list`',
    }),
  self: () =>
    new BackupError(
      'REQUEST_SELF_APPROVAL',
      'you asked for this change: another person with the admin role must decide it',
      { httpStatus: 403, hint: 'ask another admin to approve or reject it' },
    ),
  notPending: (id: string, state: string) =>
    new BackupError('REQUEST_NOT_PENDING', `change request ${id} is ${state}, not pending`, { httpStatus: 409 }),
  expired: (id: string) =>
    new BackupError('REQUEST_EXPIRED', `change request ${id} expired before it was approved; nothing was changed`, {
      httpStatus: 409,
      hint: 'the operator asks again',
    }),
  digest: (id: string) =>
    new BackupError(
      'REQUEST_DIGEST_MISMATCH',
      `change request ${id} is not the change you reviewed (its digest differs); nothing was changed`,
      { httpStatus: 409, hint: 'list the requests again and review what is pending' },
    ),
};

type Row = {
  id: string;
  kind: string;
  payload: string;
  digest: string;
  summary: string;
  state: string;
  requested_by: string;
  requested_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_at: number | null;
  reason: string | null;
};

function fromRow(r: Row, now: number): ChangeRequest {
  const state = r.state === 'pending' && Number(r.expires_at) <= now ? 'expired' : (r.state as ChangeRequest['state']);
  return {
    id: r.id,
    kind: r.kind as ChangeKind,
    change: JSON.parse(r.payload) as Change,
    digest: r.digest,
    summary: r.summary,
    state,
    requestedBy: r.requested_by,
    requestedAt: Number(r.requested_at),
    expiresAt: Number(r.expires_at),
    decidedBy: r.decided_by,
    decidedAt: r.decided_at === null ? null : Number(r.decided_at),
    reason: r.reason,
  };
}

/** The public view of a request: the escrow key's armored text is covered by the digest, not sent. */
export function publicChange(c: Change): Record<string, unknown> {
  if (c.kind !== 'escrow.add') return { ...c };
  const { armored: _a, ...rest } = c;
  return rest;
}

export type ChangeInput =
  | { kind: 'target.add'; target: AddTargetInput }
  | { kind: 'target.remove'; name: string }
  | { kind: 'escrow.add'; publicKey: string | Uint8Array }
  | { kind: 'escrow.remove'; fingerprint: string }
  | { kind: 'escrow.expire'; fingerprint: string; expiresAt: number };

/** Checks a change as its direct verb would (refusals audited as such) and returns it as it will be applied. */
async function prepare(c: BackupCore, i: ChangeInput, actor: string): Promise<Change> {
  switch (i.kind) {
    case 'target.add': {
      const { info } = await checkNewTarget(c, i.target, actor);
      return {
        kind: 'target.add',
        target: {
          name: info.name,
          type: info.type,
          url: info.url,
          jurisdiction: info.jurisdiction,
          lat: info.lat,
          lon: info.lon,
          hostKey: info.hostKey,
          identityFile: info.identityFile,
          passwordFile: info.passwordFile,
        },
      };
    }
    case 'target.remove': {
      if (!(await getTarget(c.db, i.name)))
        throw backupErrors.usage(`no target named ${i.name}`, 'see `coffre backup target list`');
      return { kind: 'target.remove', name: i.name };
    }
    case 'escrow.add': {
      const { checkEscrowKey } = await import('./pgp/openpgp.js');
      let info: Awaited<ReturnType<typeof checkEscrowKey>>;
      try {
        info = await checkEscrowKey(i.publicKey, new Date(c.now()));
      } catch (e) {
        await c.d.audit.recordNow({
          action: 'backup.escrow.add',
          actor,
          outcome: 'failure',
          reason: isAppError(e) ? e.code : 'ESCROW_KEY_REFUSED',
        });
        throw e;
      }
      const exists = await c.db
        .selectFrom('backup_escrow_keys')
        .select('fingerprint')
        .where('fingerprint', '=', info.fingerprint)
        .executeTakeFirst();
      if (exists) {
        await c.d.audit.recordNow({
          action: 'backup.escrow.add',
          actor,
          outcome: 'failure',
          reason: 'ESCROW_KEY_EXISTS',
          targets: { escrow: info.fingerprint },
        });
        throw backupErrors.escrowExists(info.fingerprint);
      }
      return {
        kind: 'escrow.add',
        fingerprint: info.fingerprint,
        userIds: info.userIds,
        algorithm: info.algorithm,
        armored: info.armored,
      };
    }
    case 'escrow.remove':
      return { kind: 'escrow.remove', fingerprint: (await escrowRow(c, i.fingerprint)).fingerprint };
    case 'escrow.expire': {
      const row = await checkEscrowExpiry(c, i.fingerprint, i.expiresAt, actor);
      return { kind: 'escrow.expire', fingerprint: row.fingerprint, expiresAt: i.expiresAt };
    }
  }
}

/**
 * Records a change for approval (audited `backup.request.create`, alerted to whoever receives
 * alerts: admins and auditors). Nothing is changed: not the catalogue, not the target.
 */
export async function requestChange(c: BackupCore, i: ChangeInput, who: Person): Promise<ChangeRequest> {
  const change = await prepare(c, i, who.actor);
  const now = c.now();
  const id = crypto.randomBytes(8).toString('hex');
  const row: Row = {
    id,
    kind: change.kind,
    payload: JSON.stringify(change),
    digest: changeDigest(change),
    summary: summaryOf(change),
    state: 'pending',
    requested_by: who.person,
    requested_at: now,
    expires_at: now + c.cfg.approvalTtlHours * 3_600_000,
    decided_by: null,
    decided_at: null,
    reason: null,
  };
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: 'backup.request.create',
      actor: who.actor,
      outcome: 'success',
      targets: { request: id, change: change.kind },
    });
    await trx.insertInto('backup_change_requests').values(row).execute();
  });
  await c.alert({
    kind: 'backup.change-requested',
    severity: 'warning',
    message: `${who.person} asks to ${row.summary}; an admin other than the requester approves or rejects it (request ${id}, digest ${row.digest.slice(0, 16)}…) before ${new Date(row.expires_at).toISOString()}`,
    targets: { request: id },
  });
  return fromRow(row, now);
}

export async function listRequests(c: BackupCore, o: { all?: boolean } = {}): Promise<ChangeRequest[]> {
  let q = c.db.selectFrom('backup_change_requests').selectAll().orderBy('requested_at', 'desc').limit(200);
  if (!o.all) q = q.where('state', '=', 'pending').where('expires_at', '>', c.now());
  return (await q.execute()).map((r) => fromRow(r as Row, c.now()));
}

async function getRequest(c: BackupCore, id: string): Promise<Row> {
  if (!/^[0-9a-f]{16}$/.test(id)) throw err.notFound(id);
  const r = await c.db.selectFrom('backup_change_requests').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw err.notFound(id);
  return r as Row;
}

/**
 * Moves a pending request to `to` once (a concurrent second decision finds it no longer pending).
 * Refused, audited `denied` with the reason, for the requester, a request no longer pending, an
 * expired one (marked expired), or a digest other than the stored change's.
 */
async function decide(
  c: BackupCore,
  id: string,
  who: Person,
  action: 'approve' | 'reject',
  to: 'applying' | 'rejected',
  digest: string | null,
  reason: string | null,
): Promise<Row> {
  const r = await getRequest(c, id);
  const now = c.now();
  const deny = async (e: BackupError) => {
    await c.d.audit.recordNow({
      action: `backup.request.${action}`,
      actor: who.actor,
      outcome: 'denied',
      reason: e.code,
      targets: { request: id },
    });
    return e;
  };
  if (r.requested_by === who.person) throw await deny(err.self());
  if (r.state !== 'pending') throw await deny(err.notPending(id, r.state));
  if (Number(r.expires_at) <= now) {
    await c.db
      .updateTable('backup_change_requests')
      .set({ state: 'expired' })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .execute();
    throw await deny(err.expired(id));
  }
  if (action === 'approve') {
    // the stored change must still be the one requested, and the one the approver reviewed
    const stored = changeDigest(JSON.parse(r.payload) as Change);
    if (stored !== r.digest || digest !== r.digest) throw await deny(err.digest(id));
  }
  let moved = 0;
  await c.db.transaction().execute(async (trx) => {
    await c.d.audit.record(trx, {
      action: `backup.request.${action}`,
      actor: who.actor,
      outcome: 'success',
      targets: { request: id, change: r.kind },
    });
    const u = await trx
      .updateTable('backup_change_requests')
      .set({ state: to, decided_by: who.person, decided_at: now, reason })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    moved = Number(u.numUpdatedRows);
    if (moved !== 1) throw err.notPending(id, 'decided');
  });
  return { ...r, state: to, decided_by: who.person, decided_at: now, reason };
}

/** Approves and applies a request (as its requester; the approval is audited as the approver). */
export async function approveRequest(
  c: BackupCore,
  id: string,
  digest: string,
  who: Person,
): Promise<ChangeRequest & { result: unknown }> {
  const r = await decide(c, id, who, 'approve', 'applying', digest, null);
  const change = JSON.parse(r.payload) as Change;
  const actor = r.requested_by;
  let result: unknown;
  try {
    result = await apply(c, change, actor);
  } catch (e) {
    const code = isAppError(e) ? e.code : 'REQUEST_APPLY_FAILED';
    await c.db
      .updateTable('backup_change_requests')
      .set({ state: 'failed', reason: code })
      .where('id', '=', id)
      .execute();
    await c.d.audit
      .recordNow({
        action: 'backup.request.apply',
        actor: who.actor,
        outcome: 'failure',
        reason: code,
        targets: { request: id, change: r.kind },
      })
      .catch(() => undefined);
    throw e;
  }
  await c.db.updateTable('backup_change_requests').set({ state: 'applied' }).where('id', '=', id).execute();
  await c.d.audit.recordNow({
    action: 'backup.request.apply',
    actor: who.actor,
    outcome: 'success',
    targets: { request: id, change: r.kind },
  });
  await c.alert({
    kind: 'backup.change-approved',
    severity: 'info',
    message: `${who.person} approved request ${id} of ${r.requested_by}: ${r.summary}`,
    targets: { request: id },
  });
  return { ...fromRow({ ...r, state: 'applied' }, c.now()), result };
}

export async function rejectRequest(
  c: BackupCore,
  id: string,
  reason: string | null,
  who: Person,
): Promise<ChangeRequest> {
  const r = await decide(c, id, who, 'reject', 'rejected', null, reason);
  return fromRow(r, c.now());
}

async function apply(c: BackupCore, ch: Change, actor: string): Promise<unknown> {
  switch (ch.kind) {
    case 'target.add': {
      const t = await addTarget(
        c,
        {
          ...ch.target,
          hostKey: ch.target.hostKey ?? undefined,
          identityFile: ch.target.identityFile ?? undefined,
          passwordFile: ch.target.passwordFile ?? undefined,
        },
        actor,
      );
      return { name: t.name, url: t.url, distanceKm: Math.round(t.distanceKm * 10) / 10 };
    }
    case 'target.remove':
      return removeTarget(c, ch.name, actor);
    case 'escrow.add': {
      const k = await addEscrow(c, ch.armored, actor);
      // the key that was reviewed is the key that was stored
      if (k.fingerprint !== ch.fingerprint)
        throw backupErrors.integrity(`escrow key ${k.fingerprint} is not the requested ${ch.fingerprint}`);
      return { fingerprint: k.fingerprint };
    }
    case 'escrow.remove':
      return removeEscrow(c, ch.fingerprint, actor);
    case 'escrow.expire':
      return expireEscrow(c, ch.fingerprint, ch.expiresAt, actor);
  }
}

/** A change made locally (data directory and HSM PIN): applied at once, but never silently. */
export async function alertLocalChange(c: BackupCore, actor: string, what: string): Promise<void> {
  await c.alert({
    kind: 'backup.change-local',
    severity: 'warning',
    message: `${actor} changed the backup configuration on the appliance itself, without a second person's approval: ${what}`,
    targets: { actor: actor.slice(0, 128) },
  });
}
