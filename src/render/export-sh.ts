// Pure rendering of a lab as plain shell scripts in the seed's spirit: ifup (namespace, bridges, taps),
// start (one QEMU command per guest), ifdown (stop guests, remove everything), plus each guest's config.
import path from 'node:path';
import { labImpairments, nicImpairment } from './impair.js';
import { fdbLines, linkLines, vlanBridgeOptions, vlanLines } from './l2.js';
import { IPV6_OFF, tapMaster } from './ipbatch.js';
import { describeImpairment } from '../topology/impair.js';
import { shellQuote } from './shell.js';
import type { ResolvedLab } from '../topology/model.js';
import { hasBridge } from '../topology/model.js';
import { renderGuestConfig, renderRouterRuleset } from './guest-config.js';
import { ownerMarker } from './markers.js';
import { nodeFiles, renderGuestCommand, type Accel, type GuestImage } from './qemu.js';
import { formatCidr } from '../topology/ipv4.js';

export interface ShellExportOptions {
  image: GuestImage;
  accel: Accel;
  user: string;
  /** Absolute directory the scripts will live in (sockets and configs go below it). */
  dir: string;
}

const header = (lab: string, what: string) =>
  `#!/bin/sh\n# ${what} for lab ${lab}, exported by \`qnet export ${lab} --format sh\`. Run as root.\nset -eu\n`;

/** The argv quoted for sh, one QEMU option (with its value) a line after the wrapper. */
function breakLines(argv: string[]): string {
  const q = argv.indexOf('--', argv.indexOf('setpriv'));
  const head = argv.slice(0, q + 2).map(shellQuote).join(' ');
  const parts: string[] = [];
  for (const a of argv.slice(q + 2)) {
    if (a.startsWith('-') || !parts.length) parts.push(shellQuote(a));
    else parts[parts.length - 1] += ` ${shellQuote(a)}`;
  }
  return [head, ...parts].join(' \\\n  ');
}

/** The scripts and files of a shell export, by file name relative to the export directory. */
export function renderShellExport(lab: ResolvedLab, o: ShellExportOptions): Record<string, string> {
  const ns = lab.netns;
  const ip = (args: string) => `ip -n ${ns} ${args}`;
  const mark = ownerMarker(lab.name);
  const ifup: string[] = [header(lab.name, 'ifup: the namespace, bridges and taps'), `ip netns add ${ns}`, `ip netns exec ${ns} ${IPV6_OFF.join(' ')}`, ip('link set dev lo up'), ip(`link set dev lo alias ${mark}`)];
  const bridgeOf = new Map(lab.networks.map((n) => [n.name, n.bridge]));
  for (const net of lab.networks.filter((n) => hasBridge(n))) {
    ifup.push('', `# ${net.name}: the L2 switch${net.vlans ? ', VLAN-aware' : ''}`, ip(`link add name ${net.bridge} type bridge stp_state 0 forward_delay 0${vlanBridgeOptions(net)}`), ip(`link set dev ${net.bridge} alias ${mark}`));
    if (net.address) ifup.push(ip(`addr add ${formatCidr(net.address)} dev ${net.bridge}`));
  }
  for (const node of lab.nodes)
    for (const nic of node.nics.filter((n) => n.kind === 'bridge')) {
      const master = tapMaster(lab, nic.network);
      ifup.push('', `# ${node.name} eth${nic.index}: a tap owned by ${o.user}, ${master ? `a port of ${bridgeOf.get(nic.network)}` : `one end of link ${nic.network}`}`);
      ifup.push(ip(`tuntap add dev ${nic.tap} mode tap user ${o.user}`), ip(`link set dev ${nic.tap} alias ${mark}`), ...(master ? [ip(`link set dev ${nic.tap} master ${master}`)] : []), ip(`link set dev ${nic.tap} up`));
    }
  for (const net of lab.networks.filter((n) => hasBridge(n))) ifup.push(ip(`link set dev ${net.bridge} up`));
  // VLANs of the VLAN-aware networks' ports, and the transparent links (each tap's sends redirected to the other).
  const vlans = vlanLines(lab, lab.networks, lab.nodes);
  if (vlans.length) ifup.push('', '# VLANs: access ports untagged in their VLAN, trunks tagged (native untagged), the host side "self"', ...vlans.map((l) => `ip netns exec ${ns} bridge ${l}`));
  const fdb = fdbLines(lab, lab.nodes);
  if (fdb.length) ifup.push('', "# each guest's MAC tied to its bridge port: a silent guest's first frames are not flooded to every port", ...fdb.map((l) => `ip netns exec ${ns} bridge ${l}`));
  const links = linkLines(lab, lab.nodes).tc;
  if (links.length) ifup.push('', '# links: everything each end sends leaves by the other end (tc mirred)', ...links.map((l) => `ip netns exec ${ns} tc ${l}`));
  // Impaired NICs: the same ifb devices and traffic control as `qnet up` (netem needs the kernel's sch_netem).
  for (const { node, nic } of labImpairments(lab).nics) {
    const r = nicImpairment(lab.name, node.name, nic, nic.impair!);
    ifup.push('', `# ${node.name} eth${nic.index}: ${describeImpairment(nic.impair!)}`, ...r.ip.map(ip), ...r.tc.map((l) => `ip netns exec ${ns} tc ${l}`));
  }

  const start: string[] = [header(lab.name, 'start: the guests (QEMU as the unprivileged user, seccomp on)'), `cd ${shellQuote(o.dir)}`];
  const files: Record<string, string> = {};
  for (const node of lab.nodes) {
    const nf = nodeFiles(path.join(o.dir, node.name));
    files[`${node.name}/guest.conf`] = renderGuestConfig(lab, node);
    if (node.router) files[`${node.name}/router.nft`] = renderRouterRuleset(lab, node);
    const argv = renderGuestCommand({ node, files: nf, image: o.image, accel: o.accel, netns: ns, user: o.user });
    start.push(
      '',
      `# ${node.name}: ${node.memory} MiB, ${node.nics.length} NIC(s); console: socat - UNIX-CONNECT:${nf.console}`,
      `chown ${o.user} ${shellQuote(node.name)} && chmod 700 ${shellQuote(node.name)}`,
      `QNET_LAB=${lab.name} QNET_NODE=${node.name} ${breakLines(argv)} \\\n  > ${shellQuote(nf.log)} 2>&1 &`,
      `echo $! > ${shellQuote(`${node.name}/qemu.pid`)}`,
    );
  }
  start.push('', `echo "started ${lab.nodes.length} guest(s); their consoles are ${o.dir}/NODE/console.sock"`);

  const ifdown: string[] = [header(lab.name, 'ifdown: stop the guests, remove the namespace (and every link in it)').replace('set -eu', 'set -u'), `cd ${shellQuote(o.dir)}`];
  for (const node of lab.nodes)
    ifdown.push(`[ -f ${node.name}/qemu.pid ] && kill $(cat ${node.name}/qemu.pid) 2>/dev/null; rm -f ${node.name}/qemu.pid ${node.name}/*.sock`);
  ifdown.push('sleep 1', `ip netns delete ${ns} 2>/dev/null`, 'exit 0');
  files['ifup.sh'] = ifup.join('\n') + '\n';
  files['start.sh'] = start.join('\n') + '\n';
  files['ifdown.sh'] = ifdown.join('\n') + '\n';
  return files;
}
