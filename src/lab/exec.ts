// Running commands in a lab's guests and reaching their consoles and monitors, over host-to-guest channels
// (guest agent, serial console, QMP), so none of it depends on the guest's own network.
import { RuntimeError, UserError } from '../errors.js';
import { AgentClient, type ExecResult } from '../qemu/agent.js';
import { QmpClient } from '../qemu/qmp.js';
import { nodeFiles, type NodeFiles } from '../render/qemu.js';
import { nodeDir } from './paths.js';
import { readState } from './state.js';

/** The files of a node of a running lab; a UserError naming what exists when lab or node is unknown. */
export async function runningNode(lab: string, node: string): Promise<NodeFiles> {
  const state = await readState(lab);
  if (!state) throw new UserError(`no lab named "${lab}" is up (see \`qnet status\`)`);
  if (!state.lab.nodes.some((n) => n.name === node))
    throw new UserError(`lab ${lab} has no node "${node}" (nodes: ${state.lab.nodes.map((n) => n.name).join(', ')})`);
  return nodeFiles(nodeDir(lab, node));
}

/** Runs argv inside a guest through its guest agent; exit code, stdout and stderr as the command gave them. */
export async function execInGuest(lab: string, node: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
  if (!argv.length) throw new UserError('exec: give a command to run, after --');
  const files = await runningNode(lab, node);
  const agent = await AgentClient.connect(files.agent, 10000).catch((e: Error) => {
    throw new RuntimeError(`${lab}/${node}: ${e.message}`);
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
