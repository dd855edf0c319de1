#!/bin/sh
# ifup: the namespace, bridges and taps, the uplink, the host's firewall table and forwarding, dnsmasq for lab natlab, exported by `qnet export natlab --format sh`. Run as root.
set -eu

cd /srv/lab
[ "$(id -u)" = 0 ] || { echo "ifup.sh: run it as root" >&2; exit 1; }
for c in ip nft dnsmasq; do command -v "$c" >/dev/null || { echo "ifup.sh: $c is not installed" >&2; exit 1; }; done
if [ -e /run/netns/qnet-natlab ]; then echo "ifup.sh: namespace qnet-natlab exists: lab natlab is up already (ifdown.sh, or qnet down natlab, removes it)" >&2; exit 1; fi
id -u qnet >/dev/null 2>&1 || { echo "ifup.sh: user qnet does not exist; dnsmasq runs as it: useradd --system --no-create-home --shell /usr/sbin/nologin qnet" >&2; exit 1; }

# The uplink /30 (chosen free when this was exported) and the nat and routed subnets must be free on this host,
# as `qnet up` requires: an address in them or a route to them (other than the default) would clash.
for net in 100.64.66.100/30 172.16.1.0/24; do
  clash=$(ip -o -4 addr show to "$net"; ip -4 route show table main root "$net"; ip -4 route show table main match "$net" | grep -v "^default" || true)
  [ -z "$clash" ] || { printf 'ifup.sh: this host already has %s, which overlaps %s (another lab? qnet status); nothing was made (export again here to choose another uplink)\n' "$clash" "$net" >&2; exit 1; }
done

ip netns add qnet-natlab
# From here on, a failure undoes everything made so far (ifdown.sh) and says where it failed.
at=start; hint=
trap 'rc=$?; [ $rc = 0 ] || { echo "ifup.sh failed at: $at${hint:+ ($hint)}; undoing it (ifdown.sh)" >&2; sh ./ifdown.sh >&2; }' EXIT

# IPv6 off in the namespace, as qnet up does: its bridges and taps send no router solicitations of their own
ip netns exec qnet-natlab sysctl -qew net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
at="the bridges and taps"

# the namespace's loopback: up, and marked as the lab's
ip -n qnet-natlab link set dev lo alias qnet:lab=natlab up

# lan: the L2 switch; host side 172.16.1.1/24 with MAC 02:3b:64:ce:41:3d, which the guests are told (no ARP needed)
ip -n qnet-natlab link add name br0 type bridge stp_state 0 forward_delay 0
ip -n qnet-natlab link set dev br0 alias qnet:lab=natlab address 02:3b:64:ce:41:3d
ip -n qnet-natlab addr add 172.16.1.1/24 dev br0

# win eth0: a tap owned by the lab's uid 1900001000, a port of br0
ip -n qnet-natlab tuntap add dev t-win-0 mode tap user 1900001000
ip -n qnet-natlab link set dev t-win-0 alias qnet:lab=natlab master br0 up

# deb eth0: a tap owned by the lab's uid 1900001000, a port of br0
ip -n qnet-natlab tuntap add dev t-deb-0 mode tap user 1900001000
ip -n qnet-natlab link set dev t-deb-0 alias qnet:lab=natlab master br0 up

# the bridges up, once their ports are in
ip -n qnet-natlab link set dev br0 up

# each guest's MAC tied to its bridge port: a silent guest's first frames are not flooded to every port
ip netns exec qnet-natlab bridge fdb replace 00:26:c6:21:cf:02 dev t-win-0 master static
ip netns exec qnet-natlab bridge fdb replace 52:54:00:c8:59:aa dev t-deb-0 master static

