// Taking a lab away: stop its guests (graceful, then forced), delete its namespace and run directory.
import { rm } from 'node:fs/promises';
import type { CommandRunner } from '../host/run.js';
import { stopGuest } from '../qemu/guest.js';
import { markerOf, processMarker } from '../qemu/process.js';
import { stopService } from '../host/service.js';
import { releaseHostForwarding } from '../host/forwarding.js';
import { uplinkTable } from '../render/markers.js';
import { nodeFiles } from '../render/qemu.js';
import { NETNS_PREFIX } from '../topology/model.js';
import { findLab } from './discover.js';
import { releaseUplink } from './lan.js';
import { removeOvn } from './ovn.js';
import { lanHostBridge } from '../render/lan.js';
import { labDir, labStateDir, nodeDir } from '../dirs.js';
import { exists } from '../host/fs.js';
import { kindOf, stopOfKind } from '../guest/kinds.js';
import type { StopHow } from '../plan/steps.js';
import { readState } from './state.js';
import { tidySnapshots } from './snapshot.js';
import { recordDown } from './tombstones.js';
import { silentReporter, type Reporter } from './up.js';

export interface DownResult {
  lab: string;
  /** False when nothing of the lab was found (no state, marker or kept disk): nothing was done. */
  found: boolean;
  removed: string[];
  warnings: string[];
  ms: number;
}

import { DEFAULT_GRACE_MS } from './grace.js';

export { DEFAULT_GRACE_MS };

/**
 * Removes everything of a lab; a lab with nothing left is a no-op (`found` false). Works without the state file.
 * Built-in guests are quit at once (no disk); image guests get the ACPI power button and up to `graceMs` to power
 * off. `purge` also removes the lab's kept disks (nodes with persist: true) and its kept SSH key. A lab that was
 * found is remembered as taken down (see tombstones.ts).
 */
