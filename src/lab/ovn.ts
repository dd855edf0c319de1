// Labs on OVN: what `up` observes of this host's OVN before any change (ready, chassis, datapath), how `down` and a
// rollback find and remove the lab's rows in the northbound DB and its ports on br-int by their marker (no state
// needed), and the plan of labs over several hosts for `up --dry-run` (not made yet: refused with what is missing).
import { RuntimeError, UserError } from '../errors.js';
import { formatNbBatch, nbArgv, nbFindArgv, NB_LAB_TABLES, renderNbDown, renderNbUp, type NbLabTable } from '../fabric/ovn/nb.js';
import { INTEGRATION_BRIDGE, OVS_LAB_KEY } from '../fabric/ovn/names.js';
import { findMirrorsArgv, mirrorDelArgv } from '../fabric/ovn/mirror.js';
import { notYetOnOvn, onOvn, ovnFabric } from '../fabric/ovn/plan.js';
import { q } from '../fabric/ovn/nb.js';
import { exists } from '../host/fs.js';
import { hostStatus, OVN_RUNDIR, OVS_RUNDIR } from '../host/ovn-setup.js';
import type { CommandRunner } from '../host/run.js';
import type { OvnHostContext } from '../plan/steps.js';
import { LOCAL_HOST } from '../topology/model.js';
import { labGuestMtu } from '../fabric/ovn/mtu.js';
import { localHostFacts } from '../host/facts.js';
import { capacityOf, formatPlacement, placeNodes, type HostCapacity } from '../plan/placement.js';
import type { ResolvedLab } from '../topology/model.js';
import type { HostPart } from '../hosts/protocol.js';

/** The text `qnet up --dry-run` prints for a lab on OVN: hosts, placement, the guests' MTU and the NB batch. */
export async function previewOvn(lab: ResolvedLab): Promise<string> {
  const hosts = lab.hosts ?? [];
  // Only this machine is observed here; a host over SSH counts with what the topology grants it, or unbounded.
  const local = hosts.some((h) => h.ssh.kind === 'local') ? await localHostFacts() : undefined;
  const capacity: Record<string, HostCapacity | undefined> = Object.fromEntries(hosts.map((h) => [h.name, capacityOf(h, h.ssh.kind === 'local' ? local : undefined)]));
  const placement = placeNodes(lab, capacity);
  // The underlay's MTU is observed on each host at `up`; until then, a plain 1500-byte underlay is assumed.
  const mtu = labGuestMtu(hosts.map(() => 1500));
  const where = lab.ovn?.central ? `central ${lab.ovn.central}` : `NB ${lab.ovn?.nb}, SB ${lab.ovn?.sb}`;
  const lines = [
    `plan for lab ${lab.name} on OVN (${hosts.length} host${hosts.length === 1 ? '' : 's'}; ${where}; gateway ${lab.ovn?.gateway}); nothing was changed`,
    '# placement',
    formatPlacement(lab, placement, capacity),
    ...(placement.unbounded.length ? [`# ${placement.unbounded.join(', ')}: capacity not observed in a dry run (give the host "memory" and "cpus" to bound it)`] : []),
    `# guests' MTU ${mtu}${hosts.length > 1 ? ' (assuming 1500-byte underlays; observed at up)' : ''}`,
    '# ovn-nbctl batch (up, one transaction)',
    formatNbBatch(renderNbUp(lab, { placement: placement.hosts, mtu })).trimEnd(),
  ];
  return lines.join('\n') + '\n';
}

/**
 * What the lab's fabric adds to its plan, observed before any change: nothing on Linux bridges; on OVN, this host's
 * OVN (see observeOvn), and the lab as it runs there.
 */
export async function observeFabric(lab: ResolvedLab, runner: CommandRunner, part?: HostPart): Promise<{ lab: ResolvedLab; ctx: { ovn?: OvnHostContext } }> {
  if (lab.fabric !== 'ovn') return { lab, ctx: {} };
  const o = await observeOvn(lab, runner, part);
  return { lab: o.lab, ctx: { ovn: o.ovn } };
}

/**
 * A running lab on OVN is not changed in place yet, nor are its nodes started again (their taps are on br-int): the
 * reason, with the new definition as it would run on OVN (its taps named as the running lab's), to compare. Undefined
 * for labs on Linux bridges.
 */
export function ovnChangeRefusal(running: ResolvedLab, next: ResolvedLab): { why: string; next: ResolvedLab } | undefined {
  if (running.fabric !== 'ovn' && next.fabric !== 'ovn') return undefined;
  const netdev = running.nodes.some((n) => n.nics.some((c) => c.vnetHdr === false));
  return {
    why: 'a lab on OVN is not changed in place yet, nor are its nodes started again: `qnet down`, then `qnet up`',
    next: next.fabric === 'ovn' ? onOvn(next, netdev ? 'netdev' : 'system') : next,
  };
}

