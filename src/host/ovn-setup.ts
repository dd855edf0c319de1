// `qnet host setup`, `status` and `stop`: Open vSwitch and ovn-controller on this machine, registered as an OVN
// chassis (and, on the central, the NB/SB databases and ovn-northd). What to do is planned by a pure function from
// the request and what was observed; only runSetup/runStop touch the host. The daemons are started by Debian's own
// scripts (ovs-ctl, ovn-ctl) with their default paths, or directly with the same paths, never through systemd: it
// works where systemd is not PID 1 (containers, the simulated hosts of the tests), and where it is, the daemons are
// found by the same pidfiles whoever started them.
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeError, UserError } from '../errors.js';
import { stateRoot } from '../dirs.js';
import { parseIPv4 } from '../topology/ipv4.js';
import { NAME_PATTERN } from '../topology/names.js';
import { aptInstallArgv, missingPackages } from './apt.js';
import { isAlive, waitGone } from '../qemu/process.js';
import { ovsKernelDatapathProblem } from './kernel.js';
import { stopService } from './service.js';
import type { CommandRunner } from './run.js';

/** The Debian packages: every host needs OVS and ovn-controller, the central also the databases and ovn-northd. */
export const OVN_PACKAGES = { host: ['openvswitch-switch', 'ovn-host'], central: ['ovn-central'] } as const;

export const OVS_CTL = '/usr/share/openvswitch/scripts/ovs-ctl';
export const OVN_CTL = '/usr/share/ovn/scripts/ovn-ctl';
import { OVN_RUNDIR, OVS_RUNDIR } from './ovn-paths.js';
export { OVN_RUNDIR, OVS_RUNDIR };
/** The bridge the userspace datapath sends Geneve out of: it holds the underlay interface and its address. */
export const UNDERLAY_BRIDGE = 'br-phy';
export const NB_PORT = 6641;
export const SB_PORT = 6642;

/** The daemons setup starts, each known by its pidfile (the path every start script uses) and its process name. */
export const DAEMONS = {
  ovsdbServer: { pidfile: `${OVS_RUNDIR}/ovsdb-server.pid`, comm: 'ovsdb-server' },
  ovsVswitchd: { pidfile: `${OVS_RUNDIR}/ovs-vswitchd.pid`, comm: 'ovs-vswitchd' },
  ovnController: { pidfile: `${OVN_RUNDIR}/ovn-controller.pid`, comm: 'ovn-controller' },
  nb: { pidfile: `${OVN_RUNDIR}/ovnnb_db.pid`, comm: 'ovsdb-server' },
  sb: { pidfile: `${OVN_RUNDIR}/ovnsb_db.pid`, comm: 'ovsdb-server' },
  northd: { pidfile: `${OVN_RUNDIR}/ovn-northd.pid`, comm: 'ovn-northd' },
} as const;
export type Daemon = keyof typeof DAEMONS;

export type Datapath = 'system' | 'netdev';

/** What `qnet host setup` was asked for, checked. */
export interface HostSetupRequest {
  /** This chassis's name in OVN (its OVS system-id): the host's name in the topology. */
  name: string;
  /** The underlay address Geneve tunnels end on (ovn-encap-ip). */
  underlay: string;
  /** The interface that has the underlay address: with the userspace datapath it goes into br-phy. */
  underlayDev?: string;
  central: boolean;
  /** The southbound DB the controller talks to (ovn-remote); the central's own tcp address by default. */
  remote: string;
  datapath: Datapath | 'auto';
}

