// NODE[:NIC] references on the command line (qnet link, capture, impair): a node, and one of its NICs by position
// or by the name the guest gives it (eth1; nic1 for image nodes).
import { UserError } from '../errors.js';
import { nicName, type ResolvedLab, type ResolvedNic, type ResolvedNode } from '../topology/model.js';

export { nicName };

/** The node and NIC a reference names; a lone NODE means its only NIC. UserError (exit 2) naming what exists otherwise. */
export function resolveNicRef(lab: ResolvedLab, ref: string): { node: ResolvedNode; nic: ResolvedNic } {
  const m = /^([^:]+)(?::(.+))?$/.exec(ref);
  if (!m) throw new UserError(`"${ref}": expected NODE or NODE:NIC (a NIC by position, 0 for the first, or by name, eth0)`);
  const [, name, which] = m;
  const node = lab.nodes.find((n) => n.name === name);
  if (!node) throw new UserError(`"${ref}": lab ${lab.name} has no node "${name}" (nodes: ${lab.nodes.map((n) => n.name).join(', ')})`);
  const names = node.nics.map((n) => nicName(node, n));
  if (which === undefined) {
    if (node.nics.length === 1) return { node, nic: node.nics[0]! };
    throw new UserError(`"${ref}": ${node.name} has ${node.nics.length} NICs; say which: ${names.map((n) => `${node.name}:${n}`).join(', ')}`);
  }
  const byIndex = /^\d+$/.test(which) ? node.nics[Number(which)] : undefined;
  const nic = byIndex ?? node.nics.find((n) => nicName(node, n) === which);
  if (!nic) throw new UserError(`"${ref}": ${node.name} has no NIC "${which}" (its NICs: ${names.join(', ')}, or 0..${node.nics.length - 1})`);
  return { node, nic };
}
