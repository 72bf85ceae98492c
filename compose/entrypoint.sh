#!/bin/sh
# Container entrypoint (runs as the unprivileged user coffre, read-only root file system).
#   serve (default): creates the appliance on first start, then runs it in the foreground
#   anything else:   a coffre command, e.g. `docker compose run --rm coffre keys status`
# First start reads non-secret settings from the environment: COFFRE_JURISDICTION, COFFRE_LAT,
# COFFRE_LON, COFFRE_TZ, COFFRE_HOSTNAME, COFFRE_ADMIN, COFFRE_ADMIN_EMAIL. Secrets come as files:
# COFFRE_TLS_CERT_FILE / COFFRE_TLS_KEY_FILE (e.g. /run/secrets/tls_cert, /run/secrets/tls_key).
# The default SoftHSM2 token is kept in its own volume (/var/lib/coffre/token).
set -eu
umask 077
DATA=/var/lib/coffre/data
TOKEN=/var/lib/coffre/token
NODE=/opt/coffre/current/node/bin/node
CLI=/opt/coffre/current/app/dist/bundle/coffre.mjs
say() { printf 'coffre-entrypoint: %s\n' "$*" >&2; }

if [ "${1:-serve}" != serve ]; then exec "$NODE" "$CLI" "$@"; fi

if [ ! -f "$DATA/config.json" ]; then
  say "first start: creating the appliance in $DATA"
  set -- --data-dir "$DATA" --port 8443 --jurisdiction "${COFFRE_JURISDICTION:-FR}" --tz "${COFFRE_TZ:-UTC}" --json
  [ -n "${COFFRE_LAT:-}" ] && set -- "$@" --lat "$COFFRE_LAT"
  [ -n "${COFFRE_LON:-}" ] && set -- "$@" --lon "$COFFRE_LON"
  [ -n "${COFFRE_HOSTNAME:-}" ] && set -- "$@" --hostname "$COFFRE_HOSTNAME"
  [ -n "${COFFRE_ADMIN:-}" ] && set -- "$@" --admin "$COFFRE_ADMIN" --admin-email "${COFFRE_ADMIN_EMAIL:?COFFRE_ADMIN_EMAIL is needed with COFFRE_ADMIN}"
  "$NODE" "$CLI" init "$@" > "$TOKEN/.init.json"
  # token → its own volume; provided TLS files → config; the enrolment link → a 0600 file, not the log
  "$NODE" - "$DATA" "$TOKEN" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const [data, token] = process.argv.slice(2);
const cfgFile = path.join(data, 'config.json');
const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
const init = JSON.parse(fs.readFileSync(path.join(token, '.init.json'), 'utf8'));
const oldTokens = path.join(data, 'softhsm', 'tokens');
if (cfg.keys && cfg.keys.softhsmConfFile && fs.existsSync(oldTokens)) {
  fs.cpSync(oldTokens, path.join(token, 'tokens'), { recursive: true });
  const conf = path.join(token, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(token, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  cfg.keys.softhsmConfFile = conf;
}
if (process.env.COFFRE_TLS_CERT_FILE || process.env.COFFRE_TLS_KEY_FILE) {
  cfg.tls = { ...(cfg.tls || {}), certFile: process.env.COFFRE_TLS_CERT_FILE, keyFile: process.env.COFFRE_TLS_KEY_FILE };
}
const tmp = cfgFile + '.tmp';
fs.writeFileSync(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
fs.renameSync(tmp, cfgFile);
fs.rmSync(path.join(data, 'softhsm'), { recursive: true, force: true });
if (init.enrolUrl) fs.writeFileSync(path.join(data, 'first-admin-enrolment-link'), init.enrolUrl + '\n', { mode: 0o600 });
console.error(`coffre-entrypoint: appliance ${init.applianceId} created; certificate SHA-256 ${init.fingerprint}` + (init.enrolUrl ? `; the first admin's one-time link is in ${data}/first-admin-enrolment-link` : ''));
JS
  rm -f "$TOKEN/.init.json"
fi
exec "$NODE" "$CLI" serve --data-dir "$DATA" --host 0.0.0.0 --port 8443
