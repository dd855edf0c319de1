// qnet's resume hook in the Debian images `qnet image create` makes, as pure text, and the configuration qnet
// hands a node that uses it. A node of such an image started by qnet (SMBIOS serial "qnet-resume") boots without
// cloud-init; late in its boot, before anything of the node is applied, the hook says SNAPSHOT on the control port
// (when its configuration asks for it) and waits for "resume EPOCH": the host saves the guest there, and later nodes
// of the same shape are restored from that point instead of booting. Then the hook reads the node's own identity
// from fw_cfg (files, MACs, hostname, a random seed) and applies it; qnet-resume-ready.service says READY once sshd
// is up. Images qnet did not make carry no mark, so nothing of this is assumed about them.
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { contains } from '../topology/ipv4.js';
import { nicName, subInterfaceName, type ResolvedLab, type ResolvedNode } from '../topology/model.js';
import { defaultGateway, nicDns } from '../render/guest-net.js';
import { renderHosts, renderRouterLines, type SeedKeys } from './cloud-init.js';
import { CONTROL_PORT } from './init-script.js';
import { RESUME_FW_CFG, RESUME_SERIAL, RESUME_VERSION } from './resume-mark.js';

export { layerOf, RESUME_MARK, resumeShape, usesResumeHook } from './resume-mark.js';


const HOOK = '/usr/local/lib/qnet/resume';

/**
 * The systemd generator: when qnet starts the guest for the hook, cloud-init stays out of this boot (masked) and the
 * hook and systemd-networkd are pulled in. Otherwise it does nothing: the image boots as any. (sshd is started by
 * ssh.socket on the first connection in every image qnet makes, so it reads the host key the hook wrote: no daemon
 * to restart after a resume, 1.1 s under TCG.)
 */
export function renderGenerator(): string {
  return `#!/bin/sh
# qnet: runs at every boot, before any unit. Does nothing unless qnet started this guest for its resume hook.
[ "$(cat /sys/class/dmi/id/product_serial 2>/dev/null)" = ${RESUME_SERIAL} ] || exit 0
normal="\${1:-/run/systemd/generator}"
early="\${2:-/run/systemd/generator.early}"
mkdir -p "$early" "$normal/multi-user.target.wants"
for u in cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service cloud-init.target; do
  ln -sf /dev/null "$early/$u"
done
ln -sf /etc/systemd/system/qnet-resume.service "$normal/multi-user.target.wants/qnet-resume.service"
for u in systemd-networkd.service systemd-resolved.service; do ln -sf "/lib/systemd/system/$u" "$normal/multi-user.target.wants/$u"; done
exit 0
`;
}