/** Checks the options of `qnet host setup`; bad input is a UserError naming the option (nothing was touched yet). */
export function checkSetupRequest(o: { name?: string; underlay?: string; underlayDev?: string; central?: boolean; remote?: string; datapath?: string }): HostSetupRequest {
  if (!o.name) throw new UserError('host setup: --name is required: this host\'s name in the topology (its OVN chassis name)');
  if (!NAME_PATTERN.test(o.name) || o.name.length > 63) throw new UserError(`--name: expected lower-case letters, digits and inner hyphens (at most 63), got "${o.name}"`);
  if (!o.underlay) throw new UserError('host setup: --underlay is required: the IPv4 address of this host that the other hosts reach (Geneve tunnels end on it)');
  const ip = parseIPv4(o.underlay);
  if (ip === null || ip === 0 || o.underlay.includes('/')) throw new UserError(`--underlay: expected an IPv4 address of this host (without a prefix), got "${o.underlay}"`);
  const datapath = o.datapath ?? 'auto';
  if (datapath !== 'auto' && datapath !== 'system' && datapath !== 'netdev') throw new UserError(`--datapath: expected auto, system or netdev, got "${datapath}"`);
  if (o.underlayDev !== undefined && !/^[A-Za-z0-9_.:-]{1,15}$/.test(o.underlayDev)) throw new UserError(`--underlay-dev: "${o.underlayDev}" is not an interface name`);
  let remote: string;
  if (o.remote === undefined) {
    if (!o.central) throw new UserError('host setup: --remote is required on a host that is not the central: the central\'s southbound DB, as tcp:IP:6642 (or its IP)');
    remote = `tcp:${o.underlay}:${SB_PORT}`;
  } else if (parseIPv4(o.remote) !== null && !o.remote.includes('/')) remote = `tcp:${o.remote}:${SB_PORT}`;
  else if (/^(tcp|ssl):\d{1,3}(\.\d{1,3}){3}:\d{1,5}(,(tcp|ssl):\d{1,3}(\.\d{1,3}){3}:\d{1,5})*$/.test(o.remote) || /^unix:\/\S+$/.test(o.remote)) remote = o.remote;
  else throw new UserError(`--remote: expected the southbound DB as tcp:IP:PORT (several comma-separated), ssl:IP:PORT, unix:PATH or an IP (port ${SB_PORT}), got "${o.remote}"`);
  return { name: o.name, underlay: o.underlay, ...(o.underlayDev !== undefined ? { underlayDev: o.underlayDev } : {}), central: !!o.central, remote, datapath };
}

/** What setup finds on the host before it changes anything. */
export interface HostObservation {
  missing: string[];
  running: Record<Daemon, boolean>;
  /** Open_vSwitch external_ids (empty when ovsdb-server is not running). */
  externalIds: Record<string, string>;
  /** Which interface holds the underlay address now, and with which prefix length (absent: no interface has it). */
  underlayOn?: { dev: string; prefix: number };
  /** The underlay interface asked for, as it is (absent: no such interface, or none asked for). */
  underlayDev?: { mtu: number };
  /** br-phy as it is: whether the underlay interface is its port, its MTU, whether it is up (absent: no br-phy). */
  brPhy?: { holdsDev: boolean; mtu: number; up: boolean };
  /** The result of the kernel datapath probe (only made when the datapath is auto). */
  kernelDatapath?: boolean;
  /** Why the kernel datapath cannot carry OVN here (with kernelDatapath false). */
  kernelDatapathWhy?: string;
  /** The listeners of the NB and SB databases, as their Connection rows say (central, databases running). */
  nbConnection?: string;
  sbConnection?: string;
}

/** One thing setup does: what it is, and the command. */
export interface SetupStep {
  what: string;
  argv: string[];
  env?: Record<string, string>;
  /** A daemon this step asks to exit: waited for, then SIGTERM and SIGKILL if it lingers. */
  pid?: number;
}

/** What runSetup did (and what stop undoes): written to the host's qnet state directory. */
export interface HostRecord {
  name: string;
  underlay: string;
  datapath: Datapath;
  central: boolean;
  remote: string;
  /** When setup moved the underlay address from this interface onto br-phy: put back by stop. */
  moved?: { dev: string; prefix: number; arpIgnore: string; disableIpv6: string };
}

/** Where a host's OVN record lives (on the host). */
export function hostRecordFile(): string {
  return path.join(stateRoot(), 'ovn-host.json');
}

/** The datapath setup uses: the one asked for, or the kernel's where its probe said it works. */
export function chooseDatapath(req: HostSetupRequest, obs: HostObservation): Datapath {
  return req.datapath !== 'auto' ? req.datapath : obs.kernelDatapath ? 'system' : 'netdev';
}

/**
 * The steps that take this host from what was observed to a running, registered chassis (pure; an empty list when
 * everything is as asked). Refuses (UserError) what cannot work: another chassis name already registered here, an
 * underlay address no interface has, the userspace datapath without an OVS bridge for the underlay.
 */
