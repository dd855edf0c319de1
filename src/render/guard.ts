// Pure rendering of the lab's bridge-family nft table (applied inside the lab namespace): anti-spoofing (a guest
// sends only from its own MAC and IPv4, as libvirt's clean-traffic) and the DHCP guard (no guest answers as a
// DHCP server) on the networks that ask for them.
import { formatCidr, formatIPv4, networkOf } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';

/** True when any network of the lab filters its guests. */
export function needsGuard(lab: ResolvedLab): boolean {
  return lab.networks.some((n) => n.antispoof || n.dhcpGuard);
}

/** The `table bridge qnet` ruleset; one rule group per tap on a filtered network. */
export function renderGuardRuleset(lab: ResolvedLab): string {
  const nets = new Map(lab.networks.map((n) => [n.name, n]));
  const rules: string[] = [];
  for (const node of lab.nodes)
    for (const nic of node.nics) {
      const net = nets.get(nic.network);
      if (!net || nic.kind !== 'bridge' || (!net.antispoof && !net.dhcpGuard)) continue;
      const tap = `iifname "${nic.tap}"`;
      rules.push(`    # ${node.name} eth${nic.index}`);
      if (net.antispoof) {
        rules.push(`    ${tap} ether saddr != ${nic.mac} drop`);
        rules.push(`    ${tap} ether type arp arp saddr ether != ${nic.mac} drop`);
        // A router forwards others' packets, so only its MAC is pinned. A NIC whose address comes from a
        // range (not known beforehand) is held to its subnet. 0.0.0.0 is a DHCP client's and ARP probe's source.
        if (!node.router) {
          const subnet = net.subnet ?? net.address;
          const known = nic.addresses.map((a) => formatIPv4(a.ip));
          const allowed = known.length
            ? ['0.0.0.0', ...known]
            : subnet
              ? ['0.0.0.0', formatCidr({ ip: networkOf(subnet), prefix: subnet.prefix })]
              : [];
          if (allowed.length) {
            const set = `{ ${allowed.join(', ')} }`;
            rules.push(`    ${tap} ether type arp arp saddr ip != ${set} drop`);
            rules.push(`    ${tap} ether type ip ip saddr != ${set} drop`);
          }
        }
      }
      if (net.dhcpGuard) rules.push(`    ${tap} ether type ip udp sport 67 drop`);
    }
  return [
    'table bridge qnet {',
    '  chain guard {',
    '    type filter hook prerouting priority filter; policy accept;',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n');
}