/** The unit of the hook: after the system's own services, so that the snapshot point comes as late as it can. */
export function renderHookUnit(): string {
  return [
    '[Unit]',
    "Description=qnet: the snapshot point, then this node's identity",
    'After=basic.target sockets.target systemd-networkd.service systemd-resolved.service dbus.service systemd-logind.service systemd-user-sessions.service qemu-guest-agent.service',
    'Wants=qemu-guest-agent.service',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${HOOK}`,
    'RemainAfterExit=yes',
    'TimeoutStartSec=infinity',
    'StandardOutput=journal+console',
    '',
  ].join('\n');
}

/**
 * The hook. After the snapshot point it runs shell builtins wherever it can: a restored guest's translation cache
 * is empty, and each program it starts costs about 100 ms under TCG (measured in a restored Debian guest: writing
 * one file with base64, chmod and mv, 300 ms). Files come as lines (`file UMASK PATH`, the content, then the line
 * `.`), NICs are known by position: before the snapshot point by the MACs of the QEMU that boots (the same devices in
 * the same slots for every guest of a shape), after it by their new MACs. Every value was rendered by qnet from a
 * validated topology.
 */
export function renderHookScript(): string {
  return `#!/bin/sh
# qnet's resume hook (version ${RESUME_VERSION}). Started only when qnet runs this guest for it (see the generator).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CFG=/sys/firmware/qemu_fw_cfg/by_name/${RESUME_FW_CFG}/raw
PORT=/dev/virtio-ports/${CONTROL_PORT}
mkdir -p /run/qnet
# A write to the port waits while no host is connected: in the background until the host has spoken.
say() { { echo "$1" >&3 & } ; echo "qnet: $1" > /dev/console 2>/dev/null; }
modprobe qemu_fw_cfg 2>/dev/null
n=0; while [ ! -e "$PORT" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
exec 3<>"$PORT" || exit 1
if [ ! -r "$CFG" ]; then say "ERROR no qnet configuration in fw_cfg"; exit 1; fi
cp "$CFG" /run/qnet/config
# Each NIC by position: nic_POS is its interface, found by the MAC of the QEMU this boot started in.
while read -r kind a b rest; do
  [ "$kind" = nic ] || continue
  for d in /sys/class/net/*; do read -r m < "$d/address"; [ "$m" = "$b" ] && eval "nic_$a=\${d##*/}"; done
done < /run/qnet/config
# Where the node's files go (made now: after a resume each program started costs).
mkdir -p /run/systemd/network
mkdir -p -m 700 /root/.ssh
# The snapshot point: nothing of the node applied yet. The host saves the guest here, and every guest of the shape
# carries on from here on "resume EPOCH" with its own clock, its configuration following on the port up to "end".
# Until the host connects, a read on the port ends at once: look again shortly after.
if grep -qx snapshot /run/qnet/config; then
  say "SNAPSHOT"
  while :; do
    cmd=
    read -r cmd <&3
    case "$cmd" in resume*) break ;; esac
    sleep 0.02
  done
  set -- $cmd
  [ -n "$2" ] && date -u -s "@$2" >/dev/null
  : > /run/qnet/config
  line=
  while IFS= read -r line <&3; do [ "$line" = end ] && break; printf '%s\\n' "$line" >> /run/qnet/config; done
  if [ "$line" != end ]; then say "ERROR no configuration after resume"; exit 1; fi
fi
say() { echo "$1" >&3; echo "qnet: $1" > /dev/console 2>/dev/null; }
fail=
out=
# The node's own randomness (vmgenid reseeds the kernel as well), MACs, files, hostname; then its addresses.
while IFS= read -r line; do
  if [ -n "$out" ]; then
    if [ "$line" = . ]; then exec 4>&-; out=; else printf '%s\\n' "$line" >&4; fi
    continue
  fi
  set -- $line
  case "$1" in
    seed) printf '%s' "$2" > /dev/urandom ;;
    mac) eval "dev=\\\$nic_$2"; [ -n "$dev" ] || { fail="$fail no-nic-$2"; continue; }
      read -r m < "/sys/class/net/$dev/address"; [ "$m" = "$3" ] || ip link set dev "$dev" address "$3" || fail="$fail mac-$2" ;;
    file) umask "$2"; exec 4>"$3" || { fail="$fail file-$3"; exec 4>/dev/null; }; umask 022; out=$3 ;;
    hostname) echo "$2" > /proc/sys/kernel/hostname || fail="$fail hostname" ;;
  esac
