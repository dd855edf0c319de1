// What a lab of an ordinary user (a rootless lab, in a user namespace of its own) cannot have: anything that needs
// the host's own network namespace. Pure: a function of the resolved lab and who runs qnet.
import { UserError, type InputIssue } from '../errors.js';
import { formatCidr, networkOf } from './ipv4.js';
import type { ResolvedLab } from './model.js';

/** Who runs qnet, as far as a lab's acceptance depends on it. */
export interface RootlessContext {
  /** qnet runs as an ordinary user: the lab would live in a user namespace of that user's. */
  rootless: boolean;
  /** The host's net.ipv4.ip_unprivileged_port_start: the lowest port an ordinary user may listen on (default 1024). */
  unprivilegedPortStart?: number;
  /** The uid, for the message (absent: not named). */
  uid?: number;
}

/** What works rootless instead: said with every refusal. */
export const ROOTLESS_ALTERNATIVE =
  'rootless, use a nat network and forwards (the guests reach out through the user\'s own NAT, the host reaches them on forwarded ports), or run qnet as root (sudo)';

/**
 * Every part of a lab that a rootless lab cannot have, each with its path, why, and what to use instead; empty as
 * root (nothing changes there). A user namespace holds every capability over its own network namespace and none
 * over the host's: host interfaces, host bridges, host routes and the host's firewall stay out of reach.
 */
export function rootlessRefusals(lab: ResolvedLab, ctx: RootlessContext): InputIssue[] {
  if (!ctx.rootless) return [];
  const out: InputIssue[] = [];
  for (const net of lab.networks) {
    const at = `networks.${net.name}.mode`;
    if (net.mode === 'bridged')
      out.push({ path: at, message: `bridged puts the host interface ${net.uplink} in a bridge of the host's and moves its addresses there: an ordinary user cannot change the host's own network namespace; ${ROOTLESS_ALTERNATIVE}` });
    else if (net.mode === 'macnat')
      out.push({ path: at, message: `macnat puts the lab's guests on the LAN of the host interface ${net.uplink} through a veth and firewall rules in the host's own network namespace, which an ordinary user cannot change; ${ROOTLESS_ALTERNATIVE}` });
    else if (net.mode === 'routed')
      out.push({ path: at, message: `routed needs a route on the host toward ${net.subnet ? formatCidr({ ip: networkOf(net.subnet), prefix: net.subnet.prefix }) : 'the network'} and forwarding in the host's own network namespace, which an ordinary user cannot change; ${ROOTLESS_ALTERNATIVE}` });
  }
  if (lab.fabric === 'ovn')
    out.push({ path: 'fabric', message: `ovn needs Open vSwitch and OVN on the host (its bridges, its daemons and their databases in the host's own namespace): an ordinary user cannot run them there; a rootless lab is one machine's Linux bridges (leave fabric and hosts out), or run qnet as root (sudo)` });
  const start = ctx.unprivilegedPortStart ?? 1024;
  lab.forwards.forEach((f, i) => {
    if (f.host < start)
      out.push({ path: `forwards[${i}].host`, message: `port ${f.host} is below ${start} (net.ipv4.ip_unprivileged_port_start): an ordinary user cannot listen on it; use a host port of ${start} or more, or have root run \`sysctl net.ipv4.ip_unprivileged_port_start=${f.host}\`` });
  });
  return out;
}

/** Throws the refusals of `rootlessRefusals` as bad input (exit 2, nothing on the host changed); nothing as root. */
export function refuseRootless(lab: ResolvedLab, ctx: RootlessContext, source: string): void {
  const issues = rootlessRefusals(lab, ctx);
  if (!issues.length) return;
  const who = ctx.uid !== undefined ? `uid ${ctx.uid}` : 'an ordinary user';
  throw new UserError(
    `${source}: lab ${lab.name} cannot be rootless (qnet runs as ${who}, not root): ${issues.length} part${issues.length > 1 ? 's' : ''} need${issues.length > 1 ? '' : 's'} the host's own network namespace\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`,
    issues,
  );
}
