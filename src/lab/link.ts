// `qnet link`: pull or plug a NIC's cable on a running lab. QEMU's set_link on the NIC's netdev: the guest's NIC
// loses (or regains) its carrier, as on a switch port, and no frame passes either way meanwhile. The state is kept
// in the lab's state file so that `status` shows it (a restarted node comes back plugged in).
import { RuntimeError } from '../errors.js';
import { QmpClient } from '../qemu/qmp.js';
import { nodeFiles } from '../render/qemu.js';
import { nodeDir } from '../dirs.js';
import { nicName, resolveNicRef } from './nicref.js';
import { updateState, upState } from './state.js';

/** Sets a NIC's link down or up; resolves with what it did ("deb2 eth0: link down"). */
export async function setLink(labName: string, ref: string, up: boolean): Promise<string> {
  const state = await upState(labName);
  const { node, nic } = resolveNicRef(state.lab, ref);
  if (!state.guests[node.name]) throw new RuntimeError(`${node.name} is not running (see \`qnet status ${labName}\`)`);
  const qmp = await QmpClient.connect(nodeFiles(nodeDir(labName, node.name)).qmp, 3000).catch((e: Error) => {
    throw new RuntimeError(`${node.name}: its QEMU monitor does not answer (${e.message}); is it running? (\`qnet status ${labName}\`)`);
  });
  try {
    await qmp.execute('set_link', { name: `net${nic.index}`, up });
  } finally {
    qmp.close();
  }
  await updateState(state, (now) => {
    const down = new Set(now.links?.[node.name] ?? []);
    if (up) down.delete(nic.index);
    else down.add(nic.index);
    const links = { ...(now.links ?? {}) };
    if (down.size) links[node.name] = [...down].sort((a, b) => a - b);
    else delete links[node.name];
    return { ...now, links };
  });
  return `${node.name} ${nicName(node, nic)}: link ${up ? 'up' : 'down'}`;
}
