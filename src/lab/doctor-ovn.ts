// `qnet doctor` as root: Open vSwitch and OVN, which only labs on OVN (`fabric: ovn`, `hosts:`) need. Installed,
// running, this chassis registered, the datapath: each a row that informs or warns, never one that fails doctor.
import type { CommandRunner } from '../host/run.js';
import type { Finding } from './doctor.js';
import type { Daemon, HostOvnStatus } from '../host/ovn-setup.js';

/** What doctor observed of OVS and OVN here (observing changes nothing but a throwaway namespace of the probe). */
export interface OvnFacts {
  /** `ovs-vsctl --version`'s version; undefined: Open vSwitch is not installed. */
  ovs?: string;
  /** `ovn-controller --version`'s version; undefined: ovn-host is not installed. */
  ovn?: string;
  /** ovn-northd is installed (ovn-central: this machine can be the central). */
  northd: boolean;
  running: Record<Daemon, boolean>;
  /** This host as `qnet host status` sees it (when Open vSwitch is installed). */
  status?: HostOvnStatus;
  /** The kernel datapath can carry OVN (probed when Open vSwitch is installed), and why not when it cannot. */
  kernelDatapath?: boolean;
  kernelDatapathWhy?: string;
}

const SETUP = '`qnet host setup --name NAME --underlay IP [--underlay-dev DEV] --central` (or `--remote CENTRAL` on other hosts)';
const WHAT = 'labs on OVN (`fabric: ovn`, `hosts:`)';

/** The rows for Open vSwitch and OVN (pure): ok or a warning, so a machine without them still passes doctor. */
export function ovnFindings(f: OvnFacts): Finding[] {
  const warn = (check: string, detail: string, fix: string): Finding => ({ check, ok: false, warn: true, detail, fix });
  const out: Finding[] = [];
  const ovsCheck = 'Open vSwitch (labs on OVN)';
  if (!f.ovs) return [warn(ovsCheck, `not installed: ${WHAT} cannot run here; other labs do not need it`, `${SETUP} installs openvswitch-switch, ovn-host and ovn-central and starts them`)];
  const ovsDown = [!f.running.ovsdbServer && 'ovsdb-server', !f.running.ovsVswitchd && 'ovs-vswitchd'].filter(Boolean);
  out.push(
    ovsDown.length
      ? warn(ovsCheck, `${f.ovs} installed, ${ovsDown.join(' and ')} not running: ${WHAT} cannot start`, `${SETUP} starts it`)
      : { check: ovsCheck, ok: true, detail: `${f.ovs}: ovsdb-server and ovs-vswitchd running` },
  );
  const inUse = f.status?.datapath === 'netdev' ? 'in use: userspace (netdev)' : f.status?.datapath === 'system' ? 'in use: kernel' : 'none in use yet';
  const modules =
    f.kernelDatapath === undefined
      ? ''
      : f.kernelDatapath
        ? 'the kernel datapath works (openvswitch with conntrack zones, geneve): setup picks it'
        : `${f.kernelDatapathWhy ?? 'no openvswitch or geneve kernel module'}: setup picks the userspace datapath (netdev: no module needed, slower, QEMU opens taps without the virtio-net header)`;
  out.push({ check: 'OVS datapath', ok: true, detail: [inUse, modules].filter(Boolean).join('; ') });
  const ovnCheck = 'OVN (labs on OVN)';
  if (!f.ovn) {
    out.push(warn(ovnCheck, `ovn-controller not installed: ${WHAT} cannot run here`, `${SETUP} installs ovn-host`));
    return out;
  }
  const central = [f.running.nb && 'northbound DB', f.running.sb && 'southbound DB', f.running.northd && 'ovn-northd'].filter(Boolean) as string[];
  const centralText = central.length === 3 ? '; the central runs here (northbound and southbound DBs, ovn-northd)' : central.length ? `; only part of a central runs here (${central.join(', ')})` : f.northd ? '' : '; no ovn-central package (another host is the central)';
  const s = f.status;
  if (s?.ready) out.push({ check: ovnCheck, ok: true, detail: `${f.ovn}: ovn-controller running, chassis ${s.chassis} registered with Geneve on ${s.encapIp}${centralText}` });
  else {
    // What the Open vSwitch row says already, and each problem's own fix (the setup line below), are left out.
    const problems = f.running.ovnController ? (s?.problems ?? []).filter((p) => !p.startsWith('Open vSwitch')).map((p) => p.replace(/: run `qnet host setup.*$/, '')) : ['ovn-controller not running'];
    out.push(warn(ovnCheck, `${f.ovn} installed, ${problems.join('; ') || 'not registered'}: ${WHAT} cannot start${centralText}`, SETUP));
  }
  // Part of a central (a database or ovn-northd stopped) is a warning even where the chassis is ready.
  if (central.length > 0 && central.length < 3 && out.at(-1)!.ok) out[out.length - 1] = { ...out.at(-1)!, ok: false, warn: true, detail: `${out.at(-1)!.detail}: labs with their central here cannot start`, fix: `${SETUP}: run again, it starts what is missing` };
  return out;
}

/** Observes Open vSwitch and OVN here for doctor (root). */
export async function gatherOvnFacts(run: CommandRunner): Promise<OvnFacts> {
  const version = async (argv: string[], re: RegExp) => {
    const r = await run.run(argv, { allowFail: true, timeoutMs: 5000 }).catch(() => null);
    return r && r.code === 0 ? re.exec(r.stdout)?.[0] : undefined;
  };
  const ovs = await version(['ovs-vsctl', '--version'], /Open vSwitch\)? [\d.]+/);
  const ovn = await version(['ovn-controller', '--version'], /ovn-controller [\d.]+/);
  const northd = (await version(['ovn-northd', '--version'], /ovn-northd [\d.]+/)) !== undefined;
  const { runningDaemons, hostStatus } = await import('../host/ovn-setup.js');
  const f: OvnFacts = { northd, running: await runningDaemons() };
  if (ovs) f.ovs = ovs.replace(/^Open vSwitch\)?/, 'Open vSwitch');
  if (ovn) f.ovn = ovn.replace('ovn-controller', 'OVN');
  if (ovs) {
    f.status = await hostStatus(run);
    const { ovsKernelDatapathProblem } = await import('../host/kernel.js');
    const why = await ovsKernelDatapathProblem(run);
    f.kernelDatapath = why === undefined;
    if (why) f.kernelDatapathWhy = why;
  }
  return f;
}
