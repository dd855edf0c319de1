// Running commands in a lab's guests and reaching their consoles and monitors, over host-to-guest channels
// (guest agent, serial console, QMP), so none of it depends on the guest's own network.
import { RuntimeError, UserError } from '../errors.js';
import { AgentClient, type ExecResult } from '../qemu/agent.js';
import { QmpClient } from '../qemu/qmp.js';
import { nodeFiles, type NodeFiles } from '../render/qemu.js';
import { nodeDir } from '../dirs.js';
import { labState, readState } from './state.js';
import { kindOf } from '../guest/kinds.js';
import { requireRunning } from './alive.js';

/** The files of a running node of a lab; a UserError when lab or node is unknown, a RuntimeError when it is not running. */
export async function liveNode(lab: string, node: string): Promise<NodeFiles> {
  const files = await runningNode(lab, node);
  await requireRunning((await readState(lab))!, node);
  return files;
}

/** The files of a node of a running lab; a UserError naming what exists when lab or node is unknown. */
export async function runningNode(lab: string, node: string): Promise<NodeFiles> {
  const state = await labState(lab);
  if (!state.lab.nodes.some((n) => n.name === node))
    throw new UserError(`lab ${lab} has no node "${node}" (nodes: ${state.lab.nodes.map((n) => n.name).join(', ')})`);
  return nodeFiles(nodeDir(lab, node));
}

/** Runs argv inside a guest through its guest agent; exit code, stdout and stderr as the command gave them. */
export async function execInGuest(lab: string, node: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
  if (!argv.length) throw new UserError('exec: give a command to run, after --');
  const files = await runningNode(lab, node);
  const state = (await readState(lab))!;
  const n = state.lab.nodes.find((x) => x.name === node)!;
  // A guest that is not running has no agent to answer: say so, and how to start it, rather than ECONNREFUSED.
  await requireRunning(state, node);
  // A real OS may still be starting its agent (a node ready by its lease or a port is up before it): give it time.
  const agent = await AgentClient.connect(files.agent, n.image ? 30_000 : 10_000).catch((e: Error) => {
    throw new RuntimeError(n.image ? kindOf(n).execHint(lab, n) : `${lab}/${node}: ${e.message}`);
  });
  try {
    return await agent.exec(argv, opts);
  } finally {
    agent.close();
  }
}

/** What the QEMU monitor's `info network` shows for a guest. */
export async function monitorNetwork(lab: string, node: string): Promise<string> {
  const files = await runningNode(lab, node);
  const qmp = await QmpClient.connect(files.qmp, 3000);
  try {
    return (await qmp.hmp('info network')).replace(/\r/g, '');
  } finally {
    qmp.close();
  }
}

/** A running guest's interfaces by MAC (its own names, and IPv4 addresses), as its guest agent reports them. */
export async function guestInterfaces(lab: string, node: string, timeoutMs = 2000): Promise<Map<string, { name: string; addresses: string[] }>> {
  const files = await runningNode(lab, node);
  const agent = await AgentClient.connect(files.agent, timeoutMs);
  try {
    const ifs = await agent.execute<Array<{ name: string; 'hardware-address'?: string; 'ip-addresses'?: Array<{ 'ip-address-type': string; 'ip-address': string; prefix: number }> }>>(
      'guest-network-get-interfaces',
      undefined,
      timeoutMs,
    );
    const out = new Map<string, { name: string; addresses: string[] }>();
    for (const i of ifs)
      if (i['hardware-address'])
        out.set(i['hardware-address'].toLowerCase(), {
          name: i.name,
          addresses: (i['ip-addresses'] ?? []).filter((a) => a['ip-address-type'] === 'ipv4').map((a) => `${a['ip-address']}/${a.prefix}`),
        });
    return out;
  } finally {
    agent.close();
  }
}

/** A running guest's IPv4 addresses by NIC MAC, as its guest agent reports them (for leases qnet did not hand out). */
export async function guestAddresses(lab: string, node: string, timeoutMs = 2000): Promise<Map<string, string[]>> {
  const files = await runningNode(lab, node);
  const agent = await AgentClient.connect(files.agent, timeoutMs);
  try {
    const ifs = await agent.execute<Array<{ 'hardware-address'?: string; 'ip-addresses'?: Array<{ 'ip-address-type': string; 'ip-address': string; prefix: number }> }>>(
      'guest-network-get-interfaces',
      undefined,
      timeoutMs,
    );
    const out = new Map<string, string[]>();
    for (const i of ifs)
      if (i['hardware-address'])
        out.set(
          i['hardware-address'].toLowerCase(),
          (i['ip-addresses'] ?? []).filter((a) => a['ip-address-type'] === 'ipv4').map((a) => `${a['ip-address']}/${a.prefix}`),
        );
    return out;
  } finally {
    agent.close();
  }
}
