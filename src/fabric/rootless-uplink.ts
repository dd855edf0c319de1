// The uplink of a user's (rootless) lab with nat networks: pasta, not a veth to the host (a user cannot put a link
// in the host's namespace, nor load its nft tables). Pure: what it plans, as steps.
import path from 'node:path';
import { labDir } from '../dirs.js';
import type { PlanContext, Step } from '../plan/steps.js';
import { ENV_LAB, ENV_SERVICE } from '../render/markers.js';
import { needsUplink, UPLINK_LAB_IF } from '../render/uplink.js';
import { renderPastaArgv, renderRootlessUplinkRuleset, renderSlirpArgv, renderSlirpForwards, ROOTLESS_UPLINK_TABLE, slirpCidr, slirpLabEnd } from '../render/uplink-rootless.js';
import { formatIPv4 } from '../topology/ipv4.js';
import type { ResolvedLab } from '../topology/model.js';

/** The service name pasta runs under (its marker; `down` stops it as it stops dnsmasq). */
export const PASTA_SERVICE = 'pasta';
/** The service name slirp4netns runs under, where pasta is missing. */
export const SLIRP_SERVICE = 'slirp4netns';
// Sends each request (argv) to slirp4netns's API socket, one connection each as its API wants, trying again for 3 s
// while the socket is not yet there; fails on an answer that carries an error.
const SLIRP_API_CLIENT = [
  "const net=require('net');const [sock,...reqs]=process.argv.slice(1);",
  "const one=(r)=>new Promise((res,rej)=>{const c=net.connect(sock);let d='';c.on('connect',()=>c.write(r));c.on('data',(x)=>{d+=x;c.end();});c.on('close',()=>res(d));c.on('error',rej);});",
  "(async()=>{for(const r of reqs){const end=Date.now()+3000;for(;;){try{const out=await one(r);if(/error/.test(out))throw new Error('slirp4netns: '+out.trim());break;}catch(e){if(Date.now()>end||/slirp4netns:/.test(e.message))throw e;await new Promise((w)=>setTimeout(w,50));}}}})().catch((e)=>{console.error(e.message);process.exit(1);});",
].join('');

/** pasta, forwarding (and route_localnet for its spliced forwards) in the lab namespace, and the lab's NAT table. */
export function rootlessUplinkSteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  if (!needsUplink(lab)) return [];
  if (!ctx.uplink) throw new Error('planUp: a lab with nat networks needs ctx.uplink');
  const fwd = lab.forwards.map((f) => `${f.proto} ${f.host}`).join(', ');
  const choice = ctx.userNat ?? { tool: 'pasta', why: 'pasta before slirp4netns: host to lab 10.6 against 5.8 Gbit/s measured here' };
  const tail = [
    {
      title: 'turn on IPv4 forwarding in the lab namespace (and route_localnet: forwards from the host arrive on its loopback)',
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.route_localnet=1'] },
    },
    {
      title: `load the lab's NAT table ip ${ROOTLESS_UPLINK_TABLE} (masquerade out of ${UPLINK_LAB_IF}, forwards to their guests)`,
      // No undo of its own: the table lives in the lab namespace and goes with it.
      do: { kind: 'exec', argv: ['ip', 'netns', 'exec', lab.netns, 'nft', '-f', '-'], input: renderRootlessUplinkRuleset(lab) },
    },
  ] satisfies Step[];
  if (choice.tool === 'slirp4netns') {
    const log = path.join(labDir(lab.name), 'slirp4netns.log');
    const api = path.join(labDir(lab.name), 'slirp4netns.sock');
    const reqs = renderSlirpForwards(lab, ctx.uplink);
    return [
      {
        title: `start slirp4netns: tap ${UPLINK_LAB_IF} in the lab (${formatIPv4(slirpLabEnd(ctx.uplink))}, network ${slirpCidr(ctx.uplink)}), out through your own sockets on the host (rootless; slirp4netns because ${choice.why})`,
        do: {
          kind: 'start-service',
          service: SLIRP_SERVICE,
          argv: renderSlirpArgv(lab, ctx.uplink, log, api),
          env: { [ENV_LAB]: lab.name, [ENV_SERVICE]: SLIRP_SERVICE },
          log,
          readyText: 'Starting slirp',
        },
        undo: { kind: 'stop-service', service: SLIRP_SERVICE },
      },
      ...(reqs.length
        ? [{ title: `add the forwards to slirp4netns, listening on the host (${fwd})`, do: { kind: 'exec', argv: [process.execPath, '-e', SLIRP_API_CLIENT, api, ...reqs] } } satisfies Step]
        : []),
      ...tail,
    ];
  }
  const log = path.join(labDir(lab.name), 'pasta.log');
  return [
    {
      title:
        `start pasta: tap ${UPLINK_LAB_IF} in the lab (${formatIPv4(ctx.uplink.net + 2)}/30), out through your own sockets on the host` +
        `${fwd ? `, forwards listening on the host (${fwd})` : ''} (rootless: no veth to the host; ${choice.why})`,
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
    ...tail,
  ];
}
