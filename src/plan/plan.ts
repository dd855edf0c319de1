// Pure planning: a resolved lab (+ image, acceleration, user) becomes ordered steps, each with its inverse.
import path from 'node:path';
import { nodeDir, labDir } from '../dirs.js';
import { ENV_LAB, ENV_NODE, ENV_SERVICE } from '../render/markers.js';
import { dnsmasqFiles, renderDnsmasqConf, renderDnsmasqHosts } from '../render/dnsmasq.js';
import {
  needsUplink,
  renderHostRuleset,
  renderUplinkHostBatch,
  renderUplinkLabBatch,
  renderUplinkRoutes,
  UPLINK_LAB_IF,
  uplinkHostIf,
  type UplinkAddressing,
} from '../render/uplink.js';
import { formatIPv4 } from '../topology/ipv4.js';
import type { ChangeSet } from './change.js';
import type { Action, GuestSnapshot, PassedFile, PlanContext, Step, StopHow } from './steps.js';
import { shellQuote } from '../render/shell.js';

export { shellQuote };
import { bridgeLines, bridgeUpLine, neighLines, tapLines, tapMaster } from '../render/ipbatch.js';
import { ownerMarker, uplinkTable } from '../render/markers.js';
import { fdbLines, linkLines, vlanLines } from '../render/l2.js';
import { needsGuard, renderGuardRuleset } from '../render/guard.js';
import { IPV6_OFF, renderLinkBatch } from '../render/ipbatch.js';
import { ifbName, labImpairments, NETEM_HINT } from '../render/impair.js';
import { describeImpairment } from '../topology/impair.js';
import { kindOf } from '../guest/kinds.js';
import { labKeySteps, vncService } from '../guest/image-node.js';
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
  type LanUplink,
} from '../render/lan.js';

export type { Action, GuestSnapshot, Step, PlanContext, PassedFile, StopHow };

/** The steps that bring a lab up from nothing. Pure: the same inputs give the same plan. */
export function planUp(lab: ResolvedLab, ctx: PlanContext): Step[] {
  const dir = labDir(lab.name);
  const steps: Step[] = [
    // Exclusive: the run directory is the lab's lock, so two `up`s of one lab at the same instant cannot both run.
    { title: `create run directory ${dir}`, do: { kind: 'mkdir', path: dir, mode: 0o711, exclusive: true }, undo: { kind: 'rmtree', path: dir } },
    {
      title: `create network namespace ${lab.netns}`,
      do: { kind: 'exec', argv: ['ip', 'netns', 'add', lab.netns] },
      undo: { kind: 'exec', argv: ['ip', 'netns', 'delete', lab.netns] },
    },
    {
      title: 'turn IPv6 off in the lab namespace (its bridges and taps send nothing of their own)',
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, ...IPV6_OFF] },
      // No undo of its own: the settings go with the namespace.
    },
  ];
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
  if (needsUplink(lab)) {
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
  }
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
          argv: ['nsenter', `--net=/run/netns/${lab.netns}`, '--', 'dnsmasq', '--keep-in-foreground', `--conf-file=${files.conf}`],
          env: { [ENV_LAB]: lab.name, [ENV_SERVICE]: `dnsmasq:${net.name}` },
          log: files.log,
          readyText: 'DHCP, IP range',
        },
        undo: { kind: 'stop-service', service: `dnsmasq:${net.name}` },
      });
    }
  }
  steps.push(...bootSteps(lab, lab.nodes, ctx, 'every guest is configured'));
  return steps;
}

/** The steps that put bridged and macnat networks on their uplinks' LANs. */
function lanSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
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