at="the guard rules"
# anti-spoofing and the DHCP guard on the bridges (a table in the lab namespace: it goes with it)
ip netns exec qnet-natlab nft -f - <<'EOF'
table bridge qnet {
  chain guard {
    type filter hook prerouting priority filter; policy accept;
    # win eth0
    iifname "t-win-0" ether saddr != 00:26:c6:21:cf:02 drop
    iifname "t-win-0" ether type arp arp saddr ether != 00:26:c6:21:cf:02 drop
    iifname "t-win-0" ether type arp arp saddr ip != { 0.0.0.0, 172.16.1.2 } drop
    iifname "t-win-0" ether type ip ip saddr != { 0.0.0.0, 172.16.1.2 } drop
    iifname "t-win-0" ether type ip udp sport 67 drop
    # deb eth0
    iifname "t-deb-0" ether saddr != 52:54:00:c8:59:aa drop
    iifname "t-deb-0" ether type arp arp saddr ether != 52:54:00:c8:59:aa drop
    iifname "t-deb-0" ether type arp arp saddr ip != { 0.0.0.0, 172.16.1.0/24 } drop
    iifname "t-deb-0" ether type ip ip saddr != { 0.0.0.0, 172.16.1.0/24 } drop
    iifname "t-deb-0" ether type ip udp sport 67 drop
  }
}
EOF

at="the uplink"
# the uplink: veth qn8bd33426 (host, 100.64.66.101) <-> uplink (lab, 100.64.66.102), marked; routes to the nat and routed subnets go with it
ip link add name qn8bd33426 type veth peer name uplink netns qnet-natlab
ip link set dev qn8bd33426 alias qnet:lab=natlab
ip addr add 100.64.66.101/30 dev qn8bd33426
ip link set dev qn8bd33426 up
ip -n qnet-natlab addr add 100.64.66.102/30 dev uplink
ip -n qnet-natlab link set dev uplink alias qnet:lab=natlab
ip -n qnet-natlab link set dev uplink up
ip -n qnet-natlab route add default via 100.64.66.101 dev uplink
ip route add 172.16.1.0/24 via 100.64.66.102 dev qn8bd33426
ip netns exec qnet-natlab sysctl -qw net.ipv4.ip_forward=1

# IPv4 forwarding on the host, in qnet's ledger: on if it was off, and off again when the last lab that needed it goes
if [ -f /run/qnet/host-forwarding.json ]; then
  grep -q '[[,]"natlab"[],]' /run/qnet/host-forwarding.json || sed -i 's/"labs":\[/&"natlab",/; s/,]/]/' /run/qnet/host-forwarding.json
  echo 1 > /proc/sys/net/ipv4/ip_forward
elif [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]; then
  mkdir -p -m 711 /run/qnet
  printf '{"was":"%s","labs":["natlab"]}\n' "$(cat /proc/sys/net/ipv4/ip_forward)" > /run/qnet/host-forwarding.json
  echo 1 > /proc/sys/net/ipv4/ip_forward
fi

at="the host firewall table ip qnet-natlab"
# forwarding to and from the uplink, masquerade of the nat subnets, the port forwards (one nft transaction)
nft -f - <<'EOF'
table ip qnet-natlab {
  comment "qnet:lab=natlab"
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "qn*" oifname "qn8bd33426" drop
    iifname "qn8bd33426" oifname "qn*" drop
    iifname "qn8bd33426" accept
    oifname "qn8bd33426" ct state established,related accept
    oifname "qn8bd33426" ct status dnat accept
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr { 172.16.1.0/24 } oifname != "qn8bd33426" masquerade
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname != "qn8bd33426" fib daddr type local tcp dport 8080 dnat to 172.16.1.2:80
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 172.16.1.2:80
  }
}
EOF

at=dnsmasq
# dnsmasq: DHCP and DNS on each such network's bridge only, as user qnet, marked; its files in dnsmasq/
chown qnet: dnsmasq && chmod 700 dnsmasq
rm -f dnsmasq/*.leases dnsmasq/*.pid
QNET_LAB=natlab QNET_SERVICE=dnsmasq:lan nsenter --net=/run/netns/qnet-natlab -- dnsmasq --conf-file=/srv/lab/dnsmasq/lan.conf --pid-file=/srv/lab/dnsmasq/lan.pid

trap - EXIT
echo "lab natlab: network up in namespace qnet-natlab; start.sh starts the guests"
