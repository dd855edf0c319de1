#!/bin/sh
# ifdown: stop the guests, remove the namespace for lab seed, exported by `qnet export seed --format sh`. Run as root.
set -u

cd /srv/lab
lab_pids() { grep -lxz QNET_LAB=seed /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
# The lab's processes (guests) by their marker: SIGTERM, up to 5 s to go, then SIGKILL.
pids=$(lab_pids)
if [ -n "$pids" ]; then
  kill $pids 2>/dev/null
  i=0; while [ -n "$(lab_pids)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  pids=$(lab_pids); [ -z "$pids" ] || kill -9 $pids 2>/dev/null
fi
# The namespace, and every link in it, if it is the lab's (its loopback carries the marker, or it is empty).
if [ -e /run/netns/qnet-seed ]; then
  if [ "$(ip netns exec qnet-seed cat /sys/class/net/lo/ifalias 2>/dev/null)" = qnet:lab=seed ] || [ "$(ip -n qnet-seed -o link show | wc -l)" -le 1 ]; then
    ip netns delete qnet-seed
  else echo "ifdown.sh: namespace qnet-seed does not carry lab seed's marker; left alone" >&2; fi
fi
rm -f deb1/qemu.pid deb1/*.sock deb2/qemu.pid deb2/*.sock deb3/qemu.pid deb3/*.sock
echo "lab seed removed"
exit 0
