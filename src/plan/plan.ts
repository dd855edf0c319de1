// Pure planning: a resolved lab (+ image, acceleration, user) becomes ordered steps, each with its inverse.
import path from 'node:path';
import { nodeDir, labDir } from '../dirs.js';
import type { ChangeSet } from './change.js';
import type { Action, GuestSnapshot, PassedFile, PlanContext, Step, StopHow } from './steps.js';
import { shellQuote } from '../render/shell.js';

export { shellQuote };
import { bridgeLines, bridgeUpLine, neighLines, tapLines, tapMaster } from '../render/ipbatch.js';
import { ownerMarker } from '../render/markers.js';
import { fdbLines } from '../render/l2.js';
import { needsGuard, renderGuardRuleset } from '../render/guard.js';
import { IPV6_OFF } from '../render/ipbatch.js';
import { ifbName, labImpairments } from '../render/impair.js';
import { kindOf } from '../guest/kinds.js';
import { labKeySteps, vncService } from '../guest/image-node.js';
import type { ResolvedLab, ResolvedNode } from '../topology/model.js';
import { fabricOf } from '../fabric/fabric.js';
import { impairStep, l2Steps } from '../fabric/bridge.js';

export type { Action, GuestSnapshot, Step, PlanContext, PassedFile, StopHow };

/** The steps that bring a lab up from nothing. Pure: the same inputs give the same plan. */
export function planUp(lab: ResolvedLab, ctx: PlanContext): Step[] {
  const dir = labDir(lab.name);
  const steps: Step[] = [
    // Exclusive: the run directory is the lab's lock, so two `up`s of one lab at the same instant cannot both run.
    { title: `create run directory ${dir}`, do: { kind: 'mkdir', path: dir, mode: 0o711, exclusive: true }, undo: { kind: 'rmtree', path: dir } },
    // A user's lab namespace is its holder's, there before `up` runs inside it (lab/rootless/holder.ts).
    ...(ctx.rootless
      ? []
      : [
          {
            title: `create network namespace ${lab.netns}`,
            do: { kind: 'exec', argv: ['ip', 'netns', 'add', lab.netns] },
            undo: { kind: 'exec', argv: ['ip', 'netns', 'delete', lab.netns] },
          } satisfies Step,
        ]),
    {
      title: 'turn IPv6 off in the lab namespace (its bridges and taps send nothing of their own)',
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, ...IPV6_OFF] },
      // No undo of its own: the settings go with the namespace.
    },
  ];
  steps.push(...fabricOf(lab).networkSteps(lab, ctx));
  steps.push(...bootSteps(lab, lab.nodes, ctx, 'every guest is configured'));
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
  const fabric = fabricOf(lab);
  for (const [file, node] of savers) steps.push(...nodeSteps(lab, node, ctx, { mode: 'save', path: file }), ...fabric.plugSteps(lab, node, ctx));
  const waitFor = [...savers].filter(([file]) => rest.some((n) => snaps[n.name]?.path === file)).map(([, n]) => n.name);
  if (waitFor.length)
    steps.push({
      title: `wait until ${waitFor.join(', ')} ${waitFor.length > 1 ? 'are' : 'is'} saved for the other nodes of ${waitFor.length > 1 ? 'their shapes' : 'its shape'}`,
      do: { kind: 'wait-snapshot', nodes: waitFor },
    });
  for (const node of rest) {
    const s = snaps[node.name];
    steps.push(...nodeSteps(lab, node, ctx, s ? { mode: 'restore', path: s.path } : undefined), ...fabric.plugSteps(lab, node, ctx));
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
    case 'ovn-clear':
      return `remove every northbound row marked qnet-lab=${a.lab} (found by the marker)`;
    case 'release-uplink':
      return `give the uplink back from ${a.bridge} (its addresses and routes too), delete ${a.bridge}`;
    default:
      return a.kind;
  }
}
