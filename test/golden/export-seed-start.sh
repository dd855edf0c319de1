#!/bin/sh
# start: the guests (QEMU as the lab's own unprivileged uid, seccomp on) for lab seed, exported by `qnet export seed --format sh`. Run as root.
set -eu

cd /srv/lab
[ -e /run/netns/qnet-seed ] || { echo "start.sh: namespace qnet-seed does not exist: run ifup.sh first" >&2; exit 1; }
lab_pids() { grep -lxz QNET_LAB=seed /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
for p in $(lab_pids); do if grep -qz '^QNET_NODE=' /proc/$p/environ 2>/dev/null; then echo "start.sh: guests of lab seed are running already (ifdown.sh stops them)" >&2; exit 1; fi; done
# A failure stops the guests this script started (the network stays: ifdown.sh removes it).
trap 'rc=$?; [ $rc = 0 ] || for n in deb1 deb2 deb3; do [ -f "$n/qemu.pid" ] && kill "$(cat "$n/qemu.pid")" 2>/dev/null; rm -f "$n/qemu.pid"; done' EXIT

# deb1: 128 MiB, 2 NIC(s); console: socat - UNIX-CONNECT:/srv/lab/deb1/console.sock
chown 1900001000:1900001000 deb1 && chmod 700 deb1 && rm -f deb1/*.sock deb1/console.log
QNET_LAB=seed QNET_NODE=deb1 QNET_KIND=builtin nsenter --net=/run/netns/qnet-seed -- unshare --mount --propagation private -- sh -c 'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"' qnet-guest 1900001000:1900001000 tcg setpriv --reuid=1900001000 --regid=1900001000 --clear-groups --no-new-privs -- qemu-system-x86_64 \
  -name deb1,debug-threads=off \
  -machine q35 \
  -accel tcg,tb-size=32 \
  -cpu max,erms=off \
  -smp 1 \
  -m 128 \
  -nodefaults \
  -no-user-config \
  -display none \
  -no-reboot \
  -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
  -chardev socket,id=qmp,path=/srv/lab/deb1/qmp.sock,server=on,wait=off \
  -mon chardev=qmp,mode=control \
  -chardev socket,id=console,path=/srv/lab/deb1/console.sock,server=on,wait=off,logfile=/srv/lab/deb1/console.log,logappend=on \
  -serial chardev:console \
  -kernel /srv/lab/boot/vmlinux \
  -initrd /srv/lab/boot/initrd.img \
  -append console=ttyS0 \
  -device virtio-serial-pci,id=vser0,max_ports=2 \
  -chardev socket,id=control,path=/srv/lab/deb1/control.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=control,name=org.qnet.ctl \
  -chardev socket,id=agent,path=/srv/lab/deb1/agent.sock,server=on,wait=off \
  -device virtconsole,bus=vser0.0,chardev=agent \
  -fw_cfg name=opt/qnet/config,file=/srv/lab/deb1/guest.conf \
  -device virtio-balloon-pci,free-page-reporting=on \
  -device vmgenid,guid=auto \
  -fw_cfg name=opt/qnet/nft,file=/srv/lab/deb1/router.nft \
  -netdev user,id=net0,net=10.0.2.0/24 \
  -device e1000,netdev=net0,mac=52:54:00:74:fc:cf,romfile= \
  -netdev tap,id=net1,ifname=ktap1,script=no,downscript=no \
  -device e1000,netdev=net1,mac=de:ad:be:ef:00:01,romfile= \
  > /srv/lab/deb1/qemu.log 2>&1 &
echo $! > deb1/qemu.pid

# deb2: 128 MiB, 1 NIC(s); console: socat - UNIX-CONNECT:/srv/lab/deb2/console.sock
chown 1900001000:1900001000 deb2 && chmod 700 deb2 && rm -f deb2/*.sock deb2/console.log
QNET_LAB=seed QNET_NODE=deb2 QNET_KIND=builtin nsenter --net=/run/netns/qnet-seed -- unshare --mount --propagation private -- sh -c 'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"' qnet-guest 1900001000:1900001000 tcg setpriv --reuid=1900001000 --regid=1900001000 --clear-groups --no-new-privs -- qemu-system-x86_64 \
  -name deb2,debug-threads=off \
  -machine q35 \
  -accel tcg,tb-size=32 \
  -cpu max,erms=off \
  -smp 1 \
  -m 128 \
  -nodefaults \
  -no-user-config \
  -display none \
  -no-reboot \
  -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
  -chardev socket,id=qmp,path=/srv/lab/deb2/qmp.sock,server=on,wait=off \
  -mon chardev=qmp,mode=control \
  -chardev socket,id=console,path=/srv/lab/deb2/console.sock,server=on,wait=off,logfile=/srv/lab/deb2/console.log,logappend=on \
  -serial chardev:console \
  -kernel /srv/lab/boot/vmlinux \
  -initrd /srv/lab/boot/initrd.img \
  -append console=ttyS0 \
  -device virtio-serial-pci,id=vser0,max_ports=2 \
  -chardev socket,id=control,path=/srv/lab/deb2/control.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=control,name=org.qnet.ctl \
  -chardev socket,id=agent,path=/srv/lab/deb2/agent.sock,server=on,wait=off \
  -device virtconsole,bus=vser0.0,chardev=agent \
  -fw_cfg name=opt/qnet/config,file=/srv/lab/deb2/guest.conf \
  -device virtio-balloon-pci,free-page-reporting=on \
  -device vmgenid,guid=auto \
  -netdev tap,id=net0,ifname=ktap2,script=no,downscript=no \
  -device e1000,netdev=net0,mac=de:ad:be:ef:00:02,romfile= \
  > /srv/lab/deb2/qemu.log 2>&1 &
echo $! > deb2/qemu.pid

# deb3: 128 MiB, 1 NIC(s); console: socat - UNIX-CONNECT:/srv/lab/deb3/console.sock
chown 1900001000:1900001000 deb3 && chmod 700 deb3 && rm -f deb3/*.sock deb3/console.log
QNET_LAB=seed QNET_NODE=deb3 QNET_KIND=builtin nsenter --net=/run/netns/qnet-seed -- unshare --mount --propagation private -- sh -c 'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"' qnet-guest 1900001000:1900001000 tcg setpriv --reuid=1900001000 --regid=1900001000 --clear-groups --no-new-privs -- qemu-system-x86_64 \
  -name deb3,debug-threads=off \
  -machine q35 \
  -accel tcg,tb-size=32 \
  -cpu max,erms=off \
  -smp 1 \
  -m 128 \
  -nodefaults \
  -no-user-config \
  -display none \
  -no-reboot \
  -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny \
  -chardev socket,id=qmp,path=/srv/lab/deb3/qmp.sock,server=on,wait=off \
  -mon chardev=qmp,mode=control \
  -chardev socket,id=console,path=/srv/lab/deb3/console.sock,server=on,wait=off,logfile=/srv/lab/deb3/console.log,logappend=on \
  -serial chardev:console \
  -kernel /srv/lab/boot/vmlinux \
  -initrd /srv/lab/boot/initrd.img \
  -append console=ttyS0 \
  -device virtio-serial-pci,id=vser0,max_ports=2 \
  -chardev socket,id=control,path=/srv/lab/deb3/control.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=control,name=org.qnet.ctl \
  -chardev socket,id=agent,path=/srv/lab/deb3/agent.sock,server=on,wait=off \
  -device virtconsole,bus=vser0.0,chardev=agent \
  -fw_cfg name=opt/qnet/config,file=/srv/lab/deb3/guest.conf \
  -device virtio-balloon-pci,free-page-reporting=on \
  -device vmgenid,guid=auto \
  -netdev tap,id=net0,ifname=ktap3,script=no,downscript=no \
  -device e1000,netdev=net0,mac=de:ad:be:ef:00:03,romfile= \
  > /srv/lab/deb3/qemu.log 2>&1 &
echo $! > deb3/qemu.pid

# Wait until every guest has configured itself: it says READY (or ERROR) on its console; at most 120 s, as qnet.
for n in deb1 deb2 deb3; do
  i=0
  until grep -q "qnet: READY" "$n/console.log" 2>/dev/null; do
    if grep -q "qnet: ERROR" "$n/console.log" 2>/dev/null; then echo "start.sh: $n: $(tr -d '\r' < "$n/console.log" | grep "qnet: ERROR" | head -n 1)" >&2; exit 1; fi
    kill -0 "$(cat "$n/qemu.pid")" 2>/dev/null || { echo "start.sh: $n: QEMU exited:" >&2; tail -n 5 "$n/qemu.log" >&2; exit 1; }
    [ $i -lt 1200 ] || { echo "start.sh: $n is not configured after 120 s (see $n/console.log)" >&2; exit 1; }
    i=$((i+1)); sleep 0.1
  done
done
trap - EXIT
echo "started 3 guest(s), each configured; their consoles are /srv/lab/NODE/console.sock"
