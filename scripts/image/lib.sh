# shellcheck shell=bash
# Shared by scripts/image/*, scripts/test-image and scripts/test-container: cache paths, Debian
# tools, chroot mounts. Sourced after scripts/lib.sh.

# shellcheck disable=SC2034 # used by the scripts that source this file
IMAGE_CACHE="${COFFRE_IMAGE_CACHE:-/var/cache/coffre-image}"
SUITE=bookworm

# Debian packages the image tooling needs on the build machine (scripts install them when missing).
# shellcheck disable=SC2034
IMAGE_TOOL_PKGS=(debootstrap qemu-utils qemu-system-x86 extlinux syslinux-common fdisk packer
  nftables shellcheck docker-compose podman runc catatonit uidmap slirp4netns fuse-overlayfs openssl curl
  openssh-client e2fsprogs)

# ensure_pkgs PKG... : installs the Debian packages that are missing (root only).
ensure_pkgs() {
  local p missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  [[ "$(id -u)" == 0 ]] || die "needs: apt-get install -y --no-install-recommends ${missing[*]} (run as root)"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

# The Debian mirror this machine's apt uses for $SUITE/main (whatever the sources format).
debian_mirror() {
  local url
  url="$(apt-cache policy 2>/dev/null | awk -v s=" $SUITE/main " 'index($0, s) && $2 ~ /^https?:/ {print $2; exit}')"
  echo "${url:-http://deb.debian.org/debian}"
}
debian_security_mirror() {
  local url
  url="$(apt-cache policy 2>/dev/null | awk -v s=" $SUITE-security/main " 'index($0, s) && $2 ~ /^https?:/ {print $2; exit}')"
  echo "${url:-http://deb.debian.org/debian-security}"
}

# The package list without comments, one per line.
image_packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$ROOT/appliance/packages.txt"; }

# chroot_mount ROOT / chroot_umount ROOT: the pseudo file systems a chroot needs.
chroot_mount() {
  local r="$1"
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys"
  mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$r/run"
}
chroot_umount() {
  local r="$1" m
  # deepest first; ignore what is not mounted
  for m in run dev sys proc; do
    if mountpoint -q "$r/$m"; then umount -R "$r/$m" 2>/dev/null || umount -lR "$r/$m" || true; fi
  done
  # callers delete the tree next: never through a mount still there (/dev, /sys are the host's)
  if awk -v p="$r/" 'index($2, p) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    die "still mounted under $r: not going on"
  fi
}
