// The uplink of a user's (rootless) lab with nat networks: pasta, not a veth to the host (a user cannot put a link
// in the host's namespace, nor load its nft tables). Pure: what it plans, as steps.
import path from 'node:path';
import { labDir } from '../dirs.js';
import type { PlanContext, Step } from '../plan/steps.js';
import { ENV_LAB, ENV_SERVICE } from '../render/markers.js';
import { needsUplink, UPLINK_LAB_IF } from '../render/uplink.js';
import { renderPastaArgv, renderRootlessUplinkRuleset, ROOTLESS_UPLINK_TABLE } from '../render/uplink-rootless.js';
import { formatIPv4 } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';

/** The service name pasta runs under (its marker; `down` stops it as it stops dnsmasq). */
export const PASTA_SERVICE = 'pasta';

/** pasta, forwarding (and route_localnet for its spliced forwards) in the lab namespace, and the lab's NAT table. */
export function rootlessUplinkSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  if (!needsUplink(lab)) return [];
  if (!ctx.uplink) throw new Error('planUp: a lab with nat networks needs ctx.uplink');
  const log = path.join(labDir(lab.name), 'pasta.log');
  const fwd = lab.forwards.map((f) => `${f.proto} ${f.host}`).join(', ');
  return [
    {
      title:
        `start pasta: tap ${UPLINK_LAB_IF} in the lab (${formatIPv4(ctx.uplink.net + 2)}/30), out through your own sockets on the host` +
        `${fwd ? `, forwards listening on the host (${fwd})` : ''} (rootless: no veth to the host; pasta before slirp4netns: host to lab 10.6 against 5.8 Gbit/s measured here)`,
      do: {
        kind: 'start-service',
        service: PASTA_SERVICE,
        argv: renderPastaArgv(lab, ctx.uplink, log),
        env: { [ENV_LAB]: lab.name, [ENV_SERVICE]: PASTA_SERVICE },
        log,
        readyText: 'Namespace interface',
      },
      undo: { kind: 'stop-service', service: PASTA_SERVICE },
    },
    {
      title: 'turn on IPv4 forwarding in the lab namespace (and route_localnet: forwards from the host arrive on its loopback)',
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.route_localnet=1'] },
    },
    {
      title: `load the lab's NAT table ip ${ROOTLESS_UPLINK_TABLE} (masquerade out of ${UPLINK_LAB_IF}, forwards to their guests)`,
      // No undo of its own: the table lives in the lab namespace and goes with it.
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'nft', '-f', '-'], input: renderRootlessUplinkRuleset(lab) },
    },
  ];
}
