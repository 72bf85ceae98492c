// The import rules of docs/architecture.md, checked by `npm run lint` and test/architecture.test.ts.
// An exception is named in `exceptions` below (and listed in docs/architecture.md) with its reason.

/** Implementations of a capability: built by src/main.ts or the module's registry.ts only. */
const IMPLEMENTATIONS = [
  '^src/[^/]+/pkcs11/',
  '^src/storage/fs/',
  '^src/backup/targets/(sftp|path)\\.ts$',
  '^src/monitoring/channels/',
  '^src/audit/(db|syslog)/',
  '^src/auth/messaging\\.ts$',
];

/**
 * Named exceptions, each also listed in docs/architecture.md: a violation of `rule` from a file matching
 * `from` to a file matching `to` is allowed for `reason`. scripts/check-architecture.mjs applies them and
 * fails on an exception that no longer matches anything, so the list only shrinks.
 */
const exceptions = [
  {
    name: 'config-section-types',
    rule: 'cross-module-internals',
    from: '^src/',
    to: '^src/config/sections/',
    reason: 'a module types its own config slice from its section file; config/index.ts exports only the whole Config',
  },
  {
    name: 'database-type',
    rule: 'cross-module-internals',
    from: '^src/db/(types|schemas)\\.ts$',
    to: '^src/[^/]+/tables\\.ts$',
    reason:
      "the Database type joins every module's tables, and each module's view (db/schemas.ts) joins its own with its named exceptions",
  },
  {
    name: 'cli-internals',
    rule: 'cross-module-internals',
    from: '^src/(cli|firstboot)/',
    to: '^src/(cli|keys|auth|http|config)/',
    reason:
      'offline commands (init, keys, users, first boot) run without the server wiring and call module internals main.ts never exports',
  },
  {
    name: 'shedding-groups',
    rule: 'cross-module-internals',
    from: '^src/monitoring/(shedding|sampler)\\.ts$',
    to: '^src/(http/groups|auth/address)\\.ts$',
    reason: "load shedding classifies requests with the HTTP route groups and auth's client address",
  },
  {
    name: 'access-routes',
    rule: 'cross-module-internals',
    from: '^src/auth/wire\\.ts$',
    to: '^src/access/routes\\.ts$',
    reason: 'exporting the access routes from access/index.ts makes an access <-> audit import cycle',
  },
  {
    name: 'audit-builds-its-sinks',
    rule: 'implementation-outside-registry',
    from: '^src/audit/',
    to: '^src/audit/(db|syslog)/',
    reason: 'audit has no registry yet: its service builds the database sink and forwarder and shares their row types',
  },
  {
    name: 'syslog-transport',
    rule: 'implementation-outside-registry',
    from: '^src/monitoring/(health\\.ts|channels/syslog\\.ts)$',
    to: '^src/audit/syslog/',
    reason: "the syslog alert channel and its health check reuse the audit forwarder's transport and format",
  },
  {
    name: 'monitoring-channel-exports',
    rule: 'implementation-outside-registry',
    from: '^src/monitoring/(index|wire)\\.ts$',
    to: '^src/monitoring/channels/',
    reason: "monitoring/index.ts re-exports the alert channels and wire.ts takes the e-mail channel's mailer type",
  },
  {
    name: 'token-bootstrap',
    rule: 'implementation-outside-registry',
    from: '^src/keys/bootstrap\\.ts$',
    to: '^src/keys/pkcs11/(token|library)\\.ts$',
    reason: '`coffre init` initialises the PKCS#11 token before any provider exists',
  },
  {
    name: 'sftp-host-key',
    rule: 'implementation-outside-registry',
    from: '^src/backup/(index|targets-admin)\\.ts$',
    to: '^src/backup/targets/sftp\\.ts$',
    reason: "adding an SFTP target probes and parses the server's host key with the SFTP target's helpers",
  },
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'implementation-outside-registry',
      comment: 'An implementation is imported only by src/main.ts, a registry.ts, or files in its own folder.',
      severity: 'error',
      from: { path: '^(src/.*)/[^/]+$', pathNot: ['^src/[^/]+/registry\\.ts$'] },
      to: { path: IMPLEMENTATIONS, pathNot: ['^$1/[^/]+$'] },
    },
    {
      name: 'cross-module-internals',
      comment:
        'Another module is reached only through its index.ts or types.ts (src/shared/ is a library, not a module).',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: {
        path: '^src/[^/]+/',
        pathNot: ['^src/$1/', '^src/[^/]+/(index|types)\\.ts$', '^src/shared/', ...IMPLEMENTATIONS],
      },
    },
    {
      name: 'no-circular',
      comment: 'No import cycle.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^src/console/app/'] },
    tsPreCompilationDeps: true,
    parser: 'swc',
    enhancedResolveOptions: {
      extensions: ['.ts', '.js'],
    },
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

// Not a dependency-cruiser option (it validates the enumerable keys only): read by scripts/check-architecture.mjs.
Object.defineProperty(module.exports, 'exceptions', { value: exceptions, enumerable: false });
