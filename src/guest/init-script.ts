// The built-in guest's boot scripts (pure text): /init, the sysinit step that applies the node's
// configuration from fw_cfg, busybox init's inittab, and the control-channel loop.

/** Name of the virtio-serial port that carries readiness and control messages. */
export const CONTROL_PORT = 'org.qnet.ctl';
/** The guest agent's line: the virtio console port (a tty, see renderQemuArgs). */
export const AGENT_TTY = '/dev/hvc0';
/** fw_cfg item that carries the node's configuration. */
export const FW_CFG_NAME = 'opt/qnet/config';
/** fw_cfg item that carries a router node's nftables ruleset. */
export const FW_CFG_NFT = 'opt/qnet/nft';

/** /init: mounts the basics and hands over to busybox init (PID 1). */
export const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
mkdir -p /dev/pts /run /tmp /var/run
mount -t devpts devpts /dev/pts
exec /sbin/init
`;

/** /etc/inittab: configuration at sysinit, a root shell on the serial console, clean power-off. */
export const INITTAB = `::sysinit:/etc/qnet/boot
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/poweroff -f
::shutdown:/bin/umount -a -r
`;

/** The udhcpc script: applies a lease (address, router, DNS, search domain) to the interface. */
export const UDHCPC = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    cur=$(ip -4 -o addr show dev "$interface" | awk '{print $4}')
    if [ "$cur" != "$ip/$mask" ]; then ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface"; fi
    if [ -n "$router" ]; then
      ip route del default dev "$interface" 2>/dev/null
      for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
exit 0
`;

/**
 * Stands in for a binary kept compressed in the image (@BUNDLE@ and @BIN@ are filled in by the image builder):
 * unpacks /usr/lib/qnet/@BUNDLE@.tar.xz under /run on first use, one unpacker at a time (mkdir is the lock),
 * then runs the binary with the bundle's libraries.
 */
export const LAZY_WRAPPER = `#!/bin/sh
d=/run/qnet-lazy/@BUNDLE@
n=0
until [ -e "$d/.ready" ]; do
  mkdir -p /run/qnet-lazy
  if mkdir "$d" 2>/dev/null; then
    if xz -dc /usr/lib/qnet/@BUNDLE@.tar.xz | tar -x -C "$d"; then : > "$d/.ready"; else rm -rf "$d"; echo "@BIN@: cannot unpack /usr/lib/qnet/@BUNDLE@.tar.xz" >&2; exit 127; fi
  else
    n=$((n+1)); [ $n -le 600 ] || { echo "@BIN@: $d is not ready" >&2; exit 127; }
    usleep 100000
  fi
done
LD_LIBRARY_PATH="$d/lib" exec "$d/bin/@BIN@" "$@"
`;

/**
 * What a built-in guest waiting at its snapshot point is told: "resume EPOCH" (this host's clock, in seconds), its
 * configuration up to "end", its `host` lines moved after it as /etc/hosts lines ("end BYTES", then BYTES of them).
 * The guest's shell reads a line one byte per system call and appends a name with an open and a close: every guest
 * knows every node's name, so that cost grew with the lab's size in every guest; one `head -c` copies them at once.
 * 250 guests up, `qnet up` as typed, taken in turn: QEMU CPU per guest 0.86 and 0.93 s -> 0.59 and 0.73 s, the whole
 * up 118.8 and 133.0 s -> 85.0 and 108.9 s. (head reads ahead of what it prints: nothing else may follow on the
 * port until the guest says READY, and qnet sends nothing there before it.)
 */
export function renderResumeMessage(config: string, epoch: number): string {
  const lines = config.split('\n').filter((l) => l !== '');
  const hosts = lines.filter((l) => l.startsWith('host ')).map((l) => {
    const [, name, ip] = l.split(' ');
    return `${ip} ${name}\n`;
  });
  const rest = lines.filter((l) => !l.startsWith('host '));
  const names = hosts.join('');
  // Without its last newline: the control channel ends what it sends with one.
  return [`resume ${epoch}`, ...rest, ...(names ? [`end ${Buffer.byteLength(names)}`, names.slice(0, -1)] : ['end'])].join('\n');
}

/** /etc/profile for the console shell. */
export const PROFILE = `export PS1='\\h:\\w# '
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
`;

/**
 * /etc/qnet/boot: reads the node's configuration (one directive a line, every value validated on the
 * host) from fw_cfg, loads the drivers it names, names and addresses the NICs, then reports READY on
 * the control port and serves it. The values are never evaluated by the shell, only passed as arguments.
 */
