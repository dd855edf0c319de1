// Finding what exists of a lab on the host, from ownership markers alone (no state file needed).
import { readdir, readFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { exists } from '../host/fs.js';
import { RealRunner } from '../host/run.js';
import { findMarkedProcesses } from '../qemu/process.js';
import { markerLab, ownerMarker, uplinkTable } from '../render/markers.js';
import { NETNS_PREFIX } from '../topology/model.js';
import { insideHolder, labDir, runRoot, stateRoot } from '../dirs.js';
import { NAME_PATTERN } from '../topology/names.js';
import { OVN_RUNDIR, OVS_RUNDIR } from '../host/ovn-paths.js';

// Discovery only reads (ip -j, nft list): it needs no recording runner.
const run = new RealRunner();

/** A link in the host namespace that carries a lab's marker. */
export interface MarkedLink {
  ifname: string;
  lab: string;
  /** `bridge` for a bridge (removed after what is enslaved to it), `link` for anything else (the uplink's veth). */
  kind: 'bridge' | 'link';
}

/**
 * The host namespace's links that carry some lab's marker, with the lab they belong to. Read from sysfs (the alias
 * is /sys/class/net/NAME/ifalias, a bridge has /sys/class/net/NAME/bridge) rather than from `ip -j -d link show`:
 * no process to start, which was most of `qnet status` with no labs after node's own start. sysfs shows the links
 * of the namespace it was mounted in: qnet runs in the host's, where /sys is the host's (`ip netns exec` would
 * remount it, `nsenter --net` alone would not).
 */
async function markedHostLinks(): Promise<MarkedLink[]> {
  let names: string[];
  try {
    names = await readdir('/sys/class/net');
  } catch {
    return [];
  }
  const links = await Promise.all(
    names.map(async (ifname): Promise<MarkedLink | null> => {
      // A link removed between the listing and the read is simply not there.
      const alias = await readFile(`/sys/class/net/${ifname}/ifalias`, 'utf8').catch(() => '');
      const lab = markerLab(alias.trimEnd());
      return lab ? { ifname, lab, kind: (await exists(`/sys/class/net/${ifname}/bridge`)) ? 'bridge' : 'link' } : null;
    }),
  );
  return links.filter((l): l is MarkedLink => l !== null);
}

/** Whether the namespace exists and carries the lab's marker (the alias of its loopback). */
export async function netnsOwnership(lab: string): Promise<'ours' | 'foreign' | 'absent'> {
  const ns = `${NETNS_PREFIX}${lab}`;
  if (!(await exists(`/run/netns/${ns}`))) return 'absent';
  const r = await run.run(['ip', '-n', ns, '-j', 'link', 'show', 'lo'], { allowFail: true });
  if (r.code !== 0) return 'foreign';
  try {
    const [lo] = JSON.parse(r.stdout) as Array<{ ifalias?: string }>;
    // A namespace whose marker was never written (up killed right after `ip netns add`) is empty: still ours.
    if (!lo?.ifalias) {
      const all = await run.run(['ip', '-n', ns, '-j', 'link', 'show'], { allowFail: true });
      return (JSON.parse(all.stdout || '[]') as unknown[]).length <= 1 ? 'ours' : 'foreign';
    }
    return lo.ifalias === ownerMarker(lab) ? 'ours' : 'foreign';
  } catch {
    return 'foreign';
  }
}

/** Whether the lab's namespace carries its marker (the alias of its loopback, set by up's first link batch). */
async function netnsMarked(lab: string): Promise<boolean> {
  const r = await run.run(['ip', '-n', `${NETNS_PREFIX}${lab}`, '-j', 'link', 'show', 'lo'], { allowFail: true });
  try {
    return r.code === 0 && (JSON.parse(r.stdout) as Array<{ ifalias?: string }>)[0]?.ifalias === ownerMarker(lab);
  } catch {
    return false;
  }
}

/** Links in the host namespace that carry the lab's marker (uplink veths, host bridges of bridged networks). */
export async function hostLinksOf(lab: string): Promise<MarkedLink[]> {
  return (await markedHostLinks()).filter((l) => l.lab === lab);
}

/** The nft families in which the host has the lab's table (named after it, and carrying its marker as comment). */
export async function hostTablesOf(lab: string): Promise<Array<'ip' | 'netdev'>> {
  const out: Array<'ip' | 'netdev'> = [];
  for (const family of ['ip', 'netdev'] as const) {
    const r = await run.run(['nft', 'list', 'table', family, uplinkTable(lab)], { allowFail: true }).catch(() => null);
    if (r && r.code === 0 && r.stdout.includes(ownerMarker(lab))) out.push(family);
  }
  return out;
}

// Whether this host runs OVS or an OVN NB that discovery may ask (their sockets); what asks them (lab/ovn.ts, with
// what it imports) is loaded only then, so a host without OVN pays one stat each.
async function ovnSockets(): Promise<boolean> {
  return (await exists(`${OVS_RUNDIR}/db.sock`)) || (await exists(`${OVN_RUNDIR}/ovnnb_db.sock`));
}

/** What of a lab is present on the host: its namespace, run directory, processes, uplink, firewall table and OVN remains. */
export async function findLab(lab: string): Promise<{
  present: boolean;
  what: string[];
  pids: number[];
  services: number[];
  hostLinks: MarkedLink[];
  hostTables: Array<'ip' | 'netdev'>;
  netns: 'ours' | 'foreign' | 'absent';
}> {
  const what: string[] = [];
  let netns = await netnsOwnership(lab);
  // Inside a user's lab holder the namespace is the holder's, there before `up`: it is the lab's once marked.
  if (netns === 'ours' && insideHolder() && !(await netnsMarked(lab))) netns = 'absent';
  if (netns !== 'absent') what.push(`namespace ${NETNS_PREFIX}${lab}${netns === 'foreign' ? ' (not made by qnet)' : ''}`);
  if (await exists(labDir(lab))) what.push(`run directory ${labDir(lab)}`);
  const marked = (await findMarkedProcesses(lab)).filter((p) => sameRunRoot(p.pid));
  const procs = marked.filter((p) => p.node);
  const services = marked.filter((p) => p.service);
  if (procs.length) what.push(`${procs.length} guest process${procs.length > 1 ? 'es' : ''}`);
  if (services.length) what.push(services.map((s) => s.service).join(', '));
  const hostLinks = await hostLinksOf(lab);
  if (hostLinks.length) what.push(`host link${hostLinks.length > 1 ? 's' : ''} ${hostLinks.map((l) => l.ifname).join(', ')}`);
  const hostTables = await hostTablesOf(lab);
  for (const f of hostTables) what.push(`nft table ${f} ${uplinkTable(lab)}`);
  if (await ovnSockets()) {
    const { ovnRemainsOf } = await import('./ovn.js');
    const ovn = await ovnRemainsOf(run, lab);
    if (ovn.ports.length) what.push(`${ovn.ports.length} port${ovn.ports.length > 1 ? 's' : ''} on br-int (${ovn.ports.join(', ')})`);
    if (ovn.nbRows) what.push(`${ovn.nbRows} OVN northbound row${ovn.nbRows > 1 ? 's' : ''}`);
  }
  return { present: what.length > 0, what, pids: procs.map((p) => p.pid), services: services.map((s) => s.pid), hostLinks, hostTables, netns };
}

/**
 * Names of every lab that has anything on the host: a run directory, a namespace, a marked process or host link;
 * with `tables`, also a host nft table, a marked interface on br-int or a marked row in this host's OVN NB. `qnet status` leaves the tables out: asking nft means starting a process,
 * about 20 ms of its 140 ms with no labs here (node's first spawn blocks it 8-9 ms, Python's 0.5 ms). qnet makes a
 * lab's namespace before its host tables and removes the tables first (up, down, rollback), so a table seen alone
 * was left by hand, or by an nft that failed or was killed while a rollback or a down removed it. `qnet down --all`
 * asks nft too, `qnet down LAB` looks for the lab's tables by name, and `up` of the lab names what is left.
 */
export async function listLabs(opts: { tables?: boolean } = {}): Promise<string[]> {
  const names = new Set<string>();
  // A user without a usable runtime directory is told what to do (dirs.ts), not shown "no labs".
  const root = runRoot();
  // nft first (a process): it runs while /proc and /sys are read here.
  const nft = opts.tables ? run.run(['nft', 'list', 'tables'], { allowFail: true }).catch(() => null) : null;
  const ovn = opts.tables ? ovnSockets().then(async (here) => (here ? (await import('./ovn.js')).ovnLabs(run) : [])) : null;
  try {
    for (const e of await readdir(root, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith('.')) names.add(e.name);
  } catch {
    // no run root yet
  }
  try {
    for (const f of await readdir('/run/netns')) if (f.startsWith(NETNS_PREFIX)) names.add(f.slice(NETNS_PREFIX.length));
  } catch {
    // no namespaces
  }
  // Guest processes, and uplinks left by a lab whose namespace and run directory are gone.
  const [procs, links, tables] = await Promise.all([findMarkedProcesses(), markedHostLinks(), nft]);
  for (const p of procs) names.add(p.lab);
  for (const l of links) names.add(l.lab);
  for (const m of (tables?.stdout ?? '').matchAll(/^table (?:ip|netdev) qnet-([a-z0-9-]+)$/gm)) names.add(m[1]!);
  for (const l of (await ovn) ?? []) names.add(l);
  return [...names].sort();
}

/** Labs that have kept disks (nodes with persist: true) in the state directory, whether or not they are up. */
export async function keptLabs(): Promise<string[]> {
  try {
    return (await readdir(stateRoot(), { withFileTypes: true })).filter((e) => e.isDirectory() && NAME_PATTERN.test(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/**
 * Whether a marked process sees this host's run directory (the same file system at runRoot()): not so for a process of
 * another host that shares this PID namespace (simulated hosts are mount and network namespaces on one machine), whose
 * lab of the same name is not this host's to count or stop. Kept when either cannot be read.
 */
function sameRunRoot(pid: number): boolean {
  // Before this host's first lab its run directory may not exist yet: its nearest existing parent is compared.
  let dir = runRoot();
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    return statSync(`/proc/${pid}/root${dir}`).dev === statSync(dir).dev;
  } catch {
    return true;
  }
}