export function planSetup(req: HostSetupRequest, obs: HostObservation): { datapath: Datapath; steps: SetupStep[]; moved?: HostRecord['moved'] } {
  const datapath = chooseDatapath(req, obs);
  if (req.datapath === 'system' && obs.kernelDatapath === false)
    throw new UserError(`--datapath system: ${obs.kernelDatapathWhy ?? 'the kernel datapath cannot carry OVN here'}; use the userspace datapath (--datapath netdev, or auto) with --underlay-dev`);
  const steps: SetupStep[] = [];
  const ids = obs.externalIds;
  if (ids['ovn-remote'] && ids['system-id'] && ids['system-id'] !== req.name)
    throw new UserError(`--name: this host is OVN chassis "${ids['system-id']}" already (ovn-remote ${ids['ovn-remote']}); give --name ${ids['system-id']}, or stop it first (\`qnet host stop\`) and clear external_ids:system-id`);
  if (req.underlayDev !== undefined && datapath === 'system')
    throw new UserError(`--underlay-dev: only for the userspace datapath (netdev), where Geneve leaves through ${UNDERLAY_BRIDGE}; the kernel datapath sends it by the kernel's routes`);
  if (req.underlayDev !== undefined && !obs.underlayDev) throw new UserError(`--underlay-dev: no interface "${req.underlayDev}" on this host`);
  const on = obs.underlayOn;
  if (!on) throw new UserError(`--underlay: no interface of this host has ${req.underlay}${req.underlayDev ? ` (give ${req.underlayDev} that address first)` : ''}`);
  let moved: HostRecord['moved'];
  if (datapath === 'netdev' && on.dev !== UNDERLAY_BRIDGE) {
    if (req.underlayDev === undefined)
      throw new UserError(
        `--underlay-dev: the userspace datapath (${req.datapath === 'netdev' ? 'as asked' : obs.kernelDatapathWhy ?? 'this kernel has no usable openvswitch or geneve module'}) sends Geneve out of an OVS bridge: give --underlay-dev ${on.dev} (the interface with ${req.underlay}: qnet moves it into ${UNDERLAY_BRIDGE} and its address onto ${UNDERLAY_BRIDGE}; use an interface for the underlay alone)`,
      );
    if (on.dev !== req.underlayDev) throw new UserError(`--underlay-dev: ${req.underlay} is on ${on.dev}, not on ${req.underlayDev}`);
  }
  const pkgs = [...OVN_PACKAGES.host, ...(req.central ? OVN_PACKAGES.central : [])].filter((p) => obs.missing.includes(p));
  if (pkgs.length) steps.push({ what: `install ${pkgs.join(', ')}`, argv: aptInstallArgv(pkgs), env: { DEBIAN_FRONTEND: 'noninteractive' } });
  const run = obs.running;
  // ovs-ctl creates or upgrades the database, then starts ovsdb-server; ovs-vswitchd it would start only after
  // loading the openvswitch module (and, failing that, trying to unload the bridge module), so it is started here
  // directly, with ovs-ctl's paths and arguments (no --mlockall: labs want the memory).
  if (!run.ovsdbServer)
    steps.push({ what: 'start ovsdb-server (Open vSwitch database)', argv: [OVS_CTL, '--no-ovs-vswitchd', '--no-monitor', '--no-record-hostname', `--system-id=${req.name}`, 'start'] });
  if (!run.ovsVswitchd)
    steps.push({
      what: 'start ovs-vswitchd',
      argv: ['ovs-vswitchd', `unix:${OVS_RUNDIR}/db.sock`, '-vconsole:emer', '-vsyslog:err', '-vfile:info', '--no-chdir', '--log-file=/var/log/openvswitch/ovs-vswitchd.log', `--pidfile=${DAEMONS.ovsVswitchd.pidfile}`, '--detach'],
    });
  if (datapath === 'netdev' && req.underlayDev !== undefined) {
    const dev = req.underlayDev;
    const br = obs.brPhy;
    // The bridge's own port (a tap made by ovs-vswitchd) carries the underlay address: OVS's userspace tunnels
    // route and resolve next hops through it. Its MTU follows the underlay's, so Geneve's 58 bytes fit.
    if (!br?.holdsDev || br.mtu !== obs.underlayDev!.mtu || !run.ovsVswitchd)
      steps.push({
        what: `${UNDERLAY_BRIDGE}: a userspace bridge holding ${dev}`,
        argv: ['ovs-vsctl', '--timeout=10', '--may-exist', 'add-br', UNDERLAY_BRIDGE, '--', 'set', 'bridge', UNDERLAY_BRIDGE, 'datapath_type=netdev', 'other-config:disable-in-band=true', '--', '--may-exist', 'add-port', UNDERLAY_BRIDGE, dev, '--', 'set', 'interface', UNDERLAY_BRIDGE, `mtu_request=${obs.underlayDev!.mtu}`],
      });
    if (on.dev !== UNDERLAY_BRIDGE) {
      moved = { dev, prefix: on.prefix, arpIgnore: '0', disableIpv6: '0' };
      // The kernel still sees every frame of a port OVS reads (AF_PACKET copies): without an address, the
      // ARP-ignore and no IPv6, the kernel on dev no longer answers for the address OVS now holds.
      steps.push({ what: `move ${req.underlay}/${on.prefix} from ${dev} to ${UNDERLAY_BRIDGE}`, argv: ['ip', 'addr', 'add', `${req.underlay}/${on.prefix}`, 'dev', UNDERLAY_BRIDGE] });
      steps.push({ what: `${dev} keeps no address`, argv: ['ip', 'addr', 'del', `${req.underlay}/${on.prefix}`, 'dev', dev] });
      steps.push({ what: `${dev}: no ARP answers, no IPv6`, argv: ['sysctl', '-q', '-w', `net.ipv4.conf.${dev}.arp_ignore=1`, `net.ipv6.conf.${dev}.disable_ipv6=1`] });
    }
    if (!br?.up || !run.ovsVswitchd) steps.push({ what: `${UNDERLAY_BRIDGE} up`, argv: ['ip', 'link', 'set', UNDERLAY_BRIDGE, 'up'] });
  }
  const want: Record<string, string> = {
    'system-id': req.name,
    'ovn-remote': req.remote,
    'ovn-encap-type': 'geneve',
    'ovn-encap-ip': req.underlay,
    'ovn-bridge-datapath-type': datapath,
  };
  const differ = Object.entries(want).filter(([k, v]) => ids[k] !== v);
  if (differ.length)
    steps.push({ what: `register chassis ${req.name} (encap geneve ${req.underlay}, SB ${req.remote}, datapath ${datapath})`, argv: ['ovs-vsctl', '--timeout=10', 'set', 'open_vswitch', '.', ...differ.map(([k, v]) => `external_ids:${k}=${v}`)] });
  if (req.central) {
    if (!run.nb || !run.sb) steps.push({ what: 'start the OVN northbound and southbound databases', argv: [OVN_CTL, 'start_ovsdb'] });
    // Listeners are rows of the databases (ovn-ctl starts them with --remote=db:…,connections): the other hosts
    // and the driving qnet reach them on the underlay address only.
    const nb = `ptcp:${NB_PORT}:${req.underlay}`;
    const sb = `ptcp:${SB_PORT}:${req.underlay}`;
    if (obs.nbConnection !== nb) steps.push({ what: `northbound DB listens on tcp:${req.underlay}:${NB_PORT}`, argv: ['ovn-nbctl', '--timeout=10', 'set-connection', nb] });
    if (obs.sbConnection !== sb) steps.push({ what: `southbound DB listens on tcp:${req.underlay}:${SB_PORT}`, argv: ['ovn-sbctl', '--timeout=10', 'set-connection', sb] });
    if (!run.northd) steps.push({ what: 'start ovn-northd', argv: [OVN_CTL, '--no-monitor', '--ovn-manage-ovsdb=no', 'start_northd'] });
  }
  if (!run.ovnController) steps.push({ what: 'start ovn-controller', argv: [OVN_CTL, '--no-monitor', 'start_controller'] });
  return { datapath, steps, ...(moved ? { moved } : {}) };
}