/** True for a lab on OVN that `up` makes today: one host, this machine (no `hosts:`, or one with `ssh: local`). */
export function ovnOnThisHost(lab: ResolvedLab): boolean {
  return lab.fabric === 'ovn' && (lab.hosts?.length ?? 0) <= 1 && (lab.hosts ?? []).every((h) => h.ssh.kind === 'local');
}

/**
 * What the OVN fabric plans with, observed on this host before any change; refuses (exit 2) what OVN does not carry
 * yet, and (exit 1) a host whose OVN is not ready, naming what to run. The lab comes back as it runs on OVN.
 */
export async function observeOvn(input: ResolvedLab, runner: CommandRunner, part?: HostPart): Promise<{ lab: ResolvedLab; ovn: OvnHostContext }> {
  const refused = part ? undefined : notYetOnOvn(input);
  if (refused) throw refused;
  const st = await hostStatus(runner);
  if (!st.ready)
    throw new RuntimeError(
      `lab ${input.name} is on OVN, and this host's OVN is not ready:\n  ${st.problems.join('\n  ')}\n` +
        `a lab on one host needs Open vSwitch, ovn-controller and the OVN databases here: \`qnet host setup --name NAME --underlay IP --central\` (\`qnet host status\` says what runs); nothing was made`,
    );
  const host = part?.host ?? input.hosts?.[0]?.name ?? LOCAL_HOST;
  // The implicit host of a lab without `hosts:` is whatever chassis this host is; a named one must be this chassis.
  if (host !== LOCAL_HOST && host !== st.chassis)
    throw new RuntimeError(`hosts.${host}: this host is OVN chassis "${st.chassis}", not "${host}": name the host ${st.chassis} in the topology, or set it up as ${host}; nothing was made`);
  if (input.ovn?.nb !== undefined && input.ovn.sb !== undefined && st.remote !== input.ovn.sb)
    throw new RuntimeError(`ovn.sb: this host's ovn-controller talks to ${st.remote}, not ${input.ovn.sb}; nothing was made`);
  const datapath = st.datapath === 'netdev' ? 'netdev' : 'system';
  const lab = onOvn(input, datapath);
  const impairs = lab.nodes.flatMap((node) =>
    node.nics.flatMap((nic) => {
      const why = nic.impair && ovnFabric.impairmentRefusal(lab, nic, nic.impair);
      return why ? [`nodes.${node.name}.nics[${nic.index}].impair.direction: ${why}`] : [];
    }),
  );
  if (impairs.length) throw new UserError(`lab ${input.name} on OVN (datapath ${datapath}):\n  ${impairs.join('\n  ')}\nnothing was made`);
  return {
    lab,
    ovn: {
      chassis: part ? part.chassis : { [host]: st.chassis! },
      placement: part ? part.placement : Object.fromEntries(lab.nodes.map((n) => [n.name, host])),
      datapath,
      nb: input.ovn?.nb !== undefined ? [`--db=${input.ovn.nb}`] : [],
      ...(part ? { part: { host, gateway: part.gateway } } : {}),
    },
  };
}

/** The northbound rows of a lab, found by its marker, table by table (none when the NB cannot be read). */
async function nbRowsOf(runner: CommandRunner, lab: string, nb: string[]): Promise<Partial<Record<NbLabTable, string[]>>> {
  const found: Partial<Record<NbLabTable, string[]>> = {};
  for (const table of NB_LAB_TABLES) {
    const r = await runner.run(nbFindArgv(lab, table, ['--timeout=10', ...nb]), { allowFail: true });
    if (r.code !== 0) throw new RuntimeError(`the northbound DB could not be read (${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}): the lab's OVN rows are left`);
    const uuids = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    if (uuids.length) found[table] = uuids;
  }
  return found;
}

/** Removes every northbound row marked with the lab (one transaction); returns how many top rows went. */
export async function clearOvn(runner: CommandRunner, lab: string, nb: string[]): Promise<number> {
  const cmds = renderNbDown(await nbRowsOf(runner, lab, nb));
  if (cmds.length) await runner.run(nbArgv(cmds, ['--timeout=10', ...nb]));
  return cmds.length;
}

