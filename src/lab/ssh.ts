// `qnet ssh`: a shell or a command in an image guest over SSH, from the lab namespace, as root with the lab's key,
// checking the guest's host key against the one qnet gave it (never the user's own known_hosts).
import { RuntimeError, UserError } from '../errors.js';
import { labKeyFiles } from '../guest/image-node.js';
import { exists } from '../host/fs.js';
import { labRoute } from '../topology/reach.js';
import { networkLeases } from './leases.js';
import { labState } from './state.js';
import { requireRunning } from './alive.js';

/** The argv that runs ssh to a node of a running lab (a login shell when `command` is empty). */
export async function sshArgv(lab: string, node: string, command: string[], opts: { tty?: boolean } = {}): Promise<string[]> {
  const state = await labState(lab);
  const n = state.lab.nodes.find((x) => x.name === node);
  if (!n) throw new UserError(`lab ${lab} has no node "${node}" (nodes: ${state.lab.nodes.map((x) => x.name).join(', ')})`);
  // Checked before anything else about it: ssh to a guest that is not running would wait for its timeout.
  await requireRunning(state, node);
  if (n.image?.config !== 'cloud-init')
    throw new UserError(
      n.image
        ? `${lab}/${node} has config: none, so qnet gave it no SSH key: use \`qnet console ${lab} ${node}\`, or config: cloud-init`
        : `${lab}/${node} is a built-in guest (no sshd): use \`qnet exec ${lab} ${node} -- CMD\` or \`qnet console ${lab} ${node}\``,
    );
  const route = labRoute(state.lab, n, 22);
  if (!route)
    throw new UserError(
      `no address of ${node} is reachable from the lab namespace: give one of its networks an "address" (or make it nat/routed), or a user NIC hostfwd: [{ host: 2222, guest: 22 }]`,
    );
  let ip: string;
  if (route.kind === 'lease') {
    const l = (await networkLeases(lab, route.network)).find((x) => x.mac === route.mac);
    if (!l) throw new RuntimeError(`${node} has no DHCP lease on ${route.network} yet (\`qnet leases ${lab}\`)`);
    ip = l.ip;
  } else ip = route.ip;
  const k = labKeyFiles(state.lab);
  if (!(await exists(k.key))) throw new RuntimeError(`the lab key ${k.key} is missing (was the lab brought up by this qnet?)`);
  return [
    'nsenter', `--net=/run/netns/${state.lab.netns}`, '--',
    'ssh', '-i', k.key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
    // The host key qnet made for this node, under its name: nothing is learned, nothing of the user's is read.
    '-o', `UserKnownHostsFile=${k.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', `HostKeyAlias=${node}`,
    '-o', 'LogLevel=ERROR', '-p', String(route.port),
    ...(opts.tty ? ['-t'] : []),
    `root@${ip}`,
    ...command,
  ];
}
