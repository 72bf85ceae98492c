#!/usr/bin/env bash
# Installs the appliance's system files (units, firewall, SSH, kernel and update settings, the
# service user, the admin tools) into a Debian 12 root that already has appliance/packages.txt.
# Used by the Packer provisioner (--root /) and by the fast checks (--root an overlay of the cached
# tree). Idempotent. Does not install the app: coffre-update does that from a signed bundle.
#
#   appliance/install.sh [--root DIR] [--update-key PEM]...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root=/
keys=()
while (($#)); do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --update-key) keys+=("$2"); shift 2 ;;
    *) echo "usage: install.sh [--root DIR] [--update-key PEM]..." >&2; exit 2 ;;
  esac
done
[[ "$(id -u)" == 0 ]] || { echo "install.sh must run as root" >&2; exit 2; }
root="$(cd "$root" && pwd)"
in_root() { if [[ "$root" == / ]]; then "$@"; else chroot "$root" "$@"; fi; }
put() { # put MODE SRC DEST (DEST relative to the root)
  install -D -m "$1" -o root -g root "$here/$2" "$root/$3"
}

# --- users and groups
in_root getent group softhsm >/dev/null || in_root groupadd --system softhsm
in_root getent group coffre-ssh >/dev/null || in_root groupadd --system coffre-ssh
in_root getent passwd coffre >/dev/null \
  || in_root useradd --system --user-group --home-dir /var/lib/coffre --no-create-home --shell /usr/sbin/nologin --comment 'Coffre service' coffre
install -d -m 0700 -o "$(in_root id -u coffre)" -g "$(in_root id -g coffre)" "$root/var/lib/coffre"
install -d -m 0755 "$root/opt/coffre/releases" "$root/etc/coffre" "$root/etc/coffre/update-keys" "$root/etc/coffre/nftables.d"

# --- units
for u in coffre.service coffre-firstboot.service coffre-ssh-hostkeys.service; do
  put 0644 "systemd/$u" "usr/local/lib/systemd/system/$u"
done
# --- admin tools (the CLI itself comes with each release)
put 0755 sbin/coffre-update usr/local/sbin/coffre-update
put 0755 sbin/coffre-firstboot usr/local/sbin/coffre-firstboot
put 0755 sbin/coffre-seal usr/local/sbin/coffre-seal
ln -sfn /opt/coffre/current/bin/coffre "$root/usr/local/bin/coffre"
for k in "${keys[@]}"; do
  install -m 0644 -o root -g root "$k" "$root/etc/coffre/update-keys/$(basename "$k")"
done

# --- host hardening
put 0644 etc/nftables.conf etc/nftables.conf
put 0644 etc/nftables.d/README etc/coffre/nftables.d/README
put 0644 etc/ssh/coffre.conf etc/ssh/sshd_config.d/coffre.conf
put 0644 etc/sysctl/60-coffre.conf etc/sysctl.d/60-coffre.conf
put 0644 etc/coredump.conf etc/systemd/coredump.conf.d/coffre.conf
put 0644 etc/limits.conf etc/security/limits.d/coffre.conf
put 0644 etc/apt/52coffre-unattended-upgrades etc/apt/apt.conf.d/52coffre-unattended-upgrades
put 0644 etc/apt/20auto-upgrades etc/apt/apt.conf.d/20auto-upgrades
put 0644 etc/network/50-coffre-dhcp.network etc/systemd/network/50-coffre-dhcp.network
# no swap at all (an unencrypted swap would hold process memory: keys, PINs); no swap units either
in_root systemctl mask --quiet swap.target
# DNS through systemd-resolved's stub
ln -sfn /run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# --- services
in_root systemctl enable --quiet systemd-networkd.service systemd-resolved.service nftables.service \
  chrony.service ssh.service coffre-ssh-hostkeys.service coffre-firstboot.service coffre.service
echo "appliance files installed into $root"