/** The OVS interfaces on this host that carry the lab's marker (its taps and host sides on br-int). */
export async function ovsPortsOf(runner: CommandRunner, lab: string): Promise<string[]> {
  const r = await probe(runner, ['ovs-vsctl', '--timeout=5', '--bare', '--columns=name', 'find', 'Interface', `external_ids:${OVS_LAB_KEY}=${q(lab)}`]);
  return r.code === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/**
 * What `down` removes of a lab on OVN, from the markers alone: its ports on br-int, then its northbound rows (when
 * this host runs the NB, or the state names it). Asks nothing where no OVS or NB runs (a host without OVN: no process).
 */
export async function removeOvn(runner: CommandRunner, lab: string, nb: string[] | undefined): Promise<string[]> {
  const removed: string[] = [];
  if (await exists(`${OVS_RUNDIR}/db.sock`)) {
    // Mirrors of a capture that was killed (its port goes with the lab's ports below).
    const mirrors = (await probe(runner, findMirrorsArgv({ lab }))).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    if (mirrors.length) {
      await runner.run(mirrorDelArgv(mirrors));
      removed.push(`${mirrors.length} capture mirror${mirrors.length === 1 ? '' : 's'} on ${INTEGRATION_BRIDGE}`);
    }
    const ports = await ovsPortsOf(runner, lab);
    if (ports.length) {
      await runner.run(['ovs-vsctl', '--timeout=10', ...ports.flatMap((p) => ['--', '--if-exists', 'del-port', INTEGRATION_BRIDGE, p])]);
      removed.push(`${ports.length} port${ports.length === 1 ? '' : 's'} on ${INTEGRATION_BRIDGE} (${ports.join(', ')})`);
    }
  }
  if (nb !== undefined || (await exists(`${OVN_RUNDIR}/ovnnb_db.sock`))) {
    const rows = await clearOvn(runner, lab, nb ?? []);
    if (rows) removed.push(`${rows} northbound row${rows === 1 ? '' : 's'} marked ${OVS_LAB_KEY}=${lab} (with the ports, ACLs, routes and NAT they hold)`);
  }
  return removed;
}

// Discovery asks OVS and the NB only where they run here (their sockets exist), each question bounded: a host without
// Open vSwitch or OVN starts no process for it, and one whose daemons hang costs at most a few seconds.
const PROBE = { allowFail: true, timeoutMs: 6000 } as const;
const probe = async (runner: CommandRunner, argv: string[]) => (await runner.run(argv, PROBE).catch(() => null)) ?? { code: 1, stdout: '' };

/** Whether this host runs an OVS database and an OVN northbound DB that discovery may ask (their sockets exist). */
export async function ovnHere(): Promise<{ ovs: boolean; nb: boolean }> {
  const [ovs, nb] = await Promise.all([exists(`${OVS_RUNDIR}/db.sock`), exists(`${OVN_RUNDIR}/ovnnb_db.sock`)]);
  return { ovs, nb };
}

/** What of a lab is left in this host's OVN, by its markers: its interfaces on br-int and its top NB rows (none where OVN does not run). */
export async function ovnRemainsOf(runner: CommandRunner, lab: string): Promise<{ ports: string[]; nbRows: number }> {
  const here = await ovnHere();
  const ports = here.ovs ? await ovsPortsOf(runner, lab) : [];
  let nbRows = 0;
  if (here.nb) {
    // One ovn-nbctl run for every table: each `find` prints its rows' UUIDs.
    const r = await probe(runner, ['ovn-nbctl', '--timeout=5', '--bare', ...NB_LAB_TABLES.flatMap((t) => ['--', '--columns=_uuid', 'find', t, `external_ids:${OVS_LAB_KEY}=${q(lab)}`])]);
    if (r.code === 0) nbRows = r.stdout.split('\n').filter((l) => /^[0-9a-f]{8}-/.test(l.trim())).length;
  }
  return { ports, nbRows };
}

/** The lab names found in `--bare` external_ids output (`qnet-lab=NAME` or `qnet-lab="NAME"`). */
export function labsInExternalIds(text: string): string[] {
  return [...new Set([...text.matchAll(new RegExp(`(?:^|\\s)${OVS_LAB_KEY}="?([a-z0-9-]+)"?(?=\\s|$)`, 'gm'))].map((m) => m[1]!))].sort();
}

/** Every lab with an interface on this host's br-int or a row in its NB, by their markers (none where OVN does not run). */
export async function ovnLabs(runner: CommandRunner): Promise<string[]> {
  const here = await ovnHere();
  const [ovs, nb] = await Promise.all([
    here.ovs ? probe(runner, ['ovs-vsctl', '--timeout=5', '--bare', '--columns=external_ids', 'list', 'Interface']) : null,
    here.nb ? probe(runner, ['ovn-nbctl', '--timeout=5', '--bare', ...NB_LAB_TABLES.flatMap((t) => ['--', '--columns=external_ids', 'list', t])]) : null,
  ]);
  return labsInExternalIds(`${ovs?.code === 0 ? ovs.stdout : ''}\n${nb?.code === 0 ? nb.stdout : ''}`);
}

/** Whether each of the lab's logical switch ports is bound to a chassis (NB `up`), by port name; empty when the NB cannot be read. */
export async function portsBound(runner: CommandRunner, lab: string, nb: string[]): Promise<Map<string, boolean>> {
  const r = await probe(runner, ['ovn-nbctl', '--timeout=5', ...nb, '--format=csv', '--data=bare', '--no-headings', '--columns=name,up', 'find', 'Logical_Switch_Port', `external_ids:${OVS_LAB_KEY}=${q(lab)}`]);
  return r.code === 0 ? parseBound(r.stdout) : new Map();
}

/** `name,up` lines of ovn-nbctl's CSV (up empty before OVN has set it) as port name → bound. */
export function parseBound(csv: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of csv.split('\n')) {
    const m = /^"?([^",]+)"?,(\w*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2] === 'true');
  }
  return out;
}
