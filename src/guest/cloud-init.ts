// The NoCloud seed of an image node, as pure text: meta-data (instance-id, hostname), network-config (version 2:
// every NIC matched by its MAC, never renamed), user-data (hostname, /etc/hosts, SSH keys, the router settings and
// qnet's readiness signal, merged with the user's own cloud-config).
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { formatCidr, formatIPv4 } from '../topology/ipv4.js';
import { nicName, subInterfaceName, type ResolvedLab, type ResolvedNode } from '../topology/model.js';
import { defaultGateway, hostsEntries, nicDns } from '../render/guest-net.js';
import { contains } from '../topology/ipv4.js';

import { CONTROL_PORT } from './init-script.js';

/** The virtio-serial port an image guest says READY (or ERROR) on: the same control port as the built-in guest. */
export const IMAGE_CONTROL_PORT = CONTROL_PORT;
/** Where the seed puts qnet's readiness script and its unit in the guest. */
export const READY_SCRIPT = '/usr/local/lib/qnet/ready';
export const READY_UNIT = 'qnet-ready.service';

/** The SSH keys a seed carries: the lab's public key (root may log in with it) and the node's own host key. */
export interface SeedKeys {
  labPublic: string;
  hostPrivate: string;
  hostPublic: string;
}

/** The three files of a NoCloud seed. */
export interface Seed {
  'meta-data': string;
  'user-data': string;
  'network-config': string;
  instanceId: string;
}

/** netplan's version 2 network configuration (cloud-init passes it through on netplan guests). */
export function renderNetworkConfig(lab: ResolvedLab, node: ResolvedNode): string {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const gw = defaultGateway(lab, node);
  const dns = nicDns(lab, node);
  const ethernets: Record<string, unknown> = {};
  const vlans: Record<string, unknown> = {};
  for (const nic of node.nics) {
    const net = nets.get(nic.network);
    // The id is opaque (the match decides): qnet's own name for the NIC, so messages and files line up.
    const e: Record<string, unknown> = { match: { macaddress: nic.mac } };
    if (nic.dhcp) e.dhcp4 = true;
    else {
      e.dhcp4 = false;
      if (nic.addresses.length) e.addresses = nic.addresses.map(formatCidr);
    }
    const routes: Array<{ to: string; via: string }> = [];
    const onThis = (ip: string) => nic.addresses.some((a) => contains(a, ipToNum(ip))) || (!!net?.subnet && contains(net.subnet, ipToNum(ip)));
    if (gw !== undefined && !nic.dhcp && onThis(gw)) routes.push({ to: '0.0.0.0/0', via: gw });
    for (const r of node.routes ?? []) if (onThis(formatIPv4(r.via))) routes.push({ to: formatCidr(r.to), via: formatIPv4(r.via) });
    if (routes.length) e.routes = routes;
    const server = dns.get(nic.index);
    if (server !== undefined) e.nameservers = { addresses: [server], ...(net?.dhcp ? { search: [lab.name] } : {}) };
    // No IPv6 router advertisements in a lab: waiting for them held systemd-networkd-wait-online 13 s a boot.
    e['accept-ra'] = false;
    ethernets[`eth${nic.index}`] = e;
    // VLAN sub-interfaces on it, named as qnet names them (nic0.10); the default route goes where its gateway is.
    for (const v of nic.vlans ?? []) {
      const sub: Record<string, unknown> = { id: v.id, link: `eth${nic.index}`, dhcp4: false };
      if (v.addresses.length) sub.addresses = v.addresses.map(formatCidr);
      const subRoutes: Array<{ to: string; via: string }> = [];
      const onSub = (ip: string) => v.addresses.some((a) => contains(a, ipToNum(ip)));
      if (gw !== undefined && onSub(gw) && !routes.some((r) => r.to === '0.0.0.0/0')) subRoutes.push({ to: '0.0.0.0/0', via: gw });
      for (const r of node.routes ?? []) if (onSub(formatIPv4(r.via))) subRoutes.push({ to: formatCidr(r.to), via: formatIPv4(r.via) });
      if (subRoutes.length) sub.routes = subRoutes;
      sub['accept-ra'] = false;
      vlans[subInterfaceName(nicName(node, nic), v.id)] = sub;
    }
  }
  return stringify({ version: 2, ethernets, ...(Object.keys(vlans).length ? { vlans } : {}) }, { lineWidth: 0 });
}