done < /run/qnet/config
if [ -n "$fail" ]; then say "ERROR the node's identity could not be applied:$fail"; exit 1; fi
# The addresses: systemd-networkd takes the files written above (matched by the new MACs); wait-online waits for
# them (no polling loop: each look would start programs).
networkctl reload || { say "ERROR systemd-networkd did not take the configuration"; exit 1; }
links=
while read -r kind a rest; do [ "$kind" = wait ] && { eval "dev=\\\$nic_$a"; links="$links -i $dev:routable"; }; done < /run/qnet/config
if [ -n "$links" ] && ! /lib/systemd/systemd-networkd-wait-online -q --timeout=60 $links; then say "ERROR the network did not come up ($links)"; exit 1; fi
[ -r /run/qnet/router ] && { . /run/qnet/router || { say "ERROR router settings failed"; exit 1; }; }
agent=no
for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null && [ "$c" = qemu-ga ] && agent=yes; done
read -r h < /proc/sys/kernel/hostname
say "READY $h agent=$agent"
exit 0
`;
}

/** The files the hook adds to an image (relative to its root). */
export function hookFiles(): Array<{ path: string; content: string; mode: number }> {
  return [
    { path: 'usr/lib/systemd/system-generators/qnet-resume-generator', content: renderGenerator(), mode: 0o755 },
    { path: 'etc/systemd/system/qnet-resume.service', content: renderHookUnit(), mode: 0o644 },
    { path: HOOK.slice(1), content: renderHookScript(), mode: 0o755 },
  ];
}

/** systemd-networkd's file for each NIC of a node: the same decisions as cloud-init's network-config. */
export function renderNetworkdFiles(lab: ResolvedLab, node: ResolvedNode): Array<{ name: string; content: string }> {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const gw = defaultGateway(lab, node);
  const dns = nicDns(lab, node);
  const num = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return node.nics.map((nic) => {
    const net = nets.get(nic.network);
    const onThis = (ip: string) => nic.addresses.some((a) => contains(a, num(ip))) || (!!net?.subnet && contains(net.subnet, num(ip)));
    const lines = ['[Match]', `MACAddress=${nic.mac}`, '', '[Network]', `DHCP=${nic.dhcp ? 'ipv4' : 'no'}`, 'LinkLocalAddressing=no', 'IPv6AcceptRA=no'];
    if (!nic.dhcp) for (const a of nic.addresses) lines.push(`Address=${formatCidr(a)}`);
    const server = dns.get(nic.index);
    if (server !== undefined) lines.push(`DNS=${server}`, ...(net?.dhcp ? [`Domains=${lab.name}`] : []));
    if (gw !== undefined && !nic.dhcp && onThis(gw)) lines.push(`Gateway=${gw}`);
    for (const r of node.routes ?? []) if (onThis(formatIPv4(r.via))) lines.push('', '[Route]', `Destination=${formatCidr(r.to)}`, `Gateway=${formatIPv4(r.via)}`);
    // Its VLAN sub-interfaces: made by networkd from a .netdev each, attached here, addressed by their own file.
    for (const v of nic.vlans ?? []) lines.splice(lines.indexOf('[Network]') + 1, 0, `VLAN=${subInterfaceName(nicName(node, nic), v.id)}`);
    const subs = (nic.vlans ?? []).flatMap((v) => {
      const name = subInterfaceName(nicName(node, nic), v.id);
      const onSub = (ip: string) => v.addresses.some((a) => contains(a, num(ip)));
      const net = ['[Match]', `Name=${name}`, '', '[Network]', 'LinkLocalAddressing=no', 'IPv6AcceptRA=no', ...v.addresses.map((a) => `Address=${formatCidr(a)}`)];
      if (gw !== undefined && !nic.dhcp && onSub(gw) && !onThis(gw)) net.push(`Gateway=${gw}`);
      for (const r of node.routes ?? []) if (onSub(formatIPv4(r.via))) net.push('', '[Route]', `Destination=${formatCidr(r.to)}`, `Gateway=${formatIPv4(r.via)}`);
      return [
        { name: `10-qnet-${name}.netdev`, content: ['[NetDev]', `Name=${name}`, 'Kind=vlan', '', '[VLAN]', `Id=${v.id}`, ''].join('\n') },
        { name: `11-qnet-${name}.network`, content: net.join('\n') + '\n' },
      ];
    });
    return [{ name: `10-qnet-eth${nic.index}.network`, content: lines.join('\n') + '\n' }, ...subs];
  }).flat();
}

/** What a node is told besides its keys: fresh per node and per up (machine-id, randomness). */
export interface ResumeSecrets {
  machineId: string;
  seed: string;
}

/**
 * The node's configuration for the hook, one directive a line: `nic POS MAC` (the MACs of this QEMU, by which the
 * hook finds each NIC), `snapshot` (the saver stops at the snapshot point), then `seed`, `mac POS MAC`,
 * `file B64 MODE PATH`, `hostname`, `wait POS ADDRESS|dhcp`. Pure.
 */
export function renderResumeConfig(lab: ResolvedLab, node: ResolvedNode, keys: SeedKeys, secrets: ResumeSecrets, opts: { snapshot: boolean }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const lines: string[] = [];
  for (const nic of node.nics) lines.push(`nic ${nic.index} ${nic.mac}`);
  if (opts.snapshot) lines.push('snapshot');
  lines.push(`seed ${secrets.seed}`);
  for (const nic of node.nics) lines.push(`mac ${nic.index} ${nic.mac}`);
  // A file: its umask (so it is made with the right mode by the shell itself), its path, its lines, then ".".
  const file = (p: string, mode: number, content: string) => {
    const body = content.endsWith('\n') ? content.slice(0, -1) : content;
    if (body.split('\n').includes('.')) throw new Error(`renderResumeConfig: ${p} has a line "."`);
    lines.push(`file ${(~mode & 0o777).toString(8).padStart(3, '0')} ${p}`, ...body.split('\n'), '.');
  };
  file('/etc/machine-id', 0o444, `${secrets.machineId}\n`);
  file('/etc/hostname', 0o644, `${node.name}\n`);
  file('/etc/hosts', 0o644, renderHosts(lab, node));
  file('/root/.ssh/authorized_keys', 0o600, `${keys.labPublic}\n`);
  file('/etc/ssh/ssh_host_ed25519_key', 0o600, keys.hostPrivate);
  file('/etc/ssh/ssh_host_ed25519_key.pub', 0o644, `${keys.hostPublic}\n`);
  for (const f of renderNetworkdFiles(lab, node)) file(`/run/systemd/network/${f.name}`, 0o644, f.content);
  if (node.router?.forward) file('/etc/sysctl.d/90-qnet-router.conf', 0o644, 'net.ipv4.ip_forward = 1\n');
  const router = renderRouterLines(lab, node);
  if (router) file('/run/qnet/router', 0o644, router);
  lines.push(`hostname ${node.name}`);
  // A NIC with neither DHCP nor an address is not waited for.
  for (const nic of node.nics)
    if (nic.dhcp || nic.addresses[0]) lines.push(`wait ${nic.index} ${nic.dhcp ? 'dhcp' : formatCidr(nic.addresses[0]!)}`);
  return lines.join('\n') + '\n';
}

