// Reading one host interface as it is now: kind, MAC, master, addresses and routes (ip -j, /sys). Read-only.
import { access } from 'node:fs/promises';
import type { HostAddr, HostRoute } from '../render/host-types.js';
import type { CommandRunner } from './run.js';

export type { HostAddr, HostRoute };

/** What qnet needs to know of a host interface to bridge or MAC-NAT guests onto its LAN. */
export interface IfaceInfo {
  name: string;
  mac: string;
  /** `ip`'s link type: ether for Ethernet and Wi-Fi, none for tun/wireguard, loopback, ... */
  linkType: string;
  /** The link kind from `ip -d` (bridge, veth, vlan, bond, tun, ...), empty for plain hardware. */
  kind: string;
  wireless: boolean;
  master?: string;
  /** The master's ownership marker, when qnet made it (another lab's bridge). */
  masterAlias?: string;
  alias?: string;
  up: boolean;
  addrs: HostAddr[];
  routes: HostRoute[];
}

const FOREVER = 4294967295;

/** Parses `ip -j addr show dev X` into the addresses worth keeping (not the kernel's IPv6 link-local). */
export function parseAddrs(json: string): HostAddr[] {
  const [link] = JSON.parse(json || '[]') as Array<{ addr_info?: Array<Record<string, unknown>> }>;
  return (link?.addr_info ?? [])
    .filter((a) => (a.family === 'inet' || a.family === 'inet6') && a.scope !== 'link' && a.scope !== 'host')
    .map((a) => ({
      family: a.family as 'inet' | 'inet6',
      local: String(a.local),
      prefixlen: Number(a.prefixlen),
      ...(typeof a.broadcast === 'string' ? { broadcast: a.broadcast } : {}),
      scope: String(a.scope ?? 'global'),
      validLft: a.valid_life_time === FOREVER || a.valid_life_time === undefined ? 'forever' : Number(a.valid_life_time),
      preferredLft: a.preferred_life_time === FOREVER || a.preferred_life_time === undefined ? 'forever' : Number(a.preferred_life_time),
      noprefixroute: a.noprefixroute === true,
      dynamic: a.dynamic === true,
    }));
}

/**
 * Parses `ip -j route show table all dev X` into the routes that an administrator or a DHCP client made: the
 * kernel's own (prefix, local, broadcast, multicast) follow the addresses by themselves.
 */
export function parseRoutes(json: string): HostRoute[] {
  return (JSON.parse(json || '[]') as Array<Record<string, unknown>>)
    .filter((r) => r.protocol !== 'kernel' && r.table !== 'local' && (r.type === undefined || r.type === 'unicast') && !r.nexthops && !r.nhid)
    .map((r) => {
      const dst = String(r.dst);
      const gw = typeof r.gateway === 'string' ? r.gateway : undefined;
      const v6 = dst.includes(':') || (gw ?? '').includes(':') || 'pref' in r;
      return {
        family: v6 ? ('inet6' as const) : ('inet' as const),
        dst,
        ...(gw ? { gateway: gw } : {}),
        ...(typeof r.protocol === 'string' && r.protocol !== 'boot' ? { protocol: r.protocol } : {}),
        ...(typeof r.scope === 'string' && r.scope !== 'global' ? { scope: r.scope } : {}),
        ...(typeof r.prefsrc === 'string' ? { prefsrc: r.prefsrc } : {}),
        ...(typeof r.metric === 'number' ? { metric: r.metric } : {}),
        ...(typeof r.table === 'string' && r.table !== 'main' ? { table: r.table } : {}),
        ...(Array.isArray(r.flags) && r.flags.includes('onlink') ? { onlink: true } : {}),
      };
    });
}

/** Reads a host interface; null when it does not exist. */
export async function readIface(runner: CommandRunner, name: string, sysRoot = '/sys'): Promise<IfaceInfo | null> {
  const link = await runner.run(['ip', '-j', '-d', 'link', 'show', 'dev', name], { allowFail: true });
  if (link.code !== 0) return null;
  const [l] = JSON.parse(link.stdout || '[]') as Array<{
    ifname: string;
    address?: string;
    link_type?: string;
    master?: string;
    ifalias?: string;
    flags?: string[];
    linkinfo?: { info_kind?: string };
  }>;
  if (!l) return null;
  const addrs = await runner.run(['ip', '-j', 'addr', 'show', 'dev', name]);
  const routes = await runner.run(['ip', '-j', 'route', 'show', 'table', 'all', 'dev', name]);
  const wireless = await isWireless(name, sysRoot);
  const master = l.master ? JSON.parse((await runner.run(['ip', '-j', 'link', 'show', 'dev', l.master], { allowFail: true })).stdout || '[]')[0] : undefined;
  return {
    name: l.ifname,
    mac: l.address ?? '',
    linkType: l.link_type ?? 'none',
    kind: l.linkinfo?.info_kind ?? '',
    wireless,
    ...(l.master ? { master: l.master } : {}),
    ...(master?.ifalias ? { masterAlias: String(master.ifalias) } : {}),
    ...(l.ifalias ? { alias: l.ifalias } : {}),
    up: (l.flags ?? []).includes('UP'),
    addrs: parseAddrs(addrs.stdout),
    routes: parseRoutes(routes.stdout),
  };
}

/** Whether the kernel sees a Wi-Fi device (cfg80211 gives it a `phy80211` link, wireless extensions a `wireless` dir). */
export async function isWireless(name: string, sysRoot = '/sys'): Promise<boolean> {
  for (const entry of ['phy80211', 'wireless'])
    if (await access(`${sysRoot}/class/net/${name}/${entry}`).then(() => true, () => false)) return true;
  return false;
}
