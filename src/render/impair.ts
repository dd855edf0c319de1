// Pure rendering of a NIC's impairments as Linux traffic control on its tap, inside the lab namespace. What the
// guest receives leaves the tap: netem (delay, jitter, loss, duplicate, corrupt) at the tap's root, tbf (rate) under
// it. What the guest sends enters the tap: an ingress qdisc redirects it (u32 match-all, mirred) to an ifb device of
// the NIC, which carries the same netem and tbf on its way out.
import { createHash } from 'node:crypto';
import type { Impairment } from '../topology/impair.js';
import type { ResolvedLab, ResolvedNic, ResolvedNode } from '../topology/model.js';

/** The ifb device that carries what a NIC's guest sends through its impairments (inside the lab namespace). */
export function ifbName(lab: string, node: string, nic: number): string {
  return `qi${createHash('sha256').update(`ifb/${lab}/${node}/${nic}`).digest('hex').slice(0, 8)}`;
}

// netem's and tbf's arguments for one impairment (netem only for what tbf does not do).
function netemArgs(i: Impairment): string[] {
  return [
    ...(i.delayUs !== undefined ? ['delay', `${i.delayUs}us`, ...(i.jitterUs ? [`${i.jitterUs}us`] : [])] : []),
    ...(i.lossPct !== undefined ? ['loss', `${i.lossPct}%`] : []),
    ...(i.duplicatePct !== undefined ? ['duplicate', `${i.duplicatePct}%`] : []),
    ...(i.corruptPct !== undefined ? ['corrupt', `${i.corruptPct}%`] : []),
  ];
}

function tbfArgs(rateBps: number): string[] {
  // Burst: 10 ms at the rate (at least two full frames); queue: 50 ms at the rate (at least two bursts).
  const burst = Math.max(3200, Math.round(rateBps / 8 / 100));
  const limit = Math.max(2 * burst, Math.round(rateBps / 8 / 20));
  return ['rate', `${rateBps}bit`, 'burst', `${burst}b`, 'limit', `${limit}b`];
}

/** `tc -batch` lines that put an impairment on device `dev` (its root): netem, tbf, or netem with tbf under it. */
export function qdiscLines(dev: string, i: Impairment): string[] {
  // Everything lost: a FIFO of length 0 drops each packet (exact, and needs no netem; nothing else then matters).
  if ((i.lossPct ?? 0) >= 100) return [`qdisc replace dev ${dev} root handle 1: pfifo limit 0`];
  const netem = netemArgs(i);
  if (netem.length && i.rateBps !== undefined)
    return [`qdisc replace dev ${dev} root handle 1: netem ${netem.join(' ')}`, `qdisc replace dev ${dev} parent 1:1 handle 10: tbf ${tbfArgs(i.rateBps).join(' ')}`];
  if (netem.length) return [`qdisc replace dev ${dev} root handle 1: netem ${netem.join(' ')}`];
  if (i.rateBps !== undefined) return [`qdisc replace dev ${dev} root handle 1: tbf ${tbfArgs(i.rateBps).join(' ')}`];
  return [];
}

/**
 * What impairing one NIC takes: `ip -batch` lines (its ifb, when what the guest sends is impaired) and `tc -batch`
 * lines. A link's end needs no ifb: what its guest sends leaves by the other end's tap, whose root takes it.
 */
export function nicImpairment(lab: string, node: string, nic: Pick<ResolvedNic, 'index' | 'tap' | 'peerTap'>, i: Impairment): { ip: string[]; tc: string[] } {
  const ip: string[] = [];
  const tc: string[] = [];
  if (nic.peerTap) {
    if (i.direction !== 'egress') tc.push(...qdiscLines(nic.tap, i));
    if (i.direction !== 'ingress') tc.push(...qdiscLines(nic.peerTap, i));
    return { ip, tc };
  }
  if (i.direction !== 'egress') tc.push(...qdiscLines(nic.tap, i));
  if (i.direction !== 'ingress') {
    const ifb = ifbName(lab, node, nic.index);
    ip.push(`link add name ${ifb} type ifb`, `link set dev ${ifb} alias qnet:lab=${lab} up`);
    tc.push(
      `qdisc add dev ${nic.tap} handle ffff: ingress`,
      `filter add dev ${nic.tap} parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
      ...qdiscLines(ifb, i),
    );
  }
  return { ip, tc };
}

/**
 * `ip -batch` and `tc -batch` lines that take a NIC's impairments off (each may find nothing: run with -force). A
 * link's end keeps its ingress qdisc (the redirect to its peer) and clears only the queues `previous` was on.
 */
export function clearImpairment(lab: string, node: string, nic: Pick<ResolvedNic, 'index' | 'tap' | 'peerTap'>, previous?: Impairment): { ip: string[]; tc: string[] } {
  if (nic.peerTap) {
    const d = previous?.direction;
    return { ip: [], tc: [...(d && d !== 'egress' ? [`qdisc del dev ${nic.tap} root`] : []), ...(d && d !== 'ingress' ? [`qdisc del dev ${nic.peerTap} root`] : [])] };
  }
  return { ip: [`link del dev ${ifbName(lab, node, nic.index)}`], tc: [`qdisc del dev ${nic.tap} root`, `qdisc del dev ${nic.tap} ingress`] };
}

/** Every impaired NIC of a lab, for the plan: ifb lines for the link batch, and the tc batch. */
export function labImpairments(lab: ResolvedLab): { ip: string[]; tc: string[]; nics: Array<{ node: ResolvedNode; nic: ResolvedNic }> } {
  const ip: string[] = [];
  const tc: string[] = [];
  const nics: Array<{ node: ResolvedNode; nic: ResolvedNic }> = [];
  for (const node of lab.nodes)
    for (const nic of node.nics)
      if (nic.impair) {
        const r = nicImpairment(lab.name, node.name, nic, nic.impair);
        ip.push(...r.ip);
        tc.push(...r.tc);
        nics.push({ node, nic });
      }
  return { ip, tc, nics };
}

/** What to do when tc cannot make an impairment: the kernel parts it needs. */
export const NETEM_HINT =
  'impairments need the kernel\'s traffic control: netem (CONFIG_NET_SCH_NETEM, `modprobe sch_netem`) for delay, jitter, loss, duplicate and corrupt; tbf for rate; ifb, the ingress qdisc, u32 and mirred for what the guest sends (direction egress or both). `qnet doctor` says which this host has';

/** Why an impairment needing netem is refused on a kernel without it, and what to do. */
export const NO_NETEM =
  'delay, jitter, loss, duplicate and corrupt need netem, and this kernel has no sch_netem: load it (`modprobe sch_netem`; kernel option CONFIG_NET_SCH_NETEM) or use a distribution kernel, which has it. A rate alone (tbf) and 100% loss work without it';
