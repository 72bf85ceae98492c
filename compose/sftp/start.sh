#!/bin/sh
# Starts the evaluation SFTP target: a fresh host key in /tmp (tmpfs), then sshd in the foreground.
set -eu
umask 077
mkdir -p /tmp/sftp
[ -f /tmp/sftp/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /tmp/sftp/ssh_host_ed25519_key
echo "coffre-sftp: host key $(ssh-keygen -lf /tmp/sftp/ssh_host_ed25519_key.pub)" >&2
exec /usr/sbin/sshd -D -e -f /etc/coffre-sftp/sshd_config
