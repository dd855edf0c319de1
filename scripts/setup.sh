#!/usr/bin/env bash
# Installs whatever qnet needs that is missing, then builds. Fast when nothing is missing.
# Run as root on Debian 12 (bookworm). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Host tools, and the shared libraries that the guest's binaries (qemu-ga, nft, iperf3) are packed with.
pkgs=(qemu-system-x86 iproute2 nftables dnsmasq-base busybox-static cpio kmod util-linux tcpdump gzip xz-utils
      libglib2.0-0 libnuma1 liburing2 libudev1 libssl3)
# Image nodes: qemu-img (overlays, checks), xorriso (cloud-init seeds), ssh (qnet ssh, keys), socat (VNC on a host
# port), OVMF (firmware: uefi); `qnet image create debian`: mmdebstrap, sfdisk, mkfs.ext4.
pkgs+=(qemu-utils xorriso openssh-client socat ovmf mmdebstrap fdisk e2fsprogs)
# `qnet graph --format svg`: Graphviz draws the DOT qnet renders.
pkgs+=(graphviz)
# Rootless labs (a user's, issue 34): pasta (package passt) carries nat networks and forwards; uidmap's
# newuidmap/newgidmap map the user's subordinate ids in a lab's user namespace (capture needs them).
pkgs+=(passt uidmap)
# `npm run bench` also measures the host's own veth-to-veth throughput with iperf3; `npm test` drives the web view
# in a real browser (Debian's chromium, headless, through puppeteer-core); user-mode-linux (Debian's 6.1 kernel as
# a process) is for test/uml/harness.ts, the test host of the kernel features this host may lack (netem, bridge VLAN
# filtering): test/e2e/uml-kernel.test.ts runs those tests in it when this kernel lacks them.
if [ "${1:-}" = --bench ]; then pkgs+=(iperf3); fi
# Multi-host tests (issue 33) simulate hosts with namespaces, each running Open vSwitch and OVN (`qnet host setup`)
# and its own sshd: openvswitch-switch, ovn-host, ovn-central, openssh-server; ethtool turns checksum offload off on
# the veths that OVS's userspace datapath reads.
ovs_pkgs=(openvswitch-switch ovn-host ovn-central openssh-server ethtool)
# slirp4netns: the rootless uplink where pasta is missing (doctor says which one a user's labs get; curl: the rootless
# e2e asks a forward from the host).
if [ "${1:-}" = --test ]; then pkgs+=(chromium user-mode-linux "${ovs_pkgs[@]}" slirp4netns curl); fi
need_pkgs=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: missing ${need_pkgs[*]}; run as root (apt-get install)" >&2; exit 1; fi
  echo "setup: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages must not start their daemons (OVS, OVN, sshd): tests start their own, in namespaces, and a daemon left
  # running on the machine is what the tests look for as a leak. A policy-rc.d that says no, for this install only.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null || { [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
  # Nor at the next boot (systemd enables them on install): only the services of what this run installed (an sshd
  # that was there before, such as the one a CI machine is reached by, is left alone).
  if [ -d /run/systemd/system ]; then
    units=()
    for p in "${need_pkgs[@]}"; do
      case $p in
        openvswitch-switch) units+=(openvswitch-switch ovs-vswitchd ovsdb-server) ;;
        ovn-host) units+=(ovn-host ovn-controller) ;;
        ovn-central) units+=(ovn-central ovn-northd ovn-ovsdb-server-nb ovn-ovsdb-server-sb) ;;
        openssh-server) units+=(ssh) ;;
      esac
    done
    for u in "${units[@]}"; do systemctl disable --now "$u" >/dev/null 2>&1 || true; done
  fi
elif ! apt-cache policy linux-image-amd64 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  # The guest kernel comes from Debian's archive: apt needs its package lists once.
  apt-get update -qq
fi

# Guests run as this unprivileged user.
id qnet >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin qnet

# Node dependencies and the build.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc -p .

# The built-in guest image (cached; rebuilt only when its inputs change).
node bin/qnet.js image build >/dev/null
