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
 * True when Open vSwitch's kernel datapath can carry OVN here: the openvswitch module (loaded on demand by the
 * kernel) takes a datapath and the geneve module a Geneve link, both made in a throwaway namespace and removed with
 * it. Otherwise OVS runs its userspace datapath (netdev), which needs neither.
 */
export async function ovsKernelDatapath(run: CommandRunner): Promise<boolean> {
  const ns = `qnet-probe-${process.pid}`;
  if ((await run.run(['ip', 'netns', 'add', ns], { allowFail: true })).code !== 0) return false;
  try {
    const dp = await run.run(['ip', 'netns', 'exec', ns, 'ovs-dpctl', 'add-dp', 'qnetprobe'], { allowFail: true, timeoutMs: 10000 }).catch(() => null);
    if (dp?.code !== 0) return false;
    await run.run(['ip', 'netns', 'exec', ns, 'ovs-dpctl', 'del-dp', 'qnetprobe'], { allowFail: true, timeoutMs: 10000 });
    return (await run.run(['ip', '-n', ns, 'link', 'add', 'g0', 'type', 'geneve', 'id', '1', 'remote', '192.0.2.1'], { allowFail: true })).code === 0;
  } finally {
    await run.run(['ip', 'netns', 'delete', ns], { allowFail: true });
  }
}
