// What a lab on OVN cannot have, each refusal with its reason and what to use instead. Pure; collects issues.
// Judged on the topology as written (a default is no request), before anything is made.
import type { Findings } from './findings.js';
import type { Topology } from './schema.js';

const MODE_REFUSED: Record<string, string> = {
  bridged:
    'a bridged network puts guests on one host interface\'s LAN through a Linux bridge in the lab namespace, which guests on other hosts cannot join; on OVN use mode nat (or routed): the gateway host carries the way out',
  macnat:
    'a macnat network rewrites frames in one host\'s bridge for its Wi-Fi uplink, which guests on other hosts cannot join; on OVN use mode nat: the gateway host carries the way out',
  link:
    'a link network joins two taps in one lab namespace with tc, which taps on two hosts cannot be; on OVN use mode socket (a QEMU UDP link, between hosts too) or a bridge network of the two NICs (a logical switch)',
};

const NO_STP = 'an OVN logical switch has no spanning tree (it has no loops to break)';

/** Adds an issue for each feature the topology asks for that OVN cannot carry. */
export function refuseOnOvn(topo: Topology, issues: Findings): void {
  for (const [name, net] of Object.entries(topo.networks)) {
    const at = (...p: string[]) => ['networks', name, ...p];
    const why = MODE_REFUSED[net.mode];
    if (why) issues.add(at('mode'), `not on OVN: ${why}`);
    if (net.vlans !== undefined && net.vlans !== false)
      issues.add(
        at('vlans'),
        'not on OVN: VLAN-aware networks are a Linux bridge\'s VLAN filtering, and OVN\'s logical switches drop tagged frames; make a network per VLAN (a logical switch each) and route between them with a router node',
      );
    for (const key of ['stp', 'forwardDelay', 'helloTime'] as const)
      if (net[key] !== undefined && !why) issues.add(at(key), `not on OVN: ${NO_STP}; remove "${key}"`);
  }
  for (const [name, node] of Object.entries(topo.nodes))
    node.nics.forEach((nic, i) => {
      const net = nic.network === undefined ? undefined : topo.networks[nic.network];
      // On a refused network, the network's own refusal says it all.
      if (nic.vlans !== undefined && net && !MODE_REFUSED[net.mode] && (net.vlans === undefined || net.vlans === false))
        issues.add(
          ['nodes', name, 'nics', i, 'vlans'],
          'not on OVN: OVN\'s logical switches drop tagged frames, so these sub-interfaces would reach nothing; give each VLAN a network of its own and the node a NIC on each',
        );
    });
}
