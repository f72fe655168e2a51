#!/bin/bash
# The runner's private mount namespace of the end-to-end tests.
# Started as: ip netns exec <runner-ns> unshare --mount --uts --propagation private runner-ns.sh <dir>
# (test/e2e/runner.ts)
# Everything below happens inside that new mount namespace only; the host's files are untouched.
# <dir> (written by the test) holds:
#   rootfs/   the generated runner overlay(s) as deployed (etc/NetworkManager/..., etc/systemd/...)
#   keys/     the OpenVPN static keys, copied to the paths the generated keyfile names (/run/gen-lab-e2e)
#   resolv.conf, passwd, group   what the runner's /etc/resolv.conf, /etc/passwd, /etc/group show
# It then stays in the namespace (sleep) so the test can nsenter it; the test ends it by PID.
set -euo pipefail
dir=$1

# A private /run: NetworkManager's and systemd-resolved's runtime state, the private system bus
# at its default address /run/dbus/system_bus_socket, and the static keys.
mount -t tmpfs -o mode=0755 gen-lab-e2e-run /run
# (not /run/systemd/resolve: systemd-resolved creates it, owned by its user)
mkdir -p /run/dbus /run/NetworkManager /run/systemd /run/gen-lab-e2e
chmod 0700 /run/gen-lab-e2e
shopt -s nullglob
for key in "$dir"/keys/*.key; do
  install -m 0600 "$key" /run/gen-lab-e2e/
done
mount -t tmpfs -o mode=0700 gen-lab-e2e-nm /var/lib/NetworkManager

# The generated files, deployed as a rootfs overlay would put them.
mount --bind "$dir/rootfs/etc/NetworkManager/system-connections" /etc/NetworkManager/system-connections
mount --bind "$dir/rootfs/etc/NetworkManager/dispatcher.d" /etc/NetworkManager/dispatcher.d
# The boot script (its credentials step) and the tunnel keeper.
mount --bind "$dir/rootfs/usr/local/sbin" /usr/local/sbin
if [[ -d /etc/systemd ]]; then
  mount --bind "$dir/rootfs/etc/systemd" /etc/systemd
else
  # A machine without systemd has no /etc/systemd to mount on (and the test creates nothing on
  # the host): resolved also reads its drop-ins from /run/systemd/resolved.conf.d.
  mkdir -p /run/systemd/resolved.conf.d
  cp "$dir"/rootfs/etc/systemd/resolved.conf.d/*.conf /run/systemd/resolved.conf.d/
fi

# systemd-resolved drops privileges to the systemd-resolve user: visible in this namespace only.
mount --bind "$dir/passwd" /etc/passwd
mount --bind "$dir/group" /etc/group

# Name resolution of the runner goes to systemd-resolved's stub (as on a runner using resolved),
# and NetworkManager must never write the host's /etc/resolv.conf.
if [[ -L /etc/resolv.conf ]]; then
  target=$(readlink -m /etc/resolv.conf)
  case "$target" in
    /run/systemd/resolve/*) ;; # resolved writes its stub file there itself (this /run is private)
    /run/*)
      mkdir -p "$(dirname "$target")"
      touch "$target"
      mount --bind "$dir/resolv.conf" "$target"
      ;;
    *) mount --bind "$dir/resolv.conf" /etc/resolv.conf ;;
  esac
else
  mount --bind "$dir/resolv.conf" /etc/resolv.conf
fi

# NetworkManager leaves devices unmanaged while it waits for udev, unless /sys is read-only
# (then it assumes a container and manages them). This /sys is the one `ip netns exec` mounted
# for the runner namespace, private to this mount namespace.
mount -o remount,ro /sys

touch "$dir/ready"
exec sleep infinity
