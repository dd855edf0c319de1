#!/bin/sh
# ifdown: stop the guests and dnsmasq, remove the namespace, the uplink and the host's firewall table for lab natlab, exported by `qnet export natlab --format sh`. Run as root.
set -u

cd /srv/lab
lab_pids() { grep -lxz QNET_LAB=natlab /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
# The lab's processes (guests and dnsmasq) by their marker: SIGTERM, up to 5 s to go, then SIGKILL.
pids=$(lab_pids)
if [ -n "$pids" ]; then
  kill $pids 2>/dev/null
  i=0; while [ -n "$(lab_pids)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  pids=$(lab_pids); [ -z "$pids" ] || kill -9 $pids 2>/dev/null
fi
# The host's firewall table and the uplink veth (its routes go with it), each only if it carries the lab's marker.
nft list table ip qnet-natlab 2>/dev/null | grep -q 'comment "qnet:lab=natlab"' && nft delete table ip qnet-natlab
[ "$(cat /sys/class/net/qn8bd33426/ifalias 2>/dev/null)" = qnet:lab=natlab ] && ip link delete qn8bd33426
if [ -f /run/qnet/host-forwarding.json ] && grep -q '[[,]"natlab"[],]' /run/qnet/host-forwarding.json; then
  sed -i 's/\([[,]\)"natlab",/\1/; s/\([[,]\)"natlab"]/\1]/; s/,]/]/' /run/qnet/host-forwarding.json
  if grep -q '"labs":\[]' /run/qnet/host-forwarding.json; then
    sed -n 's/.*"was":"\([^"]*\)".*/\1/p' /run/qnet/host-forwarding.json > /proc/sys/net/ipv4/ip_forward
    rm -f /run/qnet/host-forwarding.json
  fi
fi
# The namespace, and every link in it, if it is the lab's (its loopback carries the marker, or it is empty).
if [ -e /run/netns/qnet-natlab ]; then
  if [ "$(ip netns exec qnet-natlab cat /sys/class/net/lo/ifalias 2>/dev/null)" = qnet:lab=natlab ] || [ "$(ip -n qnet-natlab -o link show | wc -l)" -le 1 ]; then
    ip netns delete qnet-natlab
  else echo "ifdown.sh: namespace qnet-natlab does not carry lab natlab's marker; left alone" >&2; fi
fi
rm -f win/qemu.pid win/*.sock deb/qemu.pid deb/*.sock dnsmasq/*.pid dnsmasq/*.leases
echo "lab natlab removed"
exit 0
