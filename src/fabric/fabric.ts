// How a lab's networks are realised, behind one small interface (as guest kinds are): Linux bridges in the lab
// namespace, or OVN. The planner asks the lab's fabric for the steps that make its networks and plug each started
// node; nothing else asks which fabric a lab is on. Pure.
import type { PlanContext, Step } from '../plan/steps.js';
import type { ResolvedLab, ResolvedNetwork, ResolvedNic, ResolvedNode } from '../topology/model.js';
import type { Impairment } from '../topology/impair.js';
import { bridgeFabric } from './bridge.js';
import { ovnFabric } from './ovn/plan.js';

export interface Fabric {
  readonly name: 'bridge' | 'ovn';
  /** The steps that make the lab's networks and the taps of its nodes (its namespace exists, no guest runs yet). */
  networkSteps(lab: ResolvedLab, ctx: PlanContext): Step[];
  /** The steps that plug a node's NICs into its networks once its QEMU has opened its taps (none on bridges). */
  plugSteps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext): Step[];
  /** The namespace a running guest's tap is in (where tcpdump and tc reach it): the lab's, or undefined for the host's. */
  tapNamespace(lab: ResolvedLab): string | undefined;
  /** Why this impairment cannot be made on this NIC on this fabric (undefined when it can). */
  impairmentRefusal(lab: ResolvedLab, nic: ResolvedNic, i: Impairment): string | undefined;
  /** How a whole network (one with a bridge or switch) is captured on this fabric, or why it cannot be. */
  networkCapture(lab: ResolvedLab, net: ResolvedNetwork): NetworkCapture;
}

/** A whole network's capture: at one interface (a Linux bridge), through a mirror of its ports (OVN), or refused. */
export type NetworkCapture =
  | { kind: 'iface'; iface: string; netns?: string }
  | { kind: 'mirror'; hostSide: boolean }
  | { kind: 'refused'; why: string };

/** The fabric a lab's networks are made on. */
export function fabricOf(lab: ResolvedLab): Fabric {
  return lab.fabric === 'ovn' ? ovnFabric : bridgeFabric;
}
