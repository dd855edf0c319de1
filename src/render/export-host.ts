// Pure rendering of the host side of a lab's bridged networks as persistent configuration: Debian's ifupdown
// (/etc/network/interfaces with bridge-utils options) and systemd-networkd (.netdev and .network files) — the
// seed's /etc/conf.d/net in today's formats. With it installed, the bridge exists at boot and qnet joins it.
import type { HostAddr, HostRoute } from './host-types.js';
import type { ResolvedLab, ResolvedNetwork } from '../topology/model.js';
import type { LanUplink } from './lan.js';

/** One bridged network and its uplink as it is without qnet (addresses, routes). */
export interface BridgedHost {
  net: ResolvedNetwork;
  up: LanUplink;
}

const v4 = (a: HostAddr) => a.family === 'inet';
const isDefault = (r: HostRoute) => r.dst === 'default' && !r.table;

/** Whether the uplink's IPv4 address came from DHCP (it has a lifetime): the bridge should ask DHCP too. */
function usesDhcp(up: LanUplink): boolean {
  return up.addrs.some((a) => v4(a) && a.dynamic);
}

/** The bridged networks that an export describes, and a note for each one it leaves out (joined bridges). */
export function exportableBridged(lab: ResolvedLab, lan: Record<string, LanUplink>): { nets: BridgedHost[]; notes: string[] } {
  const nets: BridgedHost[] = [];
  const notes: string[] = [];
  for (const net of lab.networks.filter((n) => n.mode === 'bridged')) {
    const up = lan[net.name];
    if (!up) continue;
    if (up.attach) notes.push(`networks.${net.name} joins the existing bridge ${up.name}: it is already the host's to configure`);
    else nets.push({ net, up });
  }
  for (const net of lab.networks.filter((n) => n.mode === 'macnat'))
    notes.push(`networks.${net.name} is macnat: nothing persistent on the host (qnet loads its nft tables at \`up\`)`);
  return { nets, notes };
}

/** `/etc/network/interfaces` stanzas (ifupdown with bridge-utils) for the host side of the bridged networks. */
export function renderIfupdown(lab: ResolvedLab, nets: BridgedHost[]): string {
  const out: string[] = [
    `# The host side of lab ${lab.name}'s bridged network${nets.length > 1 ? 's' : ''}, written by \`qnet export ${lab.name} --format ifupdown\`.`,
    '# Put these stanzas in /etc/network/interfaces in place of the uplink\'s own (bridge-utils must be installed),',
    '# bring the uplink down and the bridge up, then name the bridge as the network\'s uplink in the topology, so that',
    '# qnet joins this bridge instead of making one of its own.',
  ];
  for (const { net, up } of nets) {
    const br = net.bridge;
    const s = net.stp;
    out.push('', `# networks.${net.name}: \`ifdown ${up.name}; ifup ${br}\`, then uplink: ${br} in the topology (was ${up.name})`, `auto ${up.name}`, `iface ${up.name} inet manual`, '', `auto ${br}`);
    const opts = [
      `    bridge_ports ${up.name}`,
      `    bridge_stp ${s.enabled ? 'on' : 'off'}`,
      `    bridge_fd ${s.forwardDelay}`,
      `    bridge_hello ${s.helloTime}`,
      // The bridge keeps the uplink's MAC: the LAN's DHCP server and neighbours see the same host.
      `    hwaddress ether ${up.mac}`,
    ];
    // Routes a DHCP client or router advertisements made come back by themselves.
    const extra = up.routes.filter((r) => !isDefault(r) && r.protocol !== 'dhcp' && r.protocol !== 'ra');
    const routeCmd = (r: HostRoute) =>
      `ip ${r.family === 'inet6' ? '-6 ' : ''}route add ${r.dst === 'default' ? 'default' : r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${br}${r.table ? ` table ${r.table}` : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`;
    if (usesDhcp(up)) out.push(`iface ${br} inet dhcp`, ...opts);
    else {
      const addrs = up.addrs.filter(v4);
      const gw = up.routes.find((r) => isDefault(r) && r.family === 'inet');
      out.push(`iface ${br} inet ${addrs.length ? 'static' : 'manual'}`, ...addrs.map((a) => `    address ${a.local}/${a.prefixlen}`), ...(gw?.gateway ? [`    gateway ${gw.gateway}`] : []), ...opts);
    }
    out.push(...extra.filter((r) => r.family === 'inet').map((r) => `    up ${routeCmd(r)}`));
    const v6 = up.addrs.filter((a) => a.family === 'inet6' && !a.dynamic);
    if (v6.length) {
      const gw6 = up.routes.find((r) => isDefault(r) && r.family === 'inet6');
      out.push('', `iface ${br} inet6 static`, ...v6.map((a) => `    address ${a.local}/${a.prefixlen}`), ...(gw6?.gateway ? [`    gateway ${gw6.gateway}`] : []));
      out.push(...extra.filter((r) => r.family === 'inet6').map((r) => `    up ${routeCmd(r)}`));
    }
  }
  return out.join('\n') + '\n';
}

/** systemd-networkd files (name -> content) for the host side of the bridged networks. */
export function renderNetworkd(lab: ResolvedLab, nets: BridgedHost[]): Record<string, string> {
  const files: Record<string, string> = {};
  const head = (what: string) =>
    `# ${what}: the host side of lab ${lab.name}, written by \`qnet export ${lab.name} --format networkd\`.\n` +
    '# Copy to /etc/systemd/network/ and `networkctl reload`; then name the bridge as the network\'s uplink in the topology.\n';
  for (const { net, up } of nets) {
    const br = net.bridge;
    const s = net.stp;
    files[`25-qnet-${br}.netdev`] =
      head(`bridge ${br} for networks.${net.name}`) +
      ['[NetDev]', `Name=${br}`, 'Kind=bridge', `MACAddress=${up.mac}`, '', '[Bridge]', `STP=${s.enabled ? 'yes' : 'no'}`, `ForwardDelaySec=${s.forwardDelay}`, `HelloTimeSec=${s.helloTime}`, ''].join('\n');
    files[`25-qnet-${up.name}.network`] = head(`${up.name} as a port of ${br}`) + ['[Match]', `Name=${up.name}`, '', '[Network]', `Bridge=${br}`, ''].join('\n');
    const lines = ['[Match]', `Name=${br}`, '', '[Network]'];
    if (usesDhcp(up)) lines.push('DHCP=ipv4');
    for (const a of up.addrs.filter((x) => !(v4(x) && usesDhcp(up)) && !x.dynamic)) lines.push(`Address=${a.local}/${a.prefixlen}`);
    for (const r of up.routes.filter((x) => isDefault(x) && x.gateway && !usesDhcp(up))) lines.push(`Gateway=${r.gateway}`);
    for (const r of up.routes.filter((x) => !isDefault(x) && !(x.protocol === 'dhcp' || x.protocol === 'ra')))
      lines.push(
        '',
        '[Route]',
        `Destination=${r.dst === 'default' ? (r.family === 'inet6' ? '::/0' : '0.0.0.0/0') : r.dst}`,
        ...(r.gateway ? [`Gateway=${r.gateway}`] : []),
        ...(r.metric !== undefined ? [`Metric=${r.metric}`] : []),
        ...(r.table ? [`Table=${r.table}`] : []),
      );
    files[`25-qnet-${br}.network`] = head(`addresses and routes of ${br}`) + lines.join('\n') + '\n';
  }
  return files;
}