/** Start `nodes` and wait until they are ready (the executor keeps at most `ctx.parallel` booting at once, `ctx.restoreParallel` image nodes restored). */
function bootSteps(lab: ResolvedLab, nodes: ResolvedNode[], ctx: PlanContext, what: string): Step[] {
  const snaps = ctx.snapshots ?? {};
  // One node of each shape that has no saved state yet boots first and is saved at its snapshot point; the
  // other nodes of that shape start from the saved state once it exists (a restore costs a fraction of a boot).
  const savers = new Map<string, ResolvedNode>();
  for (const n of nodes) {
    const s = snaps[n.name];
    if (s && !s.exists && !savers.has(s.path)) savers.set(s.path, n);
  }
  const saving = new Set([...savers.values()].map((n) => n.name));
  const rest = nodes.filter((n) => !saving.has(n.name));
  // Image nodes configured by cloud-init log root in with the lab's key: made once, before the first seed.
  const steps: Step[] = nodes.some((n) => n.image?.config === 'cloud-init') ? labKeySteps(lab, ctx) : [];
  for (const [file, node] of savers) steps.push(...nodeSteps(lab, node, ctx, { mode: 'save', path: file }));
  const waitFor = [...savers].filter(([file]) => rest.some((n) => snaps[n.name]?.path === file)).map(([, n]) => n.name);
  if (waitFor.length)
    steps.push({
      title: `wait until ${waitFor.join(', ')} ${waitFor.length > 1 ? 'are' : 'is'} saved for the other nodes of ${waitFor.length > 1 ? 'their shapes' : 'its shape'}`,
      do: { kind: 'wait-snapshot', nodes: waitFor },
    });
  for (const node of rest) {
    const s = snaps[node.name];
    steps.push(...nodeSteps(lab, node, ctx, s ? { mode: 'restore', path: s.path } : undefined));
  }
  const booting = nodes.filter((n) => snaps[n.name]?.exists !== true).length;
  const restoring = rest.filter((n) => n.image && snaps[n.name]).length;
  const limits = [
    ...(ctx.parallel !== undefined && ctx.parallel > 0 && booting > ctx.parallel ? [`at most ${ctx.parallel} booting at once`] : []),
    ...(ctx.restoreParallel !== undefined && ctx.restoreParallel > 0 && restoring > ctx.restoreParallel ? [ctx.restoreParallel === 1 ? 'image nodes restored one at a time' : `at most ${ctx.restoreParallel} image nodes restored at once`] : []),
  ];
  const window = limits.length ? ` (${limits.join('; ')})` : '';
  if (nodes.length) steps.push({ title: `wait until ${what}${window}`, do: { kind: 'wait-ready', nodes: nodes.map((n) => n.name) } });
  return steps;
}

/** The steps that prepare and start one node (its taps exist already): as its guest kind says. */
export function nodeSteps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext, snapshot?: GuestSnapshot): Step[] {
  return kindOf(node).steps(lab, node, ctx, snapshot);
}

/**
 * The steps that change a running lab into `next` in place: stop removed and changed nodes, remove their taps
 * and networks that go, add new networks and taps, re-apply the guard table, start new and changed nodes.
 */