export async function down(lab: string, opts: { runner: CommandRunner; reporter?: Reporter; graceMs?: number; purge?: boolean }): Promise<DownResult> {
  const t0 = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const removed: string[] = [];
  const warnings: string[] = [];
  const state = await readState(lab);
  const found = await findLab(lab);
  const keptDir = labStateDir(lab);
  const kept = await exists(keptDir);
  if (!state && !found.present && !kept) return { lab, found: false, removed, warnings, ms: Date.now() - t0 };
  // A qnet killed while saving a guest's state left a partial file in the cache.
  await tidySnapshots();

  // Guests: those the state names (if the pid still carries this lab's marker) and any marked process found; each
  // stopped as its kind says (from the state, else from the kind its process carries).
  const guests = new Map<string, { pid: number | undefined; stop: StopHow }>();
  const kindIn = (node: string, marked?: string) => {
    const n = state?.lab.nodes.find((x) => x.name === node);
    return n ? kindOf(n).stop : stopOfKind(marked);
  };
  for (const [node, g] of Object.entries(state?.guests ?? {})) {
    const m = await markerOf(g.pid);
    guests.set(node, { pid: m && m.lab === lab && m.node === node ? g.pid : undefined, stop: kindIn(node, m?.kind) });
  }
  for (const pid of found.pids) {
    const m = await markerOf(pid);
    if (m) guests.set(m.node, { pid, stop: kindIn(m.node, m.kind) });
  }
  const t = Date.now();
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
  const results = await Promise.all(
    [...guests].map(async ([node, g]) => [node, await stopGuest(g.pid, nodeFiles(nodeDir(lab, node)), { acpi: g.stop.acpi, graceMs: grace })] as const),
  );
  const stopped = results.filter(([, how]) => how !== 'gone');
  if (stopped.length) {
    removed.push(...stoppedGuests(stopped));
    reporter.step(`stop ${stopped.length} guest${stopped.length > 1 ? 's' : ''}`, Date.now() - t, true);
  }

  const services = new Set<number>([...found.services, ...Object.values(state?.services ?? {}).map((s) => s.pid)]);
  for (const pid of services) {
    const m = await processMarker(pid);
    if (m?.lab !== lab || !m.service) continue;
    await stopService(pid);
    removed.push(m.service);
  }

  // A lab on OVN: its ports on br-int and its northbound rows, found by their markers (before its links go).
  try {
    removed.push(...(await removeOvn(opts.runner, lab, state?.lab.ovn?.nb !== undefined ? [`--db=${state.lab.ovn.nb}`] : undefined)));
  } catch (e) {
    warnings.push((e as Error).message);
  }

  // Host bridges of bridged networks first: their uplink goes back with the host's addresses and routes.
  for (const link of found.hostLinks.filter((l) => l.kind === 'bridge')) {
    const saved = Object.entries(state?.lan ?? {}).find(([net]) => lanHostBridge(lab, net) === link.ifname)?.[1];
    const uplink = await releaseUplink(opts.runner, link.ifname, saved);
    removed.push(`host bridge ${link.ifname}${uplink ? ` (${uplink} given back with its addresses and routes)` : ''}`);
  }
  for (const link of found.hostLinks.filter((l) => l.kind !== 'bridge')) {
    await opts.runner.run(['ip', 'link', 'delete', link.ifname], { allowFail: true });
    removed.push(`host link ${link.ifname} (and its routes)`);
  }
  for (const family of found.hostTables) {
    await opts.runner.run(['nft', 'delete', 'table', family, uplinkTable(lab)]);
    removed.push(`nft table ${family} ${uplinkTable(lab)}`);
  }
  if (await releaseHostForwarding(lab)) removed.push('host IPv4 forwarding (back to its value before qnet)');

  if (found.netns === 'ours') {
    const t1 = Date.now();
    await opts.runner.run(['ip', 'netns', 'delete', `${NETNS_PREFIX}${lab}`]);
    removed.push(`namespace ${NETNS_PREFIX}${lab}`);
    reporter.step(`delete namespace ${NETNS_PREFIX}${lab} (and every link in it)`, Date.now() - t1, true);
  } else if (found.netns === 'foreign') {
    warnings.push(`namespace ${NETNS_PREFIX}${lab} exists but does not carry lab ${lab}'s marker; left alone`);
  }

  const dir = labDir(lab);
  if (found.what.some((w) => w.startsWith('run directory'))) {
    await rm(dir, { recursive: true, force: true });
    removed.push(`run directory ${dir}`);
  }
  if (kept) {
    if (opts.purge) {
      await rm(keptDir, { recursive: true, force: true });
      removed.push(`kept disks ${keptDir}`);
    } else warnings.push(`kept disks of ${lab} stay in ${keptDir} (persist: true); \`qnet down ${lab} --purge\` removes them`);
  }
  // Only bookkeeping: the lab is gone whether or not it is remembered.
  await recordDown(lab).catch((e: Error) => warnings.push(`could not remember that ${lab} was taken down: ${e.message}`));
  return { lab, found: true, removed, warnings, ms: Date.now() - t0 };
}

/** What `down` says of the guests it stopped, one entry per way they went: "guest a (quit)", "guests a, b (quit)". */
export function stoppedGuests(stopped: ReadonlyArray<readonly [string, string]>): string[] {
  const byHow = new Map<string, string[]>();
  for (const [node, how] of stopped) byHow.set(how, [...(byHow.get(how) ?? []), node]);
  // A lab of 250 guests would otherwise print 250 entries on one line: the count, the first and last few say enough.
  return [...byHow].map(([how, ns]) =>
    ns.length === 1 ? `guest ${ns[0]} (${how})` : ns.length <= 8 ? `guests ${ns.join(', ')} (${how})` : `${ns.length} guests ${ns.slice(0, 3).join(', ')}, …, ${ns.slice(-2).join(', ')} (${how})`,
  );
}
