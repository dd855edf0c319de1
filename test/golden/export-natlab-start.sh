#!/bin/sh
# start: the guests (QEMU as the lab's own unprivileged uid, seccomp on) for lab natlab, exported by `qnet export natlab --format sh`. Run as root.
set -eu

cd /srv/lab
[ -e /run/netns/qnet-natlab ] || { echo "start.sh: namespace qnet-natlab does not exist: run ifup.sh first" >&2; exit 1; }
lab_pids() { grep -lxz QNET_LAB=natlab /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
for p in $(lab_pids); do if grep -qz '^QNET_NODE=' /proc/$p/environ 2>/dev/null; then echo "start.sh: guests of lab natlab are running already (ifdown.sh stops them)" >&2; exit 1; fi; done
# A failure stops the guests this script started (the network stays: ifdown.sh removes it).
trap 'rc=$?; [ $rc = 0 ] || for n in win deb; do [ -f "$n/qemu.pid" ] && kill "$(cat "$n/qemu.pid")" 2>/dev/null; rm -f "$n/qemu.pid"; done' EXIT

# win: 128 MiB, 1 NIC(s); console: socat - UNIX-CONNECT:/srv/lab/win/console.sock
chown 1900001000:1900001000 win && chmod 700 win && rm -f win/*.sock win/console.log
QNET_LAB=natlab QNET_NODE=win QNET_KIND=builtin nsenter --net=/run/netns/qnet-natlab -- unshare --mount --propagation private -- sh -c 'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"' qnet-guest 1900001000:1900001000 tcg setpriv --reuid=1900001000 --regid=1900001000 --clear-groups --no-new-privs -- qemu-system-x86_64 \
  -name win,debug-threads=off \
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
  -chardev socket,id=qmp,path=/srv/lab/win/qmp.sock,server=on,wait=off \
  -mon chardev=qmp,mode=control \
  -chardev socket,id=console,path=/srv/lab/win/console.sock,server=on,wait=off,logfile=/srv/lab/win/console.log,logappend=on \
  -serial chardev:console \
  -kernel /srv/lab/boot/vmlinux \
  -initrd /srv/lab/boot/initrd.img \
  -append console=ttyS0 \
  -device virtio-serial-pci,id=vser0,max_ports=2 \
  -chardev socket,id=control,path=/srv/lab/win/control.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=control,name=org.qnet.ctl \
  -chardev socket,id=agent,path=/srv/lab/win/agent.sock,server=on,wait=off \
  -device virtconsole,bus=vser0.0,chardev=agent \
  -fw_cfg name=opt/qnet/config,file=/srv/lab/win/guest.conf \
  -device virtio-balloon-pci,free-page-reporting=on \
  -device vmgenid,guid=auto \
  -netdev tap,id=net0,ifname=t-win-0,script=no,downscript=no \
  -device e1000,netdev=net0,mac=00:26:c6:21:cf:02,romfile= \
  > /srv/lab/win/qemu.log 2>&1 &
echo $! > win/qemu.pid

# deb: 128 MiB, 1 NIC(s); console: socat - UNIX-CONNECT:/srv/lab/deb/console.sock
chown 1900001000:1900001000 deb && chmod 700 deb && rm -f deb/*.sock deb/console.log
QNET_LAB=natlab QNET_NODE=deb QNET_KIND=builtin nsenter --net=/run/netns/qnet-natlab -- unshare --mount --propagation private -- sh -c 'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"' qnet-guest 1900001000:1900001000 tcg setpriv --reuid=1900001000 --regid=1900001000 --clear-groups --no-new-privs -- qemu-system-x86_64 \
  -name deb,debug-threads=off \
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
  -chardev socket,id=qmp,path=/srv/lab/deb/qmp.sock,server=on,wait=off \
  -mon chardev=qmp,mode=control \
  -chardev socket,id=console,path=/srv/lab/deb/console.sock,server=on,wait=off,logfile=/srv/lab/deb/console.log,logappend=on \
  -serial chardev:console \
  -kernel /srv/lab/boot/vmlinux \
  -initrd /srv/lab/boot/initrd.img \
  -append console=ttyS0 \
  -device virtio-serial-pci,id=vser0,max_ports=2 \
  -chardev socket,id=control,path=/srv/lab/deb/control.sock,server=on,wait=off \
  -device virtserialport,bus=vser0.0,chardev=control,name=org.qnet.ctl \
  -chardev socket,id=agent,path=/srv/lab/deb/agent.sock,server=on,wait=off \
  -device virtconsole,bus=vser0.0,chardev=agent \
  -fw_cfg name=opt/qnet/config,file=/srv/lab/deb/guest.conf \
  -device virtio-balloon-pci,free-page-reporting=on \
  -device vmgenid,guid=auto \
  -netdev tap,id=net0,ifname=t-deb-0,script=no,downscript=no \
  -device virtio-net-pci,netdev=net0,mac=52:54:00:c8:59:aa,romfile= \
  > /srv/lab/deb/qemu.log 2>&1 &
echo $! > deb/qemu.pid

# Wait until every guest has configured itself: it says READY (or ERROR) on its console; at most 120 s, as qnet.
for n in win deb; do
  i=0
  until grep -q "qnet: READY" "$n/console.log" 2>/dev/null; do
    if grep -q "qnet: ERROR" "$n/console.log" 2>/dev/null; then echo "start.sh: $n: $(tr -d '\r' < "$n/console.log" | grep "qnet: ERROR" | head -n 1)" >&2; exit 1; fi
    kill -0 "$(cat "$n/qemu.pid")" 2>/dev/null || { echo "start.sh: $n: QEMU exited:" >&2; tail -n 5 "$n/qemu.log" >&2; exit 1; }
    [ $i -lt 1200 ] || { echo "start.sh: $n is not configured after 120 s (see $n/console.log)" >&2; exit 1; }
    i=$((i+1)); sleep 0.1
  done
done
trap - EXIT
echo "started 2 guest(s), each configured; their consoles are /srv/lab/NODE/console.sock"
