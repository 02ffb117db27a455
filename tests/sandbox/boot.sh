#!/bin/sh
# Boot a throwaway systemd as PID 1 of fresh pid + mount namespaces (run under
# `unshare --mount --pid --fork --propagation private --kill-child`).
# $1: an empty directory to become the root (a tmpfs is mounted on it);
# $2: a directory of unit files and node files, copied over the new root.
# The one rule that keeps the host safe (shared/docs/real-systemd-for-tests.md): the sandbox
# sees only the units copied in, every one says DefaultDependencies=no, and its root is a tmpfs.
set -eu
N=$1
SRC=$2
mount -t tmpfs tmpfs "$N"
cd "$N"
mkdir -p usr etc proc sys dev run tmp var/lib var/log var/tmp root .ovl/upper .ovl/work .ovl/uupper .ovl/uwork .old
ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
# /usr as an overlay (not the recipe's read-only bind) so the node's own units in
# /usr/lib/systemd/system and its /usr/bin/kubelet can be placed; writes land in the tmpfs.
mount -t overlay overlay -o lowerdir=/usr,upperdir="$N/.ovl/uupper",workdir="$N/.ovl/uwork" usr
mount -t overlay overlay -o lowerdir=/etc,upperdir="$N/.ovl/upper",workdir="$N/.ovl/work" etc
mount --rbind /dev dev
mount --rbind /sys sys
mount -t tmpfs tmpfs etc/systemd/system
# The node's own files (units, drop-ins, env files, configs) on top of the new root.
cp -a "$SRC"/. "$N"/
pivot_root . .old
mount -t proc proc /proc
umount -l /.old
exec /lib/systemd/systemd --system --unit=sandbox.target --log-target=null
