// `qnet doctor`: checks what the host needs and says exactly what to fix.
import { constants as fsc } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import os from 'node:os';
import type { CommandRunner } from '../host/run.js';
import { cacheRoot, guestUser, rootless } from '../dirs.js';
import { netemUsable } from '../host/kernel.js';

/**
 * One check's result. Not ok: something qnet needs is missing (doctor exits 1); not ok but `warn`: a feature some
 * labs use cannot work here (the detail names what will not work; doctor still exits 0).
 */
export interface Finding {
  check: string;
  ok: boolean;
  warn?: true;
  detail: string;
  fix?: string;
}

/** True when the findings say qnet cannot work here (a check failed that is not only a warning): exit 1. */
export function doctorFails(findings: Finding[]): boolean {
  return findings.some((f) => !f.ok && !f.warn);
}

async function readable(p: string, mode = fsc.R_OK): Promise<boolean> {
  try {
    await access(p, mode);
    return true;
  } catch {
    return false;
  }
}

/** The programs qnet runs, the UEFI firmware and Node.js: the same checks for root and for an ordinary user. */
async function toolFindings(run: CommandRunner, env?: NodeJS.ProcessEnv): Promise<Finding[]> {
  const out: Finding[] = [];
  const tool = async (name: string, argv: string[], pkg: string, re: RegExp) => {
    const r = await run.run(argv, { allowFail: true, ...(env ? { env } : {}) }).catch(() => null);
    const m = r && r.code === 0 ? re.exec(`${r.stdout}${r.stderr}`) : null;
    out.push(m ? { check: name, ok: true, detail: m[0] } : { check: name, ok: false, detail: 'not found', fix: `apt-get install ${pkg} (or npm run setup)` });
  };
  await tool('qemu', ['qemu-system-x86_64', '--version'], 'qemu-system-x86', /version [\d.]+/);
  await tool('iproute2', ['ip', '-V'], 'iproute2', /iproute2[-\w.]*/);
  await tool('nftables', ['nft', '--version'], 'nftables', /v[\d.]+/);
  await tool('dnsmasq', ['dnsmasq', '--version'], 'dnsmasq-base', /version [\d.]+/);
  await tool('util-linux (nsenter, unshare, setpriv)', ['setpriv', '--version'], 'util-linux', /[\d.]+/);
  await tool('busybox (static)', ['busybox'], 'busybox-static', /BusyBox v[\d.]+/);
  await tool('cpio', ['cpio', '--version'], 'cpio', /[\d.]+/);
  // Image nodes and `qnet image create debian`.
  await tool('qemu-img (image nodes)', ['qemu-img', '--version'], 'qemu-utils', /version [\d.]+/);
  await tool('xorriso (cloud-init seeds)', ['xorriso', '-version'], 'xorriso', /xorriso [\d.]+/);
  await tool('ssh, ssh-keygen (qnet ssh, lab keys)', ['ssh', '-V'], 'openssh-client', /OpenSSH_[\w.]+/);
  await tool('socat (VNC on a host port)', ['socat', '-V'], 'socat', /socat version [\d.]+/);
  await tool('tcpdump (qnet capture)', ['tcpdump', '--version'], 'tcpdump', /tcpdump version [\d.]+/);
  await tool('graphviz (qnet graph --format svg)', ['dot', '-V'], 'graphviz', /graphviz version [\d.]+/);
  await tool('mmdebstrap (qnet image create)', ['mmdebstrap', '--version'], 'mmdebstrap', /mmdebstrap [\d.]+/);
  const ovmf = await readable('/usr/share/OVMF/OVMF_CODE_4M.fd');
  out.push(
    ovmf
      ? { check: 'OVMF (firmware: uefi)', ok: true, detail: '/usr/share/OVMF/OVMF_CODE_4M.fd' }
      : { check: 'OVMF (firmware: uefi)', ok: false, warn: true, detail: 'not installed: image nodes with firmware: uefi cannot start', fix: 'apt-get install ovmf' },
  );
  const major = Number(process.versions.node.split('.')[0]);
  out.push({ check: 'node', ok: major >= 20, detail: process.version, ...(major >= 20 ? {} : { fix: 'install Node.js 20 or newer' }) });
  return out;
}

/**
 * Runs every check; none changes anything on the host. Run by an ordinary user, the checks are those of rootless
 * labs (doctor-rootless.ts): what root's doctor tries in a namespace of its own, a user cannot.
 */
