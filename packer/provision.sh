#!/usr/bin/env bash
# Packer shell provisioner (runs as root in the build VM): the appliance's Debian packages, its
# system files and hardening, and the signed Coffre release (Node 24 + app), then a first check.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
echo "build machine-id: $(cat /etc/machine-id)"
echo "build host key: $(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"

# 1. Debian packages: softhsm2, nftables, chrony, unattended-upgrades, openssh-server…
#    (already there on a base from scripts/image/rootfs; installed from the mirror on a stock base)
mapfile -t want < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' /tmp/appliance/packages.txt)
missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. system files: units, firewall, sshd, sysctl, core dumps, unattended-upgrades, service user
bash /tmp/appliance/install.sh --update-key /tmp/coffre-update-key.pem

# 3. Node 24 and the app, from the signed bundle (never npm on the appliance)
/usr/local/sbin/coffre-update --no-restart /tmp/coffre.bundle
/usr/local/bin/coffre --version
/usr/local/sbin/coffre-update --status

rm -rf /tmp/appliance /tmp/coffre.bundle /tmp/coffre-update-key.pem
apt-get clean
echo "provisioned"
