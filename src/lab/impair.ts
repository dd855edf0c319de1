// `qnet impair`: change a NIC's impairments on a running lab, without restarting anything: what was in force on
// its tap (and its ifb) is taken off, the new one put on. What is in force is kept in the lab's state file (over
// what the topology declared) so that `status` shows it; a restarted node comes back as its topology says.
import { RuntimeError, UserError } from '../errors.js';
import { netemUsable } from '../host/kernel.js';
import { RealRunner, type CommandRunner } from '../host/run.js';
import { clearImpairment, nicImpairment, NETEM_HINT, NO_NETEM } from '../render/impair.js';
import { describeImpairment, needsNetem, resolveImpairment, type Impairment } from '../topology/impair.js';
import { ImpairSchema, type ImpairInput } from '../topology/schema.js';
import type { ResolvedNic, ResolvedNode } from '../topology/model.js';
import { nicName, resolveNicRef } from './nicref.js';
import { fabricOf } from '../fabric/fabric.js';
import { updateState, upState } from './state.js';

/** Sets (or with `clear`, removes) a NIC's impairments on a running lab; resolves with what is in force now. */
export async function setImpairment(labName: string, ref: string, input: ImpairInput | 'clear', runner: CommandRunner = new RealRunner()): Promise<string> {
  const state = await upState(labName);
  const { node, nic } = resolveNicRef(state.lab, ref);
  const where = `${node.name} ${nicName(node, nic)}`;
  if (nic.kind !== 'bridge') throw new UserError(`${where}: impairments go on a tap, and a ${nic.kind === 'user' ? 'user-mode NIC' : 'NIC on a socket network'} has none`);
  let next: Impairment | undefined;
  if (input !== 'clear') {
    const parsed = ImpairSchema.safeParse(input);
    if (!parsed.success) throw new UserError(`${where}: ${parsed.error.issues.map((i) => `${i.path.length ? `--${String(i.path[0])}: ` : ''}${i.message}`).join('; ')}`);
    next = resolveImpairment(parsed.data);
    if (!next) throw new UserError(`${where}: say what to impair (--delay, --jitter, --loss, --rate, --duplicate, --corrupt), or --clear`);
    const refused = fabricOf(state.lab).impairmentRefusal(state.lab, nic, next);
    if (refused) throw new UserError(`${where}: direction ${refused}; nothing was changed`);
  }
  const inForce = (n: ResolvedNode, c: ResolvedNic): Impairment | undefined => {
    const live = state.impair?.[n.name]?.[String(c.index)];
    return live === null ? undefined : (live ?? c.impair);
  };
  if (nic.peerTap && next) {
    // What this guest sends and what its peer receives are one queue, on the peer's tap: one impairment at most.
    const peer = state.lab.nodes.flatMap((n) => n.nics.filter((c) => c.tap === nic.peerTap).map((c) => ({ n, c })))[0];
    const theirs = peer && inForce(peer.n, peer.c);
    if (peer && theirs && ((next.direction !== 'ingress' && theirs.direction !== 'egress') || (next.direction !== 'egress' && theirs.direction !== 'ingress')))
      throw new UserError(
        `${where}: on link network "${nic.network}" what one end sends is what the other receives, and ${peer.n.name} ${nicName(peer.n, peer.c)} has ${describeImpairment(theirs)}: clear it first (or impair the other direction)`,
      );
  }
  // Asked before anything is taken off: trying tc and failing would leave the NIC with no impairment at all.
  if (next && needsNetem(next) && !(await netemUsable(runner))) {
    const now = inForce(node, nic);
    throw new RuntimeError(`${where}: ${describeImpairment(next)}: ${NO_NETEM}.\nNothing was changed: ${now ? `${describeImpairment(now)} is still in force` : 'it has no impairment'}`);
  }
  await apply(runner, fabricOf(state.lab).tapNamespace(state.lab), labName, node, nic, next, inForce(node, nic));
  await updateState(state, (now) => ({ ...now, impair: { ...(now.impair ?? {}), [node.name]: { ...(now.impair?.[node.name] ?? {}), [String(nic.index)]: next ?? null } } }));
  return `${where}: ${next ? describeImpairment(next) : 'no impairment'}`;
}

// Takes off what is on the NIC (nothing there is fine), then puts the new impairment on; on failure, none is left.
// `ns`: the namespace its tap is in (the lab's; on OVN the host's, undefined), where its ifb is made too.
async function apply(runner: CommandRunner, ns: string | undefined, lab: string, node: ResolvedNode, nic: ResolvedNic, next: Impairment | undefined, previous: Impairment | undefined): Promise<void> {
  // A link's end: what was in force comes off, and on a failure what was just tried (the queues it took).
  const off = clearImpairment(lab, node.name, nic, previous);
  const undo = nic.peerTap && next ? clearImpairment(lab, node.name, nic, next) : off;
  const tc = ns ? ['ip', 'netns', 'exec', ns, 'tc'] : ['tc'];
  const ip = ns ? ['ip', '-n', ns] : ['ip'];
  await runner.run([...tc, '-force', '-batch', '-'], { input: off.tc.join('\n') + '\n', allowFail: true });
  await runner.run([...ip, '-force', '-batch', '-'], { input: off.ip.join('\n') + '\n', allowFail: true });
  if (!next) return;
  const on = nicImpairment(lab, node.name, nic, next);
  try {
    if (on.ip.length) await runner.run([...ip, '-batch', '-'], { input: on.ip.join('\n') + '\n' });
    await runner.run([...tc, '-batch', '-'], { input: on.tc.join('\n') + '\n' });
  } catch (e) {
    await runner.run([...tc, '-force', '-batch', '-'], { input: undo.tc.join('\n') + '\n', allowFail: true });
    await runner.run([...ip, '-force', '-batch', '-'], { input: undo.ip.join('\n') + '\n', allowFail: true });
    throw new RuntimeError(`${node.name} ${nicName(node, nic)}: the impairment could not be set (${(e as Error).message.trim()}); it has none now.\n${NETEM_HINT}`);
  }
}
