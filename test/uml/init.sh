#!/bin/sh
# PID 1 of the User-Mode Linux test host (test/uml/harness.ts starts it). The host's root is read through hostfs,
# read-only; everything written inside lands in this UML's memory: an overlay with a tmpfs upper layer over the
# whole root (so /var/cache/qnet reads the host's images and saved states, and what qnet writes there stays here),
# fresh tmpfs on /run, /tmp and /var/lib/qnet. Only $QNET_UML_OUT, a directory the harness made on the host, is
# mounted writable: the job comes from it and the results go back through it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
out=/run/qnet-uml
if [ "${1:-}" != --inside ]; then
  mount -t proc proc /proc
  mount -t tmpfs -o mode=755 uml /run
  mods=/usr/lib/uml/modules/$(uname -r)
  insmod "$mods/kernel/fs/overlayfs/overlay.ko"
  mkdir -p /run/uml/upper /run/uml/work /run/uml/root
  mount -t overlay overlay -o lowerdir=/,upperdir=/run/uml/upper,workdir=/run/uml/work /run/uml/root || exec busybox poweroff -f
  r=/run/uml/root
  mount -t proc proc $r/proc
  mount -t sysfs sys $r/sys
  mount -t devtmpfs dev $r/dev
  mkdir -p $r/dev/pts $r/dev/shm
  mount -t devpts devpts $r/dev/pts
  mount -t tmpfs shm $r/dev/shm
  mount -t cgroup2 cgroup2 $r/sys/fs/cgroup
  mount -t tmpfs -o mode=755 run $r/run
  mount -t tmpfs -o mode=1777 tmp $r/tmp
  mkdir -p $r/var/lib/qnet && mount -t tmpfs -o mode=755 state $r/var/lib/qnet
  mkdir -p $r/lib/modules/$(uname -r) && mount --bind "$mods" $r/lib/modules/$(uname -r)
  mkdir -p $r$out && mount -t hostfs -o "$QNET_UML_OUT" hostfs $r$out
  exec chroot $r "$0" --inside
fi
echo "booted $(cut -d' ' -f1 /proc/uptime)" > $out/boot
hostname uml
ip link set lo up
for m in $(cat $out/modules 2>/dev/null); do modprobe "$m" || echo "modprobe $m failed" >&2; done
echo "modules $(cut -d' ' -f1 /proc/uptime)" >> $out/boot
uname -r > $out/kernel
cd "${QNET_UML_CWD:-/}"
timeout -k 10 "${QNET_UML_TIMEOUT:-600}" sh $out/job.sh > $out/stdout 2> $out/stderr
echo $? > $out/status.tmp
sync
mv $out/status.tmp $out/status
sync
exec busybox poweroff -f
