// Kernel features a lab may need beyond bridges and taps, tried where nothing can be disturbed: a throwaway
// network namespace, removed at once.
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