export function planChange(running: ResolvedLab, next: ResolvedLab, c: ChangeSet, ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  const ns = next.netns;
  const oldNodes = new Map(running.nodes.map((n) => [n.name, n]));
  const newNodes = new Map(next.nodes.map((n) => [n.name, n]));
  for (const name of [...c.removeNodes, ...c.restartNodes]) {
    const node = oldNodes.get(name)!;
    steps.push({ title: `stop ${name}`, do: { kind: 'stop-guest', node: name, stop: kindOf(node).stop } });
    const taps = [
      ...node.nics.filter((n) => n.kind === 'bridge').map((n) => `link delete dev ${n.tap}`),
      // A NIC's ifb is no port of anything: it goes by itself.
      ...node.nics.filter((n) => n.impair && n.impair.direction !== 'ingress').map((n) => `link delete dev ${ifbName(running.name, name, n.index)}`),
    ];
    // Its host-side neighbour entries go too (a removed node's address may come back with another MAC).
    taps.push(...neighLines(running, [node], 'del'));
    if (taps.length) steps.push({ title: `remove ${name}'s taps`, do: { kind: 'exec', argv: ['ip', '-n', ns, '-force', '-batch', '-'], input: taps.join('\n') + '\n' } });
    steps.push({ title: `remove ${name}'s run directory`, do: { kind: 'rmtree', path: nodeDir(running.name, name) } });
  }
  const oldNets = new Map(running.networks.map((n) => [n.name, n]));
  for (const name of c.removeNetworks)
    steps.push({ title: `remove network ${name}`, do: { kind: 'exec', argv: ['ip', '-n', ns, 'link', 'delete', 'dev', oldNets.get(name)!.bridge] } });
  const mark = ownerMarker(next.name);
  const batch: string[] = [];
  const added = c.addNetworks.map((name) => next.networks.find((n) => n.name === name)!);
  for (const net of added) batch.push(...bridgeLines(net, mark, next.name));
  const bridgeOf = new Map(next.networks.map((n) => [n.name, n.bridge]));
  for (const name of [...c.addNodes, ...c.restartNodes])
    for (const nic of newNodes.get(name)!.nics.filter((n) => n.kind === 'bridge'))
      batch.push(...tapLines(nic.tap, tapMaster(next, nic.network), String(ctx.guestIds.uid), mark));
  for (const net of added) batch.push(bridgeUpLine(net));
  batch.push(...neighLines(next, [...c.addNodes, ...c.restartNodes].map((n) => newNodes.get(n)!), 'replace'));
  const startingNodes = { ...next, nodes: [...c.addNodes, ...c.restartNodes].map((n) => newNodes.get(n)!) };
  // A link end that stays may be impaired on the other end's tap (what its guest sends queues there): a tap made
  // again for a restarted node needs that impairment put back too.
  const newTaps = new Set(startingNodes.nodes.flatMap((n) => n.nics.map((x) => x.tap)));
  const peersImpairedOnNewTaps = next.nodes
    .filter((n) => !startingNodes.nodes.includes(n))
    .map((n) => ({ ...n, nics: n.nics.filter((x) => x.impair && x.impair.direction !== 'ingress' && x.peerTap && newTaps.has(x.peerTap)) }))
    .filter((n) => n.nics.length);
  const impaired = labImpairments({ ...next, nodes: [...startingNodes.nodes, ...peersImpairedOnNewTaps] });
  batch.push(...impaired.ip);
  if (batch.length) {
    const undo = [
      ...[...c.addNodes, ...c.restartNodes].flatMap((name) => newNodes.get(name)!.nics.filter((n) => n.kind === 'bridge').map((n) => `link delete dev ${n.tap}`)),
      ...impaired.ip.filter((l) => l.startsWith('link add name ')).map((l) => `link delete dev ${l.split(' ')[3]}`),
      ...c.addNetworks.map((name) => `link delete dev ${bridgeOf.get(name)!}`),
    ];
    steps.push({
      title: `add ${c.addNetworks.length} network(s) and the taps of ${c.addNodes.length + c.restartNodes.length} node(s) (one ip -batch)`,
      do: { kind: 'exec', argv: ['ip', '-n', ns, '-batch', '-'], input: batch.join('\n') + '\n' },
      undo: { kind: 'exec', argv: ['ip', '-n', ns, '-batch', '-'], input: undo.join('\n') + '\n' },
    });
  }
  steps.push(...l2Steps(ns, next, added, startingNodes.nodes, true));
  if (impaired.tc.length) steps.push(impairStep(ns, impaired));
  if (needsGuard(running) || needsGuard(next))
    steps.push({
      title: 'replace the anti-spoofing and DHCP guard rules (one nft transaction)',
      do: {
        kind: 'exec',
        argv: ['ip', 'netns', 'exec', ns, 'nft', '-f', '-'],
        input: `table bridge qnet {}\nflush table bridge qnet\n${renderGuardRuleset(next)}`,
      },
    });
  const starting = [...c.addNodes, ...c.restartNodes];
  if (starting.length) steps.push(...bootSteps(next, starting.map((n) => newNodes.get(n)!), ctx, 'the new guests are configured'));
  return steps;
}

/**
 * The steps that start nodes of a running lab again (stopped with `qnet stop`, or dead) as `up` started them. What
 * the lab made for them stays and is not made again: their taps, with what is on them (impairments, a link's
 * redirects, VLANs), their host-side neighbour entries. Their MACs are tied to their bridge ports again; their run
 * directories are made anew (a node without persist: true starts on a new overlay, as from `up`), a VNC forward
 * left running is stopped and started with its node.
 */
