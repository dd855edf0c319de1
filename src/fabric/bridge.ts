// The bridge fabric: a lab's networks as Linux bridges and taps in its namespace (what qnet always did), with the
// VLANs and transparent links on them, impairments, the guard table, the LANs of bridged and macnat networks, the
// uplink of nat and routed networks and dnsmasq. Pure: what it plans, as steps.
import path from 'node:path';
import { labDir } from '../dirs.js';
import { ENV_LAB, ENV_SERVICE } from '../render/markers.js';
import { dnsmasqFiles, renderDnsmasqConf, renderDnsmasqHosts } from '../render/dnsmasq.js';
import { needsUplink, renderHostRuleset, renderUplinkHostBatch, renderUplinkLabBatch, renderUplinkRoutes, UPLINK_LAB_IF, uplinkHostIf } from '../render/uplink.js';
import { formatIPv4 } from '../topology/ipv4.js';
import type { PlanContext, Step } from '../plan/steps.js';
import { uplinkTable } from '../render/markers.js';
import { fdbLines, linkLines, vlanLines } from '../render/l2.js';
import { needsGuard, renderGuardRuleset } from '../render/guard.js';
import { renderLinkBatch } from '../render/ipbatch.js';
import { labImpairments, NETEM_HINT } from '../render/impair.js';
import { describeImpairment } from '../topology/impair.js';
import type { ResolvedLab, ResolvedNetwork, ResolvedNode } from '../topology/model.js';
import { hasBridge, onLan } from '../topology/model.js';
import {
  lanHostBridge,
  lanHostVeth,
  lanLabVeth,
  MACNAT_LAB_TABLE,
  macnatHostTable,
  needsMacnat,
  renderLanHostBatch,
  renderLanHostUndo,
  renderLanLabBatch,
  renderMacnatHostRuleset,
  renderMacnatLabRuleset,
  renderMove,
} from '../render/lan.js';
import type { Fabric } from './fabric.js';
import { rootlessUplinkSteps } from './rootless-uplink.js';

/** Linux bridges in the lab namespace: every tap is made with its bridge, so a started node has nothing to plug. */
export const bridgeFabric: Fabric = {
  name: 'bridge',
  networkSteps,
  plugSteps: () => [],
  tapNamespace: (lab) => lab.netns,
  impairmentRefusal: () => undefined,
  // The bridge sees every frame of its network.
  networkCapture: (lab, net) => ({ kind: 'iface', iface: net.bridge, netns: lab.netns }),
};

/** The steps that make the lab's bridges, taps and what goes with them (the namespace exists). */
function networkSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const dir = labDir(lab.name);
  const batch = renderLinkBatch(lab, String(ctx.guestIds.uid));
  const bridges = lab.networks.filter((n) => hasBridge(n)).length;
  const taps = lab.nodes.reduce((n, node) => n + node.nics.filter((c) => c.kind === 'bridge').length, 0);
  steps.push({
    title: bridges + taps
      ? `create ${bridges} bridge${bridges === 1 ? '' : 's'} and ${taps} tap${taps === 1 ? '' : 's'} (one ip -batch)`
      : 'bring up the namespace loopback and mark it (one ip -batch)',
    do: { kind: 'exec', argv: ['ip', '-n', lab.netns, '-batch', '-'], input: batch },
    // No undo of its own: deleting the namespace removes every link inside it.
  });
  steps.push(...l2Steps(lab.netns, lab, lab.networks, lab.nodes, false));
  const impaired = labImpairments(lab);
  if (impaired.tc.length) steps.push(impairStep(lab.netns, impaired));
  if (needsGuard(lab))
    steps.push({
      title: 'load anti-spoofing and DHCP guard rules on the bridges (one nft transaction)',
      // No undo of its own: the table lives in the lab namespace and goes with it.
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'nft', '-f', '-'], input: renderGuardRuleset(lab) },
    });
  steps.push(...lanSteps(lab, ctx));
  steps.push(...(ctx.rootless ? rootlessUplinkSteps(lab, ctx) : uplinkSteps(lab, ctx)));
  const dhcpNets = lab.networks.filter((n) => n.dhcp);
  if (dhcpNets.length) {
    const ddir = path.join(dir, 'dnsmasq');
    steps.push({ title: 'prepare dnsmasq', do: { kind: 'mkdir', path: ddir, mode: 0o700, owner: ctx.userIds } });
    steps.push({ title: 'write the lab hosts file', do: { kind: 'write', path: path.join(ddir, 'hosts'), content: renderDnsmasqHosts(lab), mode: 0o644 } });
    for (const net of dhcpNets) {
      const files = { ...dnsmasqFiles(ddir, net.name), hosts: path.join(ddir, 'hosts') };
      steps.push({ title: `write dnsmasq configuration for ${net.name}`, do: { kind: 'write', path: files.conf, content: renderDnsmasqConf(lab, net, files, ctx.user), mode: 0o644 } });
      steps.push({
        title: `start dnsmasq on ${net.bridge} (DHCP ${formatIPv4(net.dhcp!.start)}-${formatIPv4(net.dhcp!.end)}, DNS)`,
        do: {
          kind: 'start-service',
          service: `dnsmasq:${net.name}`,
          // Rootless: no pid file (it would be /run/dnsmasq.pid, root's, not writable by the user; nor needed).
          argv: ['nsenter', `--net=/run/netns/${lab.netns}`, '--', 'dnsmasq', '--keep-in-foreground', ...(ctx.rootless ? ['--pid-file'] : []), `--conf-file=${files.conf}`],
          env: { [ENV_LAB]: lab.name, [ENV_SERVICE]: `dnsmasq:${net.name}` },
          log: files.log,
          readyText: 'DHCP, IP range',
        },
        undo: { kind: 'stop-service', service: `dnsmasq:${net.name}` },
      });
    }
  }
  return steps;
}

