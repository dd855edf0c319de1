// Labs on OVN as far as they go today: the plan (placement and northbound batch) for `up --dry-run`, and a clear
// refusal of the real `up`, naming what is not there yet. The host side and the execution replace the refusal.
import { RuntimeError } from '../errors.js';
import { formatNbBatch, renderNbUp } from '../fabric/ovn/nb.js';
import { labGuestMtu } from '../fabric/ovn/mtu.js';
import { localHostFacts } from '../host/facts.js';
import { capacityOf, formatPlacement, placeNodes, type HostCapacity } from '../plan/placement.js';
import type { ResolvedLab } from '../topology/model.js';

/** The text `qnet up --dry-run` prints for a lab on OVN: hosts, placement, the guests' MTU and the NB batch. */
export async function previewOvn(lab: ResolvedLab): Promise<string> {
  const hosts = lab.hosts ?? [];
  // Only this machine is observed here; a host over SSH counts with what the topology grants it, or unbounded.
  const local = hosts.some((h) => h.ssh.kind === 'local') ? await localHostFacts() : undefined;
  const capacity: Record<string, HostCapacity | undefined> = Object.fromEntries(hosts.map((h) => [h.name, capacityOf(h, h.ssh.kind === 'local' ? local : undefined)]));
  const placement = placeNodes(lab, capacity);
  // The underlay's MTU is observed on each host at `up`; until then, a plain 1500-byte underlay is assumed.
  const mtu = labGuestMtu(hosts.map(() => 1500));
  const where = lab.ovn?.central ? `central ${lab.ovn.central}` : `NB ${lab.ovn?.nb}, SB ${lab.ovn?.sb}`;
  const lines = [
    `plan for lab ${lab.name} on OVN (${hosts.length} host${hosts.length === 1 ? '' : 's'}; ${where}; gateway ${lab.ovn?.gateway}); nothing was changed`,
    '# placement',
    formatPlacement(lab, placement, capacity),
    ...(placement.unbounded.length ? [`# ${placement.unbounded.join(', ')}: capacity not observed in a dry run (give the host "memory" and "cpus" to bound it)`] : []),
    `# guests' MTU ${mtu}${hosts.length > 1 ? ' (assuming 1500-byte underlays; observed at up)' : ''}`,
    '# ovn-nbctl batch (up, one transaction)',
    formatNbBatch(renderNbUp(lab, { placement: placement.hosts, mtu })).trimEnd(),
  ];
  return lines.join('\n') + '\n';
}

/** The error of `up` on a lab on OVN until its host side is wired: what is missing, and what works already. */
export function ovnNotYet(lab: ResolvedLab): RuntimeError {
  return new RuntimeError(
    `lab ${lab.name} is on OVN (${lab.hosts?.length ?? 0} host(s)), and \`qnet up\` cannot make labs on OVN yet: ` +
      'the host side (`qnet host setup`: Open vSwitch and ovn-controller on each host), the taps on br-int, QEMU on each host over SSH ' +
      'and the execution of the northbound batch are not wired. `qnet up --dry-run` shows the placement and the northbound batch; ' +
      '`qnet validate` checks the file. Without "fabric: ovn", "hosts" and "ovn", the lab runs on Linux bridges on this machine.',
  );
}
