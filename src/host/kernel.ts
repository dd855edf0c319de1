// Kernel features a lab may need beyond bridges and taps, tried where nothing can be disturbed: a throwaway
// network namespace, removed at once.
import { RuntimeError } from '../errors.js';
import type { CommandRunner } from './run.js';

/** True when this kernel's bridges can filter VLANs (CONFIG_BRIDGE_VLAN_FILTERING): tried in a throwaway namespace. */
export async function bridgeVlanFiltering(run: CommandRunner): Promise<boolean> {
  const ns = `qnet-probe-${process.pid}`;
  if ((await run.run(['ip', 'netns', 'add', ns], { allowFail: true })).code !== 0) return false;
  try {
    return (await run.run(['ip', '-n', ns, 'link', 'add', 'name', 'v0', 'type', 'bridge', 'vlan_filtering', '1'], { allowFail: true })).code === 0;
  } finally {
    await run.run(['ip', 'netns', 'delete', ns], { allowFail: true });
  }
}

let netemSeen = false;

/**
 * True when this kernel has netem (sch_netem, built in or loadable: tc loads it): a netem qdisc put on the loopback
 * of a namespace of the probe's own, which goes with it (nothing to remove, even if qnet dies). A yes is kept for
 * the process; a no is asked again (the module may be loaded meanwhile).
 */
export async function netemUsable(run: CommandRunner): Promise<boolean> {
  if (netemSeen) return true;
  const r = await run.run(['unshare', '--net', '--', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { allowFail: true });
  // unshare's own failure (not root) says nothing of the kernel: that is an error, not a no.
  if (r.code !== 0 && /^unshare:/m.test(r.stderr)) throw new RuntimeError(`cannot try whether this kernel has netem: ${r.stderr.trim()}`);
  netemSeen = r.code === 0;
  return netemSeen;
}

/**
 * Why Open vSwitch's kernel datapath cannot carry OVN here (undefined when it can): the openvswitch module (loaded on
 * demand by the kernel) must take a datapath, a flow with a conntrack zone (OVN's ACLs and NAT put each logical
 * switch and router in its own zone; a kernel built without CONFIG_NF_CONNTRACK_ZONES takes `ct()` but refuses
 * `ct(zone=N)`, and ovn-controller's flows are then rejected so no port is ever bound: measured on Debian's
 * user-mode-linux 6.1), and the geneve module a Geneve link; all made in a throwaway namespace and removed with it.
 * Otherwise OVS runs its userspace datapath (netdev), which needs none of them.
 */
export async function ovsKernelDatapathProblem(run: CommandRunner): Promise<string | undefined> {
  const ns = `qnet-probe-${process.pid}`;
  if ((await run.run(['ip', 'netns', 'add', ns], { allowFail: true })).code !== 0) return 'a network namespace for the probe could not be made';
  const inNs = (argv: string[]) => run.run(['ip', 'netns', 'exec', ns, ...argv], { allowFail: true, timeoutMs: 10000 }).catch(() => null);
  try {
    const dp = await inNs(['ovs-dpctl', 'add-dp', 'qnetprobe']);
    if (dp?.code !== 0) return 'the kernel has no usable openvswitch module (a datapath could not be made)';
    try {
      const zone = await inNs(['ovs-dpctl', 'add-flow', 'qnetprobe', 'in_port(0),eth(),eth_type(0x0800),ipv4(proto=6)', 'ct(zone=1)']);
      if (zone?.code !== 0) return "the kernel's openvswitch datapath has no conntrack zones (CONFIG_NF_CONNTRACK_ZONES), which OVN's ACLs and NAT need";
    } finally {
      await inNs(['ovs-dpctl', 'del-dp', 'qnetprobe']);
    }
    if ((await run.run(['ip', '-n', ns, 'link', 'add', 'g0', 'type', 'geneve', 'id', '1', 'remote', '192.0.2.1'], { allowFail: true })).code !== 0) return 'the kernel has no geneve module';
    return undefined;
  } finally {
    await run.run(['ip', 'netns', 'delete', ns], { allowFail: true });
  }
}

/** True when Open vSwitch's kernel datapath can carry OVN here (see ovsKernelDatapathProblem). */
export async function ovsKernelDatapath(run: CommandRunner): Promise<boolean> {
  return (await ovsKernelDatapathProblem(run)) === undefined;
}
