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
    wrapMechanism: Type.Union([Type.Literal('auto'), Type.Literal('CKM_AES_KEY_WRAP_PAD'), Type.Literal('CKM_AES_GCM')], { default: 'auto' }),
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
    /** after rotation, the old KEK version is destroyed after this many days */
    retiredKekGraceDays: Type.Integer({ minimum: 0, default: 30 }),
  },
  { additionalProperties: false, default: { type: 'pkcs11' } },
);
export type KeysConfig = Static<typeof KeysSection>;