export function planStart(lab: ResolvedLab, nodes: ResolvedNode[], ctx: PlanContext): Step[] {
  const steps: Step[] = [];
  for (const node of nodes) {
    if (node.image?.vnc?.port !== undefined) steps.push({ title: `stop ${node.name}'s VNC forward if it is left`, do: { kind: 'stop-service', service: vncService(node.name) } });
    steps.push({ title: `remove ${node.name}'s run directory (made anew)`, do: { kind: 'rmtree', path: nodeDir(lab.name, node.name) } });
  }
  const fdb = fdbLines(lab, nodes);
  if (fdb.length)
    steps.push({
      title: `tie ${fdb.length} guest MAC${fdb.length === 1 ? '' : 's'} to ${fdb.length === 1 ? 'its bridge port' : 'their bridge ports'} again (one bridge -batch)`,
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'bridge', '-batch', '-'], input: fdb.join('\n') + '\n' },
    });
  const names = nodes.map((n) => n.name);
  steps.push(...bootSteps(lab, nodes, ctx, `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} configured`));
  return steps;
}

/** A readable rendering of a plan, for `--dry-run`. */
export function formatPlan(steps: Step[]): string {
  const lines: string[] = [];
  steps.forEach((s, i) => {
    lines.push(`${String(i + 1).padStart(2)}. ${s.title}`);
    const a = s.do;
    if (a.kind === 'exec' || a.kind === 'start-guest' || a.kind === 'start-service') lines.push(`      $ ${a.argv.map(shellQuote).join(' ')}`);
    if (a.kind === 'start-guest')
      (a.fds ?? []).forEach((f, i) => lines.push(`      fd ${4 + i} < ${f.path} (${f.write ? 'read-write' : 'read-only'}, opened by qnet)`));
    if (a.kind === 'resume-config') lines.push(`      ${a.file}: the node's files, MACs and hostname for the resume hook (with the lab key ${a.labKey}), fresh machine-id and seed`);
    if (a.kind === 'seed') lines.push(`      ${a.iso}: xorriso -as mkisofs -V cidata -J -r of meta-data, user-data (with the lab key ${a.labKey}), network-config`);
    if (a.kind === 'copy') lines.push(`      ${a.from} -> ${a.to}`);
    if (a.kind === 'start-guest' && a.snapshot)
      lines.push(a.snapshot.mode === 'save' ? `      saved to ${a.snapshot.path}` : `      -incoming fd:3 < ${a.snapshot.path} (boots as above if it cannot be restored)`);
    if (a.kind === 'exec' && a.input) for (const l of a.input.trimEnd().split('\n')) lines.push(`      | ${l}`);
    if (a.kind === 'write') for (const l of a.content.trimEnd().split('\n')) lines.push(`      ${path.basename(a.path)}: ${l}`);
    if (s.undo) lines.push(`      undo: ${describe(s.undo)}`);
  });
  return lines.join('\n');
}

function describe(a: Action): string {
  switch (a.kind) {
    case 'exec':
      return a.argv.join(' ');
    case 'rmtree':
      return `remove ${a.path}`;
    case 'rmdir-empty':
      return `remove ${a.path} if nothing else is in it`;
    case 'stop-guest':
      return `stop ${a.node}`;
    case 'stop-service':
      return `stop ${a.service}`;
    case 'host-forwarding':
      return `turn IPv4 forwarding on the host ${a.enable ? 'on' : 'off'}`;
    case 'release-uplink':
      return `give the uplink back from ${a.bridge} (its addresses and routes too), delete ${a.bridge}`;
    default:
      return a.kind;
  }
}

/**
 * The VLANs of VLAN-aware networks (their host sides, the given nodes' taps: one `bridge -batch`) and the
 * transparent links the given nodes are on (one `tc -batch`; `reset` first when a link's end is made again).
 */
function l2Steps(ns: string, lab: ResolvedLab, networks: ResolvedNetwork[], nodes: ResolvedNode[], reset: boolean): Step[] {
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

/** The step that impairs NICs (one tc -batch in the lab namespace); its hint says what a kernel without netem lacks. */
function impairStep(ns: string, impaired: ReturnType<typeof labImpairments>): Step {
  const what = impaired.nics.map(({ node, nic }) => `${node.name} NIC ${nic.index} (${describeImpairment(nic.impair!)})`).join('; ');
  return {
    title: `impair ${impaired.nics.length} NIC${impaired.nics.length === 1 ? '' : 's'}: ${what} (one tc -batch)`,
    // No undo of its own: the qdiscs go with the taps, the ifbs with the namespace.
    do: { kind: 'exec', argv: ['ip', 'netns', 'exec', ns, 'tc', '-batch', '-'], input: impaired.tc.join('\n') + '\n' },
    hint: NETEM_HINT,
  };
}