/**
 * The uplink of a lab with nat or routed networks (none otherwise): the veth to the host, the routes both ways, the
 * lab namespace forwarding, the host's nft table (masquerade, port forwards). The same on either fabric: the lab
 * namespace is the router of nat and routed networks.
 */
export function uplinkSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  if (!needsUplink(lab)) return [];
  const steps: Step[] = [];
  if (!ctx.uplink) throw new Error('planUp: a lab with nat or routed networks needs ctx.uplink');
  const hostIf = uplinkHostIf(lab.name);
  steps.push(
    {
      title: `create the uplink: veth ${hostIf} (host) <-> ${UPLINK_LAB_IF} (lab), ${formatIPv4(ctx.uplink.net)}/30`,
      do: { kind: 'exec', argv: ['ip', '-batch', '-'], input: renderUplinkHostBatch(lab, ctx.uplink) },
      undo: { kind: 'exec', argv: ['ip', 'link', 'delete', hostIf] },
    },
    { title: 'address the uplink in the lab, default route to the host', do: { kind: 'exec', argv: ['ip', '-n', lab.netns, '-batch', '-'], input: renderUplinkLabBatch(lab, ctx.uplink) } },
    { title: "route the lab's nat and routed subnets from the host", do: { kind: 'exec', argv: ['ip', '-batch', '-'], input: renderUplinkRoutes(lab, ctx.uplink) } },
    { title: 'turn on IPv4 forwarding in the lab namespace', do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'] } },
  );
  if (ctx.hostForwarding === false)
    steps.push({
      title: 'turn on IPv4 forwarding on the host (it was off; `down` of the last such lab turns it off again)',
      do: { kind: 'host-forwarding', enable: true },
      undo: { kind: 'host-forwarding', enable: false },
    });
  steps.push({
    title: `load the host firewall table ip ${uplinkTable(lab.name)} (one nft transaction)`,
    do: { kind: 'exec', argv: ['nft', '-f', '-'], input: renderHostRuleset(lab) },
    undo: { kind: 'exec', argv: ['nft', 'delete', 'table', 'ip', uplinkTable(lab.name)] },
  });
  return steps;
}

