// Guest kinds behind one small interface: what a node of the kind needs prepared and how QEMU starts it (its
// steps), how it is known to be ready, how it stops, and how `exec` reaches it. The planner, `up`, `down`,
// `status` and `exec` ask the kind; nothing else asks whether a node has an image. Pure.
import type { GuestSnapshot, PlanContext, Step, StopHow } from '../plan/steps.js';
import type { LabRoute } from '../topology/reach.js';
import type { ResolvedLab, ResolvedNode } from '../topology/model.js';
import type { BootWatch } from './boot-failure.js';
import { builtinKind } from './builtin.js';
import { imageKind } from './image-node.js';

/** How `up` knows a node is ready (carried out by lab/ready.ts). */
export type ReadyWait =
  /** The built-in guest says READY on its control port. */
  | { kind: 'control' }
  /** An image guest's readiness unit says READY on the control port at the end of cloud-init; then its agent answers. */
  | { kind: 'cloud-init'; agent: 'require' | 'if-present' }
  /**
   * A node of an image with qnet's resume hook (no cloud-init in its boot, restored or not): the hook says READY on
   * the control port once the node's identity and addresses are applied; then its agent answers.
   */
  | { kind: 'hook'; agent: 'require' | 'if-present' }
  /** qemu-guest-agent answers a ping. */
  | { kind: 'agent' }
  /** qnet's dnsmasq has handed out a lease to each of these NICs. */
  | { kind: 'lease'; leases: Array<{ network: string; mac: string }> }
  /** The serial console shows this pattern (a JavaScript regular expression). */
  | { kind: 'console'; pattern: string }
  /** A TCP port answers, probed from the lab namespace. */
  | { kind: 'tcp'; route: LabRoute }
  /** Running is enough. */
  | { kind: 'none' };

export interface GuestKind {
  readonly name: 'builtin' | 'image';
  /** The steps that prepare the node (its taps exist already) and start its QEMU. */
  steps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext, snapshot?: GuestSnapshot): Step[];
  /** How `up` knows the node is ready. */
  ready(lab: ResolvedLab, node: ResolvedNode): ReadyWait;
  /** Where `up`, while it waits, sees that the node cannot boot (none: its kind boots qnet's own kernel). */
  bootWatch?(lab: string, node: ResolvedNode): BootWatch;
  /** How it is stopped. */
  readonly stop: StopHow;
  /** What to tell a user whose `exec` cannot reach the guest agent. */
  execHint(lab: string, node: ResolvedNode): string;
  /** What a guest of the kind waiting at its snapshot point is told: this host's clock, then its configuration. */
  resumeMessage(config: string, epoch: number): string;
}

/** The kind of a node: an image node when it names an image, the built-in guest otherwise. */
export function kindOf(node: ResolvedNode): GuestKind {
  return node.image ? imageKind : builtinKind;
}

/** What `down` does with a guest whose state file is gone: stops it as its kind (read from its process marker). */
export function stopOfKind(kind: string | undefined): StopHow {
  return kind === 'image' ? imageKind.stop : builtinKind.stop;
}