function ipToNum(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** /etc/hosts of an image node: itself, and every other node of the lab at its first lab address. */
export function renderHosts(lab: ResolvedLab, node: ResolvedNode): string {
  return [
    '127.0.0.1 localhost',
    `127.0.1.1 ${node.name}.${lab.name} ${node.name}`,
    '::1 localhost ip6-localhost ip6-loopback',
    ...hostsEntries(lab, node).map((h) => `${h.ip} ${h.name} ${h.name}.${lab.name}`),
    '',
  ].join('\n');
}

/**
 * The guest's side of qnet: applies the node's router declaration with the guest's own tools (the seed's lines:
 * modprobe iptable_nat, ip_forward, MASQUERADE out of the declared NIC, FORWARD accept from the LAN), then says
 * READY on the control port. Run at the end of every boot by qnet-ready.service. NICs are found by MAC, since the
 * guest names them itself. Every value in it was validated by qnet (MACs, subnets).
 */
export function renderReadyScript(lab: ResolvedLab, node: ResolvedNode): string {
  const lines = [
    '#!/bin/sh',
    `# qnet: node ${node.name} of lab ${lab.name}. Applies the router settings and tells the host the guest is ready.`,
    `PORT=/dev/virtio-ports/${IMAGE_CONTROL_PORT}`,
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'fail=""',
    'say() { [ -e "$PORT" ] && timeout 10 sh -c \'echo "$1" > "$2"\' qnet "$1" "$PORT"; echo "qnet: $1" > /dev/console 2>/dev/null; }',
  ];
  lines.push(...routerLines(lab, node));
  lines.push(
    'agent=no',
    '{ systemctl is-active --quiet qemu-guest-agent 2>/dev/null || pidof qemu-ga >/dev/null 2>&1; } && agent=yes',
    'if [ -n "$fail" ]; then say "ERROR router settings failed:$fail"; exit 1; fi',
    '# Ready means `qnet ssh` works: wait (up to 30 s) for sshd to listen, where the image has it.',
    'if command -v sshd >/dev/null 2>&1; then n=0; while [ $n -lt 300 ] && ! ss -Hltn "sport = :22" 2>/dev/null | grep -q .; do sleep 0.1; n=$((n+1)); done; fi',
    'say "READY $(hostname) agent=$agent"',
    '',
  );
  return lines.join('\n');
}

// The seed's router lines (modprobe iptable_nat, ip_forward, MASQUERADE out of the declared NIC, FORWARD accept from
// the LAN), NICs found by MAC; failures add to $fail. Nothing for a node that is no router.
function routerLines(lab: ResolvedLab, node: ResolvedNode): string[] {
  const lines: string[] = [];
  const r = node.router;
  if (r) {
    lines.push('# The interface that has a MAC (the guest names its NICs itself: qnet never renames them).');
    lines.push('dev_of() { for n in /sys/class/net/*; do [ "$(cat "$n/address" 2>/dev/null)" = "$1" ] && { echo "${n##*/}"; return 0; }; done; echo "no-nic-$1"; return 1; }');
    const nets = new Map(lab.networks.map((n) => [n.name, n]));
    lines.push('modprobe iptable_nat 2>/dev/null');
    if (r.forward) lines.push('sysctl -qw net.ipv4.ip_forward=1 || fail="$fail ip_forward"');
    for (const m of r.masquerade) {
      const subnet = nets.get(m.from)?.subnet;
      const out = node.nics[m.out];
      const lan = node.nics.find((n) => n.network === m.from);
      if (!subnet || !out) continue;
      const s = formatCidr(subnet);
      lines.push(`out=$(dev_of ${out.mac}) || fail="$fail no-nic-${out.mac}"`);
      // -C first: a persisted disk boots again with the rules of this boot only, and the script may run twice.
      lines.push(`iptables -t nat -C POSTROUTING -s ${s} -o "$out" -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s ${s} -o "$out" -j MASQUERADE || fail="$fail masquerade"`);
      if (lan) {
        lines.push(`lan=$(dev_of ${lan.mac}) || fail="$fail no-nic-${lan.mac}"`);
        lines.push('iptables -C FORWARD -i "$lan" -j ACCEPT 2>/dev/null || iptables -A FORWARD -i "$lan" -j ACCEPT || fail="$fail forward"');
        lines.push('iptables -C FORWARD -o "$lan" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT 2>/dev/null || iptables -A FORWARD -o "$lan" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT || fail="$fail forward"');
      }
    }
  }
  return lines;
}

/** A router node's settings as a shell fragment that succeeds only if all of them applied (the resume hook sources it). */
export function renderRouterLines(lab: ResolvedLab, node: ResolvedNode): string {
  const lines = routerLines(lab, node);
  return lines.length ? ['fail=""', ...lines, '[ -z "$fail" ]', ''].join('\n') : '';
}

/** The unit that runs the readiness script at the end of every boot (after cloud-init's final stage). */
export function renderReadyUnit(): string {
  return [
    '[Unit]',
    'Description=qnet: router settings and readiness',
    // No default dependencies: multi-user.target would otherwise be ordered after it, and cloud-final (which this
    // follows) is itself ordered after multi-user.target: a cycle.
    'DefaultDependencies=no',
    'After=cloud-final.service cloud-init.target network-online.target',
    'Wants=network-online.target',
    'Conflicts=shutdown.target',
    'Before=shutdown.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${READY_SCRIPT}`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Merges the user's cloud-config into qnet's: lists are joined (qnet's first), mappings merged, the user's scalars win. */
export function mergeCloudConfig(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    if (Array.isArray(b) && Array.isArray(v)) out[k] = [...b, ...v];
    else if (b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v))
      out[k] = mergeCloudConfig(b as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = v as Json;
  }
  return out;
}

/** cloud-config of the node: qnet's settings merged with `cloudInit.userData`. */
export function renderUserData(lab: ResolvedLab, node: ResolvedNode, keys: SeedKeys): string {
  const qnet: Record<string, unknown> = {
    hostname: node.name,
    fqdn: `${node.name}.${lab.name}`,
    preserve_hostname: false,
    // qnet writes /etc/hosts itself (every node of the lab), as the built-in guest has it.
    manage_etc_hosts: false,
    // root logs in with the lab key only (`qnet ssh`); no passwords over SSH.
    disable_root: false,
    ssh_pwauth: false,
    ssh_authorized_keys: [keys.labPublic],
    // The node's host key is made by qnet, which knows it: `qnet ssh` checks it instead of trusting on first use.
    ssh_deletekeys: true,
    ssh_genkeytypes: ['ed25519'],
    ssh_keys: { ed25519_private: keys.hostPrivate, ed25519_public: keys.hostPublic },
    ssh: { emit_keys_to_console: false },
    write_files: [
      { path: '/etc/hosts', content: renderHosts(lab, node), permissions: '0644' },
      { path: READY_SCRIPT, content: renderReadyScript(lab, node), permissions: '0755' },
      { path: `/etc/systemd/system/${READY_UNIT}`, content: renderReadyUnit(), permissions: '0644' },
      ...(node.router?.forward ? [{ path: '/etc/sysctl.d/90-qnet-router.conf', content: 'net.ipv4.ip_forward = 1\n', permissions: '0644' }] : []),
    ],
    runcmd: [
      ['sh', '-c', 'systemctl start qemu-guest-agent 2>/dev/null || true'],
      // The readiness unit runs after cloud-final, which this runs in: --no-block queues it behind it.
      ['sh', '-c', `if command -v systemctl >/dev/null; then systemctl enable ${READY_UNIT} && systemctl start --no-block ${READY_UNIT}; else ${READY_SCRIPT} & fi`],
    ],
  };
  const merged = mergeCloudConfig(qnet, node.image?.userData ?? {});
  return `#cloud-config\n# written by qnet for node ${node.name} of lab ${lab.name}\n${stringify(merged, { lineWidth: 0 })}`;
}

/** The node's whole seed; the instance-id is a hash of it, so any change is applied at the next boot. */
export function renderSeed(lab: ResolvedLab, node: ResolvedNode, keys: SeedKeys): Seed {
  const network = renderNetworkConfig(lab, node);
  const user = renderUserData(lab, node, keys);
  const instanceId = `qnet-${lab.name}-${node.name}-${createHash('sha256').update(network).update(user).digest('hex').slice(0, 12)}`;
  const meta = stringify({ 'instance-id': instanceId, 'local-hostname': node.name });
  return { 'meta-data': meta, 'user-data': user, 'network-config': network, instanceId };
}
