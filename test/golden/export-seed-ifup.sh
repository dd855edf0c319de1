#!/bin/sh
# ifup: the namespace, bridges and taps for lab seed, exported by `qnet export seed --format sh`. Run as root.
set -eu

cd /srv/lab
[ "$(id -u)" = 0 ] || { echo "ifup.sh: run it as root" >&2; exit 1; }
for c in ip; do command -v "$c" >/dev/null || { echo "ifup.sh: $c is not installed" >&2; exit 1; }; done
if [ -e /run/netns/qnet-seed ]; then echo "ifup.sh: namespace qnet-seed exists: lab seed is up already (ifdown.sh, or qnet down seed, removes it)" >&2; exit 1; fi

ip netns add qnet-seed
# From here on, a failure undoes everything made so far (ifdown.sh) and says where it failed.
at=start; hint=
trap 'rc=$?; [ $rc = 0 ] || { echo "ifup.sh failed at: $at${hint:+ ($hint)}; undoing it (ifdown.sh)" >&2; sh ./ifdown.sh >&2; }' EXIT

# IPv6 off in the namespace, as qnet up does: its bridges and taps send no router solicitations of their own
ip netns exec qnet-seed sysctl -qew net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
at="the bridges and taps"

# the namespace's loopback: up, and marked as the lab's
ip -n qnet-seed link set dev lo alias qnet:lab=seed up

# lan: the L2 switch; host side 192.168.1.100/24 with MAC 02:15:2b:fa:60:44, which the guests are told (no ARP needed)
ip -n qnet-seed link add name kbr0 type bridge stp_state 0 forward_delay 0
ip -n qnet-seed link set dev kbr0 alias qnet:lab=seed address 02:15:2b:fa:60:44
ip -n qnet-seed addr add 192.168.1.100/24 dev kbr0

# deb1 eth1: a tap owned by the lab's uid 1900001000, a port of kbr0
ip -n qnet-seed tuntap add dev ktap1 mode tap user 1900001000
ip -n qnet-seed link set dev ktap1 alias qnet:lab=seed master kbr0 up

# deb2 eth0: a tap owned by the lab's uid 1900001000, a port of kbr0
ip -n qnet-seed tuntap add dev ktap2 mode tap user 1900001000
ip -n qnet-seed link set dev ktap2 alias qnet:lab=seed master kbr0 up

# deb3 eth0: a tap owned by the lab's uid 1900001000, a port of kbr0
ip -n qnet-seed tuntap add dev ktap3 mode tap user 1900001000
ip -n qnet-seed link set dev ktap3 alias qnet:lab=seed master kbr0 up

# the bridges up, once their ports are in
ip -n qnet-seed link set dev kbr0 up

# the host side knows each guest's static address without ARP, as each guest knows the host side's
ip -n qnet-seed neigh replace 192.168.1.254 lladdr de:ad:be:ef:00:01 dev kbr0 nud permanent
ip -n qnet-seed neigh replace 192.168.1.2 lladdr de:ad:be:ef:00:02 dev kbr0 nud permanent
ip -n qnet-seed neigh replace 192.168.1.3 lladdr de:ad:be:ef:00:03 dev kbr0 nud permanent

# each guest's MAC tied to its bridge port: a silent guest's first frames are not flooded to every port
ip netns exec qnet-seed bridge fdb replace de:ad:be:ef:00:01 dev ktap1 master static
ip netns exec qnet-seed bridge fdb replace de:ad:be:ef:00:02 dev ktap2 master static
ip netns exec qnet-seed bridge fdb replace de:ad:be:ef:00:03 dev ktap3 master static

trap - EXIT
echo "lab seed: network up in namespace qnet-seed; start.sh starts the guests"