/** The control socket of a running daemon (the OVN databases' are named by ovn-ctl, the others by their pid). */
function controlSocket(d: Daemon, pid: number): string {
  if (d === 'nb') return `${OVN_RUNDIR}/ovnnb_db.ctl`;
  if (d === 'sb') return `${OVN_RUNDIR}/ovnsb_db.ctl`;
  return `${d === 'ovsdbServer' || d === 'ovsVswitchd' ? OVS_RUNDIR : OVN_RUNDIR}/${DAEMONS[d].comm}.${pid}.ctl`;
}

/**
 * The steps that stop what setup started, each daemon asked to exit by its control socket and waited for by its
 * pid: the controller first (it leaves the SB while the central is up), OVS last. Not ovs-ctl/ovn-ctl stop: they
 * wait for the pid to vanish, and where the init process is slow to reap (containers) that took 6-8 s a host.
 */
export function planStop(pids: Partial<Record<Daemon, number>>, record: HostRecord | null): SetupStep[] {
  const steps: SetupStep[] = [];
  const order: Daemon[] = ['ovnController', 'northd', 'nb', 'sb', 'ovsVswitchd', 'ovsdbServer'];
  for (const d of order) {
    const pid = pids[d];
    if (pid === undefined) continue;
    const name = d === 'nb' ? 'the OVN northbound DB' : d === 'sb' ? 'the OVN southbound DB' : DAEMONS[d].comm;
    // ovs-vswitchd exits with --cleanup: otherwise it leaves its datapath behind for a restart (the userspace
    // datapath's br-int, br-phy and ovs-netdev are persistent taps, br-phy still holding the underlay address;
    // the kernel's, its ovs-system datapath): seen after `host stop` inside User-Mode Linux.
    steps.push({ what: `stop ${name}`, argv: ['ovs-appctl', '-T', '5', '-t', controlSocket(d, pid), 'exit', ...(d === 'ovsVswitchd' ? ['--cleanup'] : [])], pid });
  }
  const m = record?.moved;
  if (m) {
    // br-phy went with ovs-vswitchd: the underlay address goes back where setup found it.
    steps.push({ what: `${record!.underlay}/${m.prefix} back on ${m.dev}`, argv: ['ip', 'addr', 'replace', `${record!.underlay}/${m.prefix}`, 'dev', m.dev] });
    steps.push({ what: `${m.dev}: ARP and IPv6 as they were`, argv: ['sysctl', '-q', '-w', `net.ipv4.conf.${m.dev}.arp_ignore=${m.arpIgnore}`, `net.ipv6.conf.${m.dev}.disable_ipv6=${m.disableIpv6}`] });
  }
  return steps;
}

