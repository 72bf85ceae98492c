# shellcheck shell=bash
# podman as this machine allows it (sourced by scripts/build-container and scripts/test-container):
# the runc runtime (crun fails here) and ulimits within the machine's hard limits (podman's
# defaults exceed them and runc refuses). Sets CONTAINERS_CONF.
podman_env() {
  local dir="$ROOT/.tmp/podman"
  mkdir -p "$dir"
  cat > "$dir/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=8192:8192", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$dir/containers.conf"
}

# base_image: tags the cached Debian tree as a local base image (no registry is needed), prints it
base_image() {
  local tree key tag
  tree="$("$ROOT/scripts/image/rootfs")"
  key="$(basename "$tree" | sed 's/^rootfs-//')"
  tag="localhost/coffre-base:$key"
  if ! podman image exists "$tag"; then
    say "importing the Debian 12 tree as $tag"
    tar -C "$tree" --exclude=./boot --exclude=./lib/modules --exclude=./usr/lib/modules \
      --exclude=./usr/lib/firmware --exclude=./.complete -cf - . | podman import -q - "$tag" >/dev/null
  fi
  echo "$tag"
}