export async function doctor(run: CommandRunner): Promise<Finding[]> {
  if (rootless()) {
    const { gatherRootlessFacts, rootlessFindings, rootlessPath } = await import('./doctor-rootless.js');
    const [head, ...rest] = rootlessFindings(await gatherRootlessFacts(run));
    // nft, dnsmasq and tc are in /usr/sbin, often not on a user's PATH: found there as qnet will run them.
    return [head!, ...(await toolFindings(run, { ...process.env, PATH: rootlessPath() })), ...rest];
  }
  const out = await toolFindings(run);
  out.push({
    check: 'root',
    ok: process.getuid?.() === 0,
    detail: process.getuid?.() === 0 ? 'running as root' : 'not root',
    ...(process.getuid?.() === 0 ? {} : { fix: 'run qnet as root (it makes namespaces, links and firewall tables)' }),
  });
  const tun = await readable('/dev/net/tun', fsc.F_OK);
  out.push({ check: '/dev/net/tun', ok: tun, detail: tun ? 'present' : 'missing', ...(tun ? {} : { fix: 'modprobe tun' }) });
  const passwd = await readFile('/etc/passwd', 'utf8');
  const user = guestUser();
  const hasUser = passwd.split('\n').some((l) => l.startsWith(`${user}:`));
  out.push({
    check: `guest user ${user}`,
    ok: hasUser,
    detail: hasUser ? 'exists' : 'missing',
    ...(hasUser ? {} : { fix: `useradd --system --no-create-home --shell /usr/sbin/nologin ${user}` }),
  });
  // Kernel features, tried in a throwaway namespace that is removed at once.
  const ns = `qnet-doctor-${process.pid}`;
  const nsOk = (await run.run(['ip', 'netns', 'add', ns], { allowFail: true })).code === 0;
  if (nsOk) {
    const br = (await run.run(['ip', '-n', ns, 'link', 'add', 'name', 'br0', 'type', 'bridge'], { allowFail: true })).code === 0;
    const veth = (await run.run(['ip', '-n', ns, 'link', 'add', 'name', 'a', 'type', 'veth', 'peer', 'name', 'b'], { allowFail: true })).code === 0;
    const nftBridge =
      (await run.run(['ip', 'netns', 'exec', ns, 'nft', 'add', 'table', 'bridge', 't'], { allowFail: true }).catch(() => ({ code: 1 }))).code === 0;
    // Impairments: tbf on a veth, an ifb (what a guest sends is impaired on one); netem as `impair` and `up` ask.
    const tc = async (args: string) => (await run.run(['ip', 'netns', 'exec', ns, 'tc', ...args.split(' ')], { allowFail: true }).catch(() => ({ code: 1 }))).code === 0;
    const netem = await netemUsable(run).catch(() => false);
    const tbf = veth && (await tc('qdisc replace dev b root handle 1: tbf rate 1mbit burst 3200b limit 6400b'));
    const ifb = (await run.run(['ip', '-n', ns, 'link', 'add', 'name', 'i', 'type', 'ifb'], { allowFail: true })).code === 0;
    // VLAN-aware networks (the bridge's VLAN filtering), and link networks (an ingress redirect from tap to tap).
    const vlans = (await run.run(['ip', '-n', ns, 'link', 'add', 'name', 'v0', 'type', 'bridge', 'vlan_filtering', '1'], { allowFail: true })).code === 0;
    const mirred = veth && (await tc('qdisc add dev a handle ffff: ingress')) && (await tc('filter add dev a parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev b'));
    await run.run(['ip', 'netns', 'delete', ns], { allowFail: true });
    out.push({ check: 'network namespaces', ok: true, detail: 'usable' });
    out.push({ check: 'bridges', ok: br, detail: br ? 'usable' : 'cannot create', ...(br ? {} : { fix: 'modprobe bridge' }) });
    out.push({ check: 'veth', ok: veth, detail: veth ? 'usable' : 'cannot create', ...(veth ? {} : { fix: 'modprobe veth' }) });
    // Optional (warnings): only labs with impairments, VLANs or links need them, and `up` and `impair` refuse those
    // with the reason before changing anything.
    const lacking = [
      netem ? '' : 'netem (sch_netem): delay, jitter, loss, duplicate and corrupt cannot be set',
      tbf ? '' : 'tbf (sch_tbf): rate cannot be set',
      ifb ? '' : 'ifb: what a guest sends (direction egress or both) cannot be impaired',
    ].filter(Boolean);
    const modules = [netem ? '' : 'sch_netem', tbf ? '' : 'sch_tbf', ifb ? '' : 'ifb'].filter(Boolean);
    out.push(
      lacking.length
        ? { check: 'impairments (tc)', ok: false, warn: true, detail: `this kernel lacks ${lacking.join('; ')}`, fix: `modprobe ${modules.join(' ')}, or use a distribution kernel, which has ${modules.length > 1 ? 'them' : 'it'}` }
        : { check: 'impairments (tc)', ok: true, detail: 'netem, tbf and ifb usable' },
    );
    out.push(
      vlans
        ? { check: 'VLANs (bridge VLAN filtering)', ok: true, detail: 'usable' }
        : {
            check: 'VLANs (bridge VLAN filtering)',
            ok: false,
            warn: true,
            detail: 'this kernel has no bridge VLAN filtering: networks with "vlans" cannot be made here',
            fix: 'a kernel with CONFIG_BRIDGE_VLAN_FILTERING and CONFIG_VLAN_8021Q (every Debian and Ubuntu kernel has them)',
          },
    );
    out.push(
      mirred
        ? { check: 'links (tc ingress, u32, mirred)', ok: true, detail: 'usable' }
        : { check: 'links (tc ingress, u32, mirred)', ok: false, warn: true, detail: 'this kernel lacks the ingress qdisc, u32 or mirred: link networks cannot be made here', fix: 'modprobe sch_ingress cls_u32 act_mirred' },
    );
    out.push({ check: 'nftables bridge family', ok: nftBridge, detail: nftBridge ? 'usable' : 'not available', ...(nftBridge ? {} : { fix: 'modprobe nf_tables nft_bridge (anti-spoofing needs it)' }) });
  } else out.push({ check: 'network namespaces', ok: false, detail: 'cannot create', fix: 'run as root on a kernel with network namespaces' });
  // Acceleration: the device alone proves nothing; the cached probe says whether a guest really booted.
  const kvm = await readable('/dev/kvm', fsc.F_OK);
  let kvmDetail = kvm ? '/dev/kvm present, not probed yet (the first `qnet up` probes it)' : 'no /dev/kvm: guests run under TCG (slower)';
  try {
    const probe = JSON.parse(await readFile(`${cacheRoot()}/accel.json`, 'utf8')) as { kvm: boolean; probedAt: string };
    kvmDetail = probe.kvm ? `a guest booted under KVM (probed ${probe.probedAt})` : `/dev/kvm exists but a probe guest did not boot under it (probed ${probe.probedAt}): guests run under TCG`;
  } catch {
    // no probe yet
  }
  out.push({ check: 'acceleration', ok: true, detail: kvmDetail });
  // Forward policies of other firewalls that would drop lab traffic leaving through the uplink.
  const rules = await run.run(['nft', 'list', 'ruleset'], { allowFail: true }).catch(() => null);
  const text = rules?.stdout ?? '';
  const dropForward = [...text.matchAll(/table (\w+) (\S+) \{[\s\S]*?chain (\S+) \{\s*type filter hook forward priority [^;]+; policy drop;/g)].map((m) => `${m[1]} ${m[2]} chain ${m[3]}`);
  const docker = /chain DOCKER/.test(text);
  // With br_netfilter's call-iptables on, frames crossing a bridge (a bridged network's host bridge) meet them too.
  const brnf = (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').catch(() => '0')).trim() === '1';
  out.push({
    check: 'forwarding policy',
    ok: dropForward.length === 0,
    detail: dropForward.length ? `forward policy drop in ${dropForward.join(', ')}${docker ? ' (Docker)' : ''}` : 'no forward chain drops by policy',
    ...(dropForward.length
      ? {
          fix:
            'nat and routed labs need forwarding through their uplink: allow it there, e.g. `iptables -I DOCKER-USER -i qn+ -j ACCEPT; iptables -I DOCKER-USER -o qn+ -j ACCEPT` for Docker, or a firewalld zone accepting qn+ interfaces' +
            (brnf ? '; br_netfilter is on (bridge-nf-call-iptables=1), so bridged networks need the same for qb+ (or `sysctl net.bridge.bridge-nf-call-iptables=0`)' : ''),
        }
      : {}),
  });
  const firewalld = (await run.run(['systemctl', 'is-active', 'firewalld'], { allowFail: true }).catch(() => null))?.stdout.trim() === 'active';
  if (firewalld) out.push({ check: 'firewalld', ok: false, detail: 'active', fix: 'put the qn+ interfaces in a zone that forwards (firewall-cmd --zone=trusted --add-interface=qnXXXXXXXX)' });
  // Open vSwitch and OVN: only labs on OVN need them, so their rows inform or warn and never fail doctor.
  const { gatherOvnFacts, ovnFindings } = await import('./doctor-ovn.js');
  out.push(...ovnFindings(await gatherOvnFacts(run)));
  out.push({ check: 'machine', ok: true, detail: `${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, kernel ${os.release()}` });
  return out;
}
