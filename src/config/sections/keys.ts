import { Type, type Static } from '@sinclair/typebox';

/** The customer's PKCS#11 HSM (SoftHSM2 under the data dir by default). */
export const KeysSection = Type.Object(
  {
    type: Type.Literal('pkcs11'),
    module: Type.String({ default: '/usr/lib/softhsm/libsofthsm2.so', description: 'PKCS#11 library path' }),
    slot: Type.Optional(Type.Integer({ minimum: 0 })),
    tokenLabel: Type.Optional(Type.String()),
    /** file holding the user PIN (0600); never the PIN itself */
    pinFile: Type.String({ default: 'secrets/hsm-pin' }),
    /** label prefix of the key-encryption key; versions are `<kekLabel>-<n>` */
    kekLabel: Type.String({ default: 'coffre-kek' }),
    /** SoftHSM2 only: its configuration file (sets SOFTHSM2_CONF for the process) */
    softhsmConfFile: Type.Optional(Type.String()),
    /** 'auto': CKM_AES_KEY_WRAP_PAD when the token wraps with it, else CKM_AES_GCM */
    wrapMechanism: Type.Union(
      [Type.Literal('auto'), Type.Literal('CKM_AES_KEY_WRAP_PAD'), Type.Literal('CKM_AES_GCM')],
      { default: 'auto' },
    ),
    sessionPoolSize: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
    /** deadline of one HSM operation (wrap, unwrap, MAC): past it the HSM counts as hung and requests get 503 at once */
    callTimeoutMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 800 }),
    /** deadline of connecting, logging in and KEK administration */
    connectTimeoutMs: Type.Integer({ minimum: 1000, maximum: 300_000, default: 15_000 }),
    /** the HSM is probed this often without traffic (hang, pulled KEK); 0: never */
    probeIntervalMs: Type.Integer({ minimum: 0, default: 5_000 }),
    dekCacheSize: Type.Integer({ minimum: 0, default: 10_000 }),
    dekCacheTtlMs: Type.Integer({ minimum: 0, default: 600_000 }),
    /** data keys re-wrapped per batch (and per progress update) during a KEK rotation */
    rotationBatchSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 200 }),
    /** after rotation, the old KEK version is destroyed after this many days (at least the backup retention plus a margin: see retiredKekGraceProblem) */
    retiredKekGraceDays: Type.Integer({ minimum: 0, default: 30 }),
  },
  { additionalProperties: false, default: { type: 'pkcs11' } },
);
export type KeysConfig = Static<typeof KeysSection>;

/** Backups are destroyed at the latest 7 days plus backup.graceHours after they were taken (src/backup/retention.ts). */
const BACKUP_RETENTION_DAYS = 7;
/** What a retired KEK outlives the oldest backup by: a retention job that ran late, a target that was unreachable. */
export const KEK_GRACE_MARGIN_DAYS = 7;

/**
 * The start-up rule for `keys.retiredKekGraceDays`: a backup's session key stays wrapped under the
 * KEK version that was current when the backup was taken, so a retired version must outlive every
 * backup still kept, plus a margin; otherwise the next rotation would destroy the key that opens
 * the last week's backups. Returns the problem, or undefined when the setting is safe.
 */
export function retiredKekGraceProblem(
  keys: Pick<KeysConfig, 'retiredKekGraceDays'>,
  backupGraceHours: number,
): { path: string; message: string } | undefined {
  const min = Math.ceil(BACKUP_RETENTION_DAYS + backupGraceHours / 24) + KEK_GRACE_MARGIN_DAYS;
  if (keys.retiredKekGraceDays >= min) return undefined;
  return {
    path: '/keys/retiredKekGraceDays',
    message:
      `must be at least ${min} days (got ${keys.retiredKekGraceDays}): a retired key-encryption key still opens the backups taken before the rotation, ` +
      `which are kept up to ${BACKUP_RETENTION_DAYS} days plus backup.graceHours (${backupGraceHours} h); the rule is ` +
      `retiredKekGraceDays >= ceil(${BACKUP_RETENTION_DAYS} + backup.graceHours / 24) + ${KEK_GRACE_MARGIN_DAYS}`,
  };
}