/** The pid of each daemon that runs: its pidfile names a live process of its name (no process is started to know it). */
export async function daemonPids(): Promise<Partial<Record<Daemon, number>>> {
  const out: Partial<Record<Daemon, number>> = {};
  for (const [k, d] of Object.entries(DAEMONS) as Array<[Daemon, (typeof DAEMONS)[Daemon]]>) {
    const pid = Number((await readFile(d.pidfile, 'utf8').catch(() => '')).trim());
    const comm = pid > 0 ? (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() : '';
    if (comm === d.comm && (await isAlive(pid))) out[k] = pid;
  }
  return out;
}

/** Whether each daemon runs. */
export async function runningDaemons(): Promise<Record<Daemon, boolean>> {
  const pids = await daemonPids();
  return Object.fromEntries(Object.keys(DAEMONS).map((k) => [k, pids[k as Daemon] !== undefined])) as Record<Daemon, boolean>;
}

/** Parses `ovs-vsctl --format=json` / `ovn-sbctl --format=json` output into rows of column values (maps as objects). */
export function parseOvsdbJson(text: string): Array<Record<string, unknown>> {
  const j = JSON.parse(text) as { headings: string[]; data: unknown[][] };
  const value = (v: unknown): unknown => {
    if (!Array.isArray(v)) return v;
    if (v[0] === 'map') return Object.fromEntries((v[1] as Array<[string, unknown]>).map(([k, x]) => [k, value(x)]));
    if (v[0] === 'set') return (v[1] as unknown[]).map(value);
    if (v[0] === 'uuid') return v[1];
    return v;
  };
  return j.data.map((row) => Object.fromEntries(j.headings.map((h, i) => [h, value(row[i])])));
}

async function externalIds(run: CommandRunner): Promise<Record<string, string>> {
  const r = await run.run(['ovs-vsctl', '--timeout=5', '--format=json', '--columns=external_ids', 'list', 'Open_vSwitch'], { allowFail: true });
  if (r.code !== 0) return {};
  return (parseOvsdbJson(r.stdout)[0]?.external_ids as Record<string, string> | undefined) ?? {};
}

/** Reads what setup needs to plan: packages, daemons, OVS's chassis settings, the underlay's interface, the probe. */
export async function observeHost(run: CommandRunner, req: HostSetupRequest): Promise<HostObservation> {
  const missing = await missingPackages(run, [...OVN_PACKAGES.host, ...(req.central ? OVN_PACKAGES.central : [])]);
  const running = await runningDaemons();
  const ids = running.ovsdbServer ? await externalIds(run) : {};
  const addrs = JSON.parse((await run.run(['ip', '-j', 'addr', 'show'])).stdout || '[]') as Array<{ ifname: string; mtu: number; flags?: string[]; addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>;
  const holder = addrs.find((l) => l.addr_info?.some((a) => a.family === 'inet' && a.local === req.underlay));
  const underlayOn = holder ? { dev: holder.ifname, prefix: holder.addr_info!.find((a) => a.local === req.underlay)!.prefixlen } : undefined;
  const dev = req.underlayDev ? addrs.find((l) => l.ifname === req.underlayDev) : undefined;
  const obs: HostObservation = { missing, running, externalIds: ids, ...(underlayOn ? { underlayOn } : {}), ...(dev ? { underlayDev: { mtu: dev.mtu } } : {}) };
  const br = addrs.find((l) => l.ifname === UNDERLAY_BRIDGE);
  if (br && req.underlayDev && running.ovsdbServer) {
    const holds = (await run.run(['ovs-vsctl', '--timeout=5', 'port-to-br', req.underlayDev], { allowFail: true })).stdout.trim() === UNDERLAY_BRIDGE;
    obs.brPhy = { holdsDev: holds, mtu: br.mtu, up: !!br.flags?.includes('UP') };
  }
  if (req.datapath !== 'netdev' && !missing.includes('openvswitch-switch')) {
    const why = await ovsKernelDatapathProblem(run);
    obs.kernelDatapath = why === undefined;
    if (why) obs.kernelDatapathWhy = why;
  }
  if (req.central && running.nb && running.sb) {
    const conn = async (tool: string) => (await run.run([tool, '--timeout=5', 'get-connection'], { allowFail: true })).stdout.trim();
    obs.nbConnection = await conn('ovn-nbctl');
    obs.sbConnection = await conn('ovn-sbctl');
  }
  return obs;
}

/** This host as OVN sees it: what `up` checks on every host before any change. */
export interface HostOvnStatus {
  /** The chassis name (OVS system-id), when set. */
  chassis?: string;
  remote?: string;
  encapIp?: string;
  datapath?: string;
  running: Record<Daemon, boolean>;
  /** The encapsulations the southbound DB holds for this chassis (none: not registered). */
  sbEncaps: Array<{ type: string; ip: string }>;
  /** Why the southbound DB could not be read, when it could not. */
  sbError?: string;
  /** OVS and ovn-controller run and the SB has this chassis with a Geneve encap on its encap IP. */
  ready: boolean;
  /** What is wrong, each with what to run (empty when ready). */
  problems: string[];
}

/** Observes this host's OVS, ovn-controller and its chassis in the southbound DB (changes nothing). */
export async function hostStatus(run: CommandRunner): Promise<HostOvnStatus> {
  const running = await runningDaemons();
  const ids = running.ovsdbServer ? await externalIds(run) : {};
  const s: HostOvnStatus = { running, sbEncaps: [], ready: false, problems: [] };
  if (ids['system-id']) s.chassis = ids['system-id'];
  if (ids['ovn-remote']) s.remote = ids['ovn-remote'];
  if (ids['ovn-encap-ip']) s.encapIp = ids['ovn-encap-ip'];
  if (ids['ovn-bridge-datapath-type']) s.datapath = ids['ovn-bridge-datapath-type'];
  if (s.chassis && s.remote) {
    const r = await run.run(['ovn-sbctl', '--timeout=5', `--db=${s.remote}`, '--format=json', '--columns=type,ip', 'find', 'Encap', `chassis_name=${s.chassis}`], { allowFail: true, timeoutMs: 8000 }).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
    if (r.code === 0) s.sbEncaps = parseOvsdbJson(r.stdout).map((e) => ({ type: String(e.type), ip: String(e.ip) }));
    else s.sbError = r.stderr.trim().split('\n').pop() || `ovn-sbctl exit code ${r.code}`;
  }
  s.problems = statusProblems(s);
  s.ready = s.problems.length === 0;
  return s;
}

/** What is wrong with a host's OVN state, each with its fix (pure; empty: ready for labs). */
export function statusProblems(s: Omit<HostOvnStatus, 'problems' | 'ready'>): string[] {
  const out: string[] = [];
  const setup = '`qnet host setup --name NAME --underlay IP …`';
  if (!s.running.ovsdbServer || !s.running.ovsVswitchd) out.push(`Open vSwitch is not running (${[!s.running.ovsdbServer && 'ovsdb-server', !s.running.ovsVswitchd && 'ovs-vswitchd'].filter(Boolean).join(', ')}): run ${setup}`);
  if (!s.running.ovnController) out.push(`ovn-controller is not running: run ${setup}`);
  if (!s.chassis || !s.remote || !s.encapIp) out.push(`this host is not configured as an OVN chassis (system-id, ovn-remote, ovn-encap-ip): run ${setup}`);
  else if (s.sbError) out.push(`the southbound DB at ${s.remote} cannot be read (${s.sbError}): is the central up (\`qnet host setup --central\` there) and reachable?`);
  else if (!s.sbEncaps.some((e) => e.type === 'geneve' && e.ip === s.encapIp))
    out.push(`chassis ${s.chassis} is not registered in the southbound DB with a Geneve encap on ${s.encapIp}${s.sbEncaps.length ? ` (it has ${s.sbEncaps.map((e) => `${e.type} ${e.ip}`).join(', ')})` : ''}: ovn-controller's log is /var/log/ovn/ovn-controller.log`);
  return out;
}

async function readRecord(): Promise<HostRecord | null> {
  return JSON.parse(await readFile(hostRecordFile(), 'utf8').catch(() => 'null')) as HostRecord | null;
}

async function runSteps(run: CommandRunner, steps: SetupStep[], progress: (s: string) => void): Promise<void> {
  for (const s of steps) {
    progress(s.what);
    await run.run(s.argv, { timeoutMs: s.argv[0] === 'apt-get' ? 600000 : 60000, ...(s.env ? { env: { ...process.env, ...s.env } } : {}), allowFail: s.pid !== undefined });
    if (s.pid !== undefined && !(await waitGone(s.pid, 5000))) await stopService(s.pid);
  }
}

/**
 * Sets this host up as an OVN chassis (and central): installs what is missing, starts what is not running,
 * registers the chassis, then waits until the southbound DB has it with its encap IP. Idempotent: what is already
 * as asked is left alone.
 */
export async function runSetup(
  run: CommandRunner,
  req: HostSetupRequest,
  opts: { progress?: (s: string) => void; waitMs?: number; dryRun?: boolean } = {},
): Promise<{ datapath: Datapath; steps: SetupStep[]; status: HostOvnStatus | null; ms: number }> {
  const t0 = Date.now();
  const progress = opts.progress ?? (() => {});
  const obs = await observeHost(run, req);
  const { datapath, steps, moved } = planSetup(req, obs);
  if (opts.dryRun) return { datapath, steps, status: null, ms: Date.now() - t0 };
  const old = await readRecord();
  let keep = old?.moved;
  if (moved) {
    // What stop puts back: the interface's sysctls as they were before setup changed them.
    const sys = async (k: string) => (await readFile(`/proc/sys/net/${k.replace(/\./g, '/')}`, 'utf8').catch(() => '0')).trim();
    keep = { ...moved, arpIgnore: await sys(`ipv4.conf.${moved.dev}.arp_ignore`), disableIpv6: await sys(`ipv6.conf.${moved.dev}.disable_ipv6`) };
  }
  const record: HostRecord = { name: req.name, underlay: req.underlay, datapath, central: req.central, remote: req.remote, ...(keep ? { moved: keep } : {}) };
  // Written first: a setup that fails halfway is still stopped (and its address put back) by `qnet host stop`.
  await mkdir(path.dirname(hostRecordFile()), { recursive: true });
  await writeFile(hostRecordFile(), JSON.stringify(record, null, 2) + '\n');
  await runSteps(run, steps, progress);
  const deadline = Date.now() + (opts.waitMs ?? 15000);
  let status = await hostStatus(run);
  while (!status.ready && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    status = await hostStatus(run);
  }
  if (!status.ready) throw new RuntimeError(`host ${req.name} is set up but not ready after ${opts.waitMs ?? 15000} ms:\n  ${status.problems.join('\n  ')}`);
  return { datapath, steps, status, ms: Date.now() - t0 };
}

/** Stops every OVS and OVN daemon setup starts (whoever started them) and puts the underlay address back. */
export async function runStop(run: CommandRunner, opts: { progress?: (s: string) => void } = {}): Promise<SetupStep[]> {
  const record = await readRecord();
  const steps = planStop(await daemonPids(), record);
  await runSteps(run, steps, opts.progress ?? (() => {}));
  await rm(hostRecordFile(), { force: true });
  return steps;
}