export const BOOT = `#!/bin/sh
PATH=/sbin:/usr/sbin:/bin:/usr/bin
export PATH
load() {
  for m in $(cat "/lib/modules/order/$1" 2>/dev/null); do
    [ -d "/sys/module/$m" ] || insmod "/lib/modules/$m.ko" 2>/dev/null
  done
}
# A write to the control port blocks while no host is connected: never let it hold up the boot.
# Once the host has spoken on the port (SYNC), it is connected: then the line is written directly, no process between.
say() { echo "qnet: $*" > /dev/ttyS0; [ -n "$CTL" ] || return 0; if [ -n "$SYNC" ]; then echo "$*" >&3; else { echo "$*" >&3 & }; fi; }
load virtio_pci
load virtio_console
load qemu_fw_cfg
# Free page reporting: the balloon device hands what the guest frees back to the host, in blocks of 128 KiB.
# Linux 6.1 sets the block order to 9 (2 MiB) when the driver registers, and reports only while a zone has 32
# free blocks of that order above its low watermark (64 MiB): never, in a guest of this size.
load virtio_balloon
echo 5 > /sys/module/page_reporting/parameters/page_reporting_order 2>/dev/null
# The control port and the agent's console. The driver adds the ports, and names them, as QEMU's main loop answers
# it, which can be after its module has loaded: a guest that looked once found no control port when its QEMU's
# main loop waited for the CPU (4 guests' QEMUs on the one CPU of User-Mode Linux), never opened it and never said
# READY. Look until both are there: every 50 ms, at most 30 s (found at the first look as a rule).
ports() {
  n=0
  while :; do
    for p in "$1"/*; do
      case "$(cat "$p/name" 2>/dev/null)" in
        ${CONTROL_PORT}) CTL="/dev/\${p##*/}" ;;
      esac
    done
    [ -n "$CTL" ] && [ -c "$2" ] && return 0
    [ $n -ge 600 ] && return 1
    usleep 50000; n=$((n+1))
  done
}
CTL=
ports /sys/class/virtio-ports ${AGENT_TTY}
# The guest agent first: \`qnet exec\` works even when the node's configuration fails.
[ -c ${AGENT_TTY} ] && qemu-ga -m isa-serial -p ${AGENT_TTY} -t /run -f /run/qemu-ga.pid -d
[ -n "$CTL" ] && exec 3<>"$CTL"
CFG=/sys/firmware/qemu_fw_cfg/by_name/${FW_CFG_NAME}/raw
if [ ! -r "$CFG" ]; then say "ERROR no configuration in fw_cfg"; exit 0; fi
mkdir -p /etc/qnet
cp "$CFG" /etc/qnet/config
fail=0
# Drivers, then each NIC renamed by its MAC to qn<position in the configuration> (through that temporary name,
# swaps cannot collide): everything up to here is the same for every node of the same shape.
while read -r kind a b c; do
  [ "$kind" = module ] && load "$a"
done < /etc/qnet/config
i=0
while read -r kind a b c; do
  [ "$kind" = nic ] || continue
  dev=
  for n in /sys/class/net/*; do
    [ "$(cat "$n/address")" = "$a" ] && dev="\${n##*/}"
  done
  if [ -z "$dev" ]; then say "ERROR no NIC with MAC $a"; fail=1; continue; fi
  ip link set "$dev" down
  ip link set "$dev" name "qn$i" && i=$((i+1))
done < /etc/qnet/config
# Then their names: eth<position>, the same for every node of the shape, so given before the snapshot point.
i=0
while read -r kind a b c; do
  [ "$kind" = nic ] || continue
  ip link set "qn$i" name "$b" || { say "ERROR cannot name qn$i $b"; fail=1; }
  i=$((i+1))
done < /etc/qnet/config
# Loopback and the idle loop's FIFO: the same for every node, so made before the snapshot point (each program a
# restored guest starts costs it 10-70 ms of CPU under TCG).
ip link set lo up
mkfifo /run/qnet-idle
# Whether the configuration has this line (a loop of builtins: grep would be a program started).
has() { while read -r l; do [ "$l" = "$1" ] && return 0; done < /etc/qnet/config; return 1; }
# From here on a restored guest runs with its translation cache empty, and each program it starts costs: shell
# builtins wherever they do (read instead of cat, /proc instead of hostname).
# Hostname, then each NIC (by its name, the same for every node of the shape) gets this node's MAC.
configure() {
  while read -r kind a b c; do
    case "$kind" in
      hostname) echo "$a" > /proc/sys/kernel/hostname; echo "$a" > /etc/hostname; echo "127.0.1.1 $a" >> /etc/hosts; HOST=$a ;;
    esac
  done < /etc/qnet/config
  while read -r kind a b c; do
    [ "$kind" = nic ] || continue
    m=; read -r m < "/sys/class/net/$b/address"
    # One ip for both (its own MAC, then up): one program fewer per NIC.
    if [ "$m" != "$a" ]; then ip link set "$b" address "$a" up || fail=1; else ip link set "$b" up || fail=1; fi
  done < /etc/qnet/config
  # "Ready" means the network is usable: wait (bounded) for each NIC's carrier (e1000 negotiates its link).
  while read -r kind a b c; do
    [ "$kind" = nic ] || continue
    n=0
    while :; do cr=; read -r cr < "/sys/class/net/$b/carrier" 2>/dev/null; [ "$cr" = 1 ] || [ $n -ge 200 ] && break; usleep 50000; n=$((n+1)); done
  done < /etc/qnet/config
  # Pass 3: addresses and routes.
  while read -r kind a b c; do
    case "$kind" in
      addr) ip addr add "$b" dev "$a" || fail=1 ;;
      # udhcpc gives up after three unanswered requests (1 s apart): a LAN server that stalls (dnsmasq while it
      # ping-checks another address) would fail the lease; a fresh udhcpc, a few times over, rides that out.
      dhcp) ok=0; for t in 1 2 3 4 5 6; do udhcpc -i "$a" -t 10 -T 1 -A 1 -n -x "hostname:$HOST" -s /etc/qnet/udhcpc >/dev/null 2>&1 && { ok=1; break; }; done
        [ "$ok" = 1 ] || { say "ERROR no DHCP lease on $a"; fail=1; } ;;
      arp) arp -s "$a" "$b" || fail=1 ;;
      vlan) ip link add link "$a" name "$a.$b" type vlan id "$b" && ip link set "$a.$b" up || fail=1 ;;
      route) ip route add "$a" via "$b" || fail=1 ;;
      host) echo "$b $a" >> /etc/hosts ;;
      dns) echo "nameserver $a" >> /etc/resolv.conf ;;
      sysctl) sysctl -q -w "$a=$b" || fail=1 ;;
      nft) nft -f /sys/firmware/qemu_fw_cfg/by_name/${FW_CFG_NFT}/raw || fail=1 ;;
    esac
  done < /etc/qnet/config
  read -r up rest < /proc/uptime
  if [ "$fail" = 0 ]; then say "READY $HOST $up"; else say "ERROR configuration failed"; fi
  # The control loop serves the port from now on.
  echo go > /run/qnet-idle
}
# The control loop, forked here (before the snapshot point, so a restored guest forks one process fewer): it waits
# on the idle FIFO until the configuration is applied, then serves the port. The host sends one command a line;
# EOF means the host is not connected. The pause between looks is a read with a timeout on that FIFO, which never
# speaks again: a builtin, so an idle guest forks nothing. It doubles while nobody speaks, up to 30 s (qnet itself
# says nothing here after READY): a look every second cost an idle guest 0.2 % of a host core under TCG, more than
# everything else it does (measured: 0.34 % -> 0.15 %).
( exec 4<>/run/qnet-idle
  read -r go <&4
  t=1
  while :; do
    while read -r cmd <&3; do
      t=1
      case "$cmd" in
        poweroff) say "BYE"; poweroff -f ;;
        ping) say "PONG" ;;
      esac
    done
    read -r -t $t idle <&4
    t=$((t * 2)); [ $t -gt 30 ] && t=30
  done ) &
# The snapshot point. The host saves this guest here (nothing of the node applied yet) and restores copies of
# the saved state for later nodes of the same shape; each carries on from here on "resume EPOCH", with its own
# clock and its own configuration (sent on the port after that line).
if has snapshot; then
  # The rest goes on in the background, so that init starts the console's shell now: at the snapshot point it
  # already waits at its prompt, and a restored guest does not start it (a fork, an exec and a terminal's setup:
  # 2,500 of the 30,000 blocks of guest code TCG translates after a restore, measured with -d in_asm).
  ( n=0
    until [ $n -ge 40 ]; do
      for s in /proc/[0-9]*/stat; do
        read -r pid comm state rest 2>/dev/null < "$s"
        [ "$comm" = "(sh)" ] && [ "$state" = S ] && break 2
      done
      usleep 50000; n=$((n+1))
    done
    # The host is connected to a guest that boots to be saved, and to a restored one before it runs: from here on
    # lines go straight to the port (no process left exiting in the saved state, none forked after a restore).
    SYNC=1
    say "SNAPSHOT"
    # Until the host connects, a read on the port returns at once (end of file): look again shortly after.
    while :; do
      cmd=
      read -r cmd <&3
      case "$cmd" in resume*) break ;; poweroff) say "BYE"; poweroff -f ;; esac
      usleep 20000
    done
    set -- $cmd
    [ -n "$2" ] && date -u -s "@$2" >/dev/null
    # This node's configuration follows on the port, up to "end": cheaper than reading fw_cfg again, which means
    # reloading its driver (the module loader, cold under TCG after a restore). Its names for /etc/hosts come after
    # "end BYTES", copied by one program: the shell reads a line a byte per system call (see renderResumeMessage).
    exec 5> /etc/qnet/config
    line=
    while read -r line <&3; do case "$line" in end|"end "*) break ;; esac; echo "$line" >&5; done
    exec 5>&-
    case "$line" in end|"end "*) ;; *) say "ERROR no configuration after resume"; exit 0 ;; esac
    set -- $line
    if [ "\${2:-0}" -gt 0 ] && ! head -c "$2" <&3 >> /etc/hosts; then say "ERROR no names after resume"; exit 0; fi
    # A router's ruleset is still read from fw_cfg: the driver lists the items of the QEMU it runs in now.
    if has nft; then rmmod qemu_fw_cfg 2>/dev/null; load qemu_fw_cfg; fi
    configure ) &
  exit 0
fi
configure
`;