/** The steps that put bridged and macnat networks on their uplinks' LANs. */
export function lanSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  for (const net of lab.networks.filter(onLan)) {
    const up = ctx.lan?.[net.name];
    if (!up) throw new Error(`planUp: network ${net.name} needs ctx.lan.${net.name}`);
    const veth = lanHostVeth(lab.name, net);
    const hostBridge = net.mode === 'bridged' ? (up.attach ? up.name : lanHostBridge(lab.name, net.name)) : '';
    steps.push(
      {
        title:
          net.mode === 'bridged'
            ? up.attach
              ? `join ${net.name} to the existing bridge ${up.name}: veth ${veth} (host) <-> ${lanLabVeth(lab.name, net.name)} (lab)`
              : `create host bridge ${hostBridge} (MAC of ${up.name}, STP ${net.stp.enabled ? 'on' : 'off'}, forward delay ${net.stp.forwardDelay} s, hello ${net.stp.helloTime} s) and veth ${veth} into the lab`
            : `create veth ${veth} (host) <-> ${lanLabVeth(lab.name, net.name)} (lab) for MAC NAT onto ${up.name}`,
        do: { kind: 'exec', argv: ['ip', '-batch', '-'], input: renderLanHostBatch(lab, net, up) },
        undo: { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: renderLanHostUndo(lab, net, up) },
      },
      { title: `make the veth a port of ${net.bridge} in the lab`, do: { kind: 'exec', argv: ['ip', '-n', lab.netns, '-batch', '-'], input: renderLanLabBatch(lab, net) } },
    );
    if (net.mode === 'bridged' && !up.attach) {
      steps.push({
        title: `put ${up.name} into ${hostBridge}`,
        do: { kind: 'exec', argv: ['ip', 'link', 'set', 'dev', up.name, 'master', hostBridge] },
        // Gives back whatever the bridge holds by then: the addresses and routes too, if they had moved.
        undo: { kind: 'release-uplink', bridge: hostBridge, saved: up },
        hint: `${up.name} refused to join a bridge: if it is Wi-Fi (or another interface that cannot be enslaved), use mode: macnat for networks.${net.name}`,
      });
      if (up.addrs.length || up.routes.length)
        steps.push({
          title: `move ${up.name}'s ${up.addrs.length} address${up.addrs.length === 1 ? '' : 'es'} and ${up.routes.length} route${up.routes.length === 1 ? '' : 's'} to ${hostBridge}`,
          do: { kind: 'exec', argv: ['ip', '-force', '-batch', '-'], input: renderMove(up.name, hostBridge, up.addrs, up.routes).join('\n') + '\n' },
        });
    }
  }
  if (needsMacnat(lab)) {
    steps.push(
      {
        title: `load the MAC NAT rewriting (bridge table ${MACNAT_LAB_TABLE} in the lab, one nft transaction)`,
        do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'nft', '-f', '-'], input: renderMacnatLabRuleset(lab, ctx.lan!) },
      },
      {
        title: `load the MAC NAT steering on the host (netdev table ${macnatHostTable(lab.name)}, one nft transaction)`,
        do: { kind: 'exec', argv: ['nft', '-f', '-'], input: renderMacnatHostRuleset(lab, ctx.lan!) },
        undo: { kind: 'exec', argv: ['nft', 'delete', 'table', 'netdev', macnatHostTable(lab.name)] },
      },
    );
  }
  return steps;
}

/**
 * The VLANs of VLAN-aware networks (their host sides, the given nodes' taps: one `bridge -batch`) and the
 * transparent links the given nodes are on (one `tc -batch`; `reset` first when a link's end is made again).
 */
export function l2Steps(ns: string, lab: ResolvedLab, networks: ResolvedNetwork[], nodes: ResolvedNode[], reset: boolean): Step[] {
  const steps: Step[] = [];
  const vlans = vlanLines(lab, networks, nodes);
  const fdb = fdbLines(lab, nodes);
  if (vlans.length || fdb.length) {
    const ports = vlans.length ? `set the VLANs of ${vlans.length} port${vlans.length === 1 ? '' : 's'}` : '';
    const macs = fdb.length ? `tie ${fdb.length} guest MAC${fdb.length === 1 ? '' : 's'} to ${fdb.length === 1 ? 'its bridge port' : 'their bridge ports'}` : '';
    steps.push({
      title: `${[ports, macs].filter(Boolean).join(' and ')} (one bridge -batch)`,
      // No undo of its own: the entries go with their taps.
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', ns, 'bridge', '-batch', '-'], input: [...vlans, ...fdb].join('\n') + '\n' },
    });
  }
  const links = linkLines(lab, nodes);
  if (reset && links.reset.length)
    steps.push({
      title: 'take the old redirects off the links whose ends are made again',
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', ns, 'tc', '-force', '-batch', '-'], input: links.reset.join('\n') + '\n' },
    });
  if (links.tc.length) {
    const n = new Set(nodes.flatMap((x) => x.nics.filter((c) => c.peerTap).map((c) => c.network))).size;
    steps.push({
      title: `join the taps of ${n} link${n === 1 ? '' : 's'} end to end (tc mirred, one tc -batch)`,
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', ns, 'tc', '-batch', '-'], input: links.tc.join('\n') + '\n' },
    });
  }
  return steps;
}

/** The step that impairs NICs (one tc -batch in namespace `ns`, or the host's); its hint says what a kernel without netem lacks. */
export function impairStep(ns: string | undefined, impaired: ReturnType<typeof labImpairments>): Step {
  const what = impaired.nics.map(({ node, nic }) => `${node.name} NIC ${nic.index} (${describeImpairment(nic.impair!)})`).join('; ');
  return {
    title: `impair ${impaired.nics.length} NIC${impaired.nics.length === 1 ? '' : 's'}: ${what} (one tc -batch)`,
    // No undo of its own: the qdiscs go with the taps, the ifbs with the namespace.
    do: { kind: 'exec', argv: [...(ns ? ['ip', 'netns', 'exec', ns] : []), 'tc', '-batch', '-'], input: impaired.tc.join('\n') + '\n' },
    hint: NETEM_HINT,
  };
}
