// Uplinks of bridged and macnat networks: what the named host interface is, whether the chosen mode fits it,
// and giving it back at `down` (its addresses and routes return from qnet's bridge).
import { RuntimeError, UserError } from '../errors.js';
import { readIface, type IfaceInfo } from '../host/iface.js';
import type { CommandRunner } from '../host/run.js';
import { markerLab, ownerMarker } from '../render/markers.js';
import { renderMove, type LanUplink } from '../render/lan.js';
import { onLan, type ResolvedLab, type ResolvedNetwork } from '../topology/model.js';

/** A verdict on one uplink for one network: fine (with notes), or a message saying which mode fits instead. */
export interface UplinkVerdict {
  ok: boolean;
  message: string;
  /** Join the existing bridge instead of making one. */
  attach?: boolean;
}

/** Decides whether a network's mode fits the interface it names. Pure. */
export function classifyUplink(net: Pick<ResolvedNetwork, 'name' | 'mode'>, i: IfaceInfo, lab: string): UplinkVerdict {
  const at = `networks.${net.name}.uplink`;
  const maker = markerLab(i.alias);
  if (maker) return { ok: false, message: `${at}: ${i.name} was made by qnet (lab=${maker}); name the host's own interface` };
  if (i.linkType === 'loopback') return { ok: false, message: `${at}: ${i.name} is the loopback; name the interface that leads to the LAN` };
  if (i.linkType !== 'ether')
    return {
      ok: false,
      message: `${at}: ${i.name} is not an Ethernet interface (link type ${i.linkType}${i.kind ? `, ${i.kind}` : ''}): it carries no MAC addresses, so neither bridged nor macnat fits; use a nat or routed network, whose traffic the host routes out of ${i.name}`,
    };
  const owner = markerLab(i.masterAlias);
  if (i.master && owner)
    return {
      ok: false,
      message: `${at}: ${i.name} is in ${owner}'s bridge ${i.master}: one lab at a time puts an uplink in a bridge of its own; to share it, make the bridge permanent (\`qnet export ${owner} --format networkd\` or ifupdown) and name that bridge as the uplink of both labs`,
    };
  if (net.mode === 'bridged') {
    if (i.wireless)
      return {
        ok: false,
        message: `${at}: ${i.name} is a Wi-Fi interface, and the kernel will not put a Wi-Fi client into a bridge ("Operation not supported": the access point accepts only its own client's MAC); use mode: macnat (guests share ${i.name}'s MAC), or nat`,
      };
    if (i.kind === 'bridge') {
      const ours = i.alias === ownerMarker(lab);
      if (ours) return { ok: false, message: `${at}: ${i.name} is this lab's own bridge` };
      return { ok: true, attach: true, message: `${i.name} is a bridge already: the lab joins it (its addresses and routes stay as they are)` };
    }
    if (i.master)
      return { ok: false, message: `${at}: ${i.name} is already a port of ${i.master}; name that bridge as the uplink (uplink: ${i.master}) and the lab joins it` };
    return { ok: true, message: `${i.name} is wired: it goes into a bridge of qnet's with the host's addresses and routes, and comes back at \`down\`` };
  }
  // macnat
  if (i.master)
    return { ok: false, message: `${at}: ${i.name} is a port of ${i.master}; frames for the host arrive on ${i.master}: name it as the uplink (or use mode: bridged with uplink: ${i.master})` };
  if (!i.wireless && i.kind !== 'bridge')
    return { ok: true, message: `${i.name} is wired: mode bridged would put the guests on the LAN with MACs of their own; macnat shares ${i.name}'s` };
  return { ok: true, message: `${i.name} is ${i.wireless ? 'Wi-Fi' : 'a bridge'}: guests share its MAC (MAC NAT)` };
}

/** Reads every bridged/macnat network's uplink and checks that its mode fits; bad fits are the user's to fix. */
export async function inspectLanUplinks(lab: ResolvedLab, runner: CommandRunner, note: (m: string) => void): Promise<Record<string, LanUplink>> {
  const out: Record<string, LanUplink> = {};
  const problems: string[] = [];
  for (const net of lab.networks.filter(onLan)) {
    const i = await readIface(runner, net.uplink!);
    if (!i) {
      problems.push(`networks.${net.name}.uplink: this host has no interface "${net.uplink}" (\`ip link\` lists them)`);
      continue;
    }
    const v = classifyUplink(net, i, lab.name);
    if (!v.ok) {
      problems.push(v.message);
      continue;
    }
    note(`${net.name}: ${v.message}`);
    if (!i.up) note(`${net.name}: ${i.name} is down; the guests reach its LAN once it is up`);
    if (net.mode === 'bridged' && !v.attach && i.addrs.some((a) => a.dynamic))
      note(
        `${net.name}: ${i.name}'s address came from DHCP or SLAAC; it moves to the bridge with its remaining lifetime, but the client that renews it ` +
          `watches ${i.name}: for long labs, make the bridge permanent (\`qnet export ${lab.name} --format networkd\`) and name it as the uplink`,
      );
    out[net.name] = { name: i.name, mac: i.mac, attach: v.attach === true, addrs: i.addrs, routes: i.routes };
  }
  if (problems.length) throw new UserError(`lab ${lab.name}: ${problems.length === 1 ? 'an uplink does' : 'uplinks do'} not fit:\n  ${problems.join('\n  ')}`);
  return out;
}

/**
 * Gives a bridged uplink back: out of qnet's bridge, with the addresses and routes the bridge holds now (the
 * host's, moved there at `up`, renewed since perhaps), then the bridge is deleted; anything of `saved` (the
 * uplink as `up` found it) still missing is added again. Safe to repeat.
 */
export async function releaseUplink(runner: CommandRunner, bridge: string, saved?: LanUplink): Promise<string | null> {
  const br = await readIface(runner, bridge);
  if (!br) return null;
  const ports = JSON.parse((await runner.run(['ip', '-j', 'link', 'show', 'master', bridge], { allowFail: true })).stdout || '[]') as Array<{ ifname: string; ifalias?: string }>;
  // The uplink is the port without a qnet marker (the lab's veth carries one).
  const uplink = ports.find((p) => !markerLab(p.ifalias))?.ifname;
  const lines = [...(uplink ? [`link set dev ${uplink} nomaster`, ...renderMove(bridge, uplink, br.addrs, br.routes)] : []), `link delete dev ${bridge}`];
  const r = await runner.run(['ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
  if (r.code !== 0 && (await readIface(runner, bridge)))
    throw new RuntimeError(`could not give ${uplink ?? 'the uplink'} back from ${bridge}: ${r.stderr.trim()}`);
  if (saved && uplink === saved.name) {
    const now = await readIface(runner, uplink);
    const key = (a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`;
    const missing = saved.addrs.filter((a) => !now?.addrs.some((b) => key(b) === key(a)));
    const lost = saved.routes.filter((r1) => !now?.routes.some((r2) => JSON.stringify(r2) === JSON.stringify(r1)));
    if (missing.length || lost.length) {
      // Only the adding half of a move: what is missing is added, nothing is deleted.
      const lines = renderMove('-', uplink, missing, lost).filter((l) => l.includes(' add '));
      await runner.run(['ip', '-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
    }
  }
  return uplink ?? null;
}
