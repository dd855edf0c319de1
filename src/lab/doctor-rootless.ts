// `qnet doctor` run by an ordinary user: what this host lacks for rootless labs (a user namespace per lab), each
// with the one command an administrator runs to fix it. The facts are gathered by reading files and by probes in
// throwaway user namespaces (nothing on the host changes); what they mean is a pure function, tested with made-up
// hosts (an Ubuntu 24.04 with its AppArmor restriction, a host without udev, a stock one).
import { constants as fsc } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandRunner } from '../host/run.js';
import { processDirsInput, resolveDir } from '../dirs.js';
import type { Finding } from './doctor.js';

/** A device node as this user finds it. */
export interface DeviceFacts {
  exists: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Its group's name (absent: no name for the gid). */
  group?: string;
  /** This process may open it read-write (mode, group or ACL). */
  rw: boolean;
  /** The user is a member of its group in /etc/group. */
  member?: boolean;
  /** This process has its group now (a membership added since the login is not there yet). */
  inGroup?: boolean;
}

/** The kernel features qnet's labs use, as tried in a throwaway user and network namespace. */
export const FEATURES = ['bridge', 'veth', 'nftables', 'nft-bridge', 'masquerade', 'netem', 'tbf', 'ifb', 'vlans', 'mirred'] as const;
export type Feature = (typeof FEATURES)[number];

/** A probe's outcome: its exit code and what it said. */
export interface ProbeResult {
  code: number;
  stderr: string;
}

/** Everything the rootless checks look at: read or probed by `gatherRootlessFacts`, made up in tests. */
export interface RootlessFacts {
  uid: number;
  user: string;
  /** The runtime, state and cache directories, or why the runtime one is refused. */
  dirs: { run?: string; runError?: string; state: string; cache: string };
  /** /proc/sys values, absent where the file does not exist. */
  sysctl: { unprivilegedUsernsClone?: string; maxUserNamespaces?: string; apparmorRestrict?: string; unprivilegedPortStart?: string };
  /** `unshare -Urn true`: a user namespace with this user as its root can be made (null: no unshare). */
  userns: ProbeResult | null;
  /** `unshare -Urn ip link set lo up`: that root may configure its own network namespace (not powerless). */
  usernsCaps: ProbeResult | null;
  /** Where unshare is (the AppArmor profile names it). */
  unsharePath: string;
  newuidmap?: string;
  newgidmap?: string;
  /** The user's ranges in /etc/subuid and /etc/subgid ("100000:65536"), empty when none. */
  subuid: string[];
  subgid: string[];
  tun: DeviceFacts;
  kvm: DeviceFacts;
  /** Versions of the user-mode uplinks found (absent: not installed). */
  pasta?: string;
  slirp4netns?: string;
  /** Each feature tried in a throwaway namespace (null: it could not be tried, no user namespace). */
  features: Record<Feature, boolean> | null;
  /** Modules loaded now and built in; null when this kernel cannot load modules at all (no /proc/modules). */
  modules: { loaded: string[]; builtin: string[] } | null;
}

const PERSIST_SYSCTL = (setting: string) => `echo '${setting}' > /etc/sysctl.d/60-qnet-rootless.conf && sysctl -p /etc/sysctl.d/60-qnet-rootless.conf`;
/** systemd's own rule for the tun device (50-udev-default.rules), which stock distributions ship. */
const TUN_RULE = 'KERNEL=="tun", MODE="0666", OPTIONS+="static_node=net/tun"';

/** Which modules each feature needs (the names `modprobe` takes). */
const MODULES: Record<Feature | 'tun', string[]> = {
  tun: ['tun'],
  bridge: ['bridge'],
  veth: ['veth'],
  nftables: ['nf_tables'],
  'nft-bridge': ['nf_tables'],
  masquerade: ['nft_chain_nat', 'nft_masq'],
  netem: ['sch_netem'],
  tbf: ['sch_tbf'],
  ifb: ['ifb'],
  vlans: [],
  mirred: ['sch_ingress', 'cls_u32', 'act_mirred'],
};

/** The kernel options behind each feature (what a kernel that loads no modules must have built in). */
const CONFIG: Record<Feature | 'tun', string[]> = {
  tun: ['TUN'],
  bridge: ['BRIDGE'],
  veth: ['VETH'],
  nftables: ['NF_TABLES'],
  'nft-bridge': ['NF_TABLES_BRIDGE'],
  masquerade: ['NFT_NAT', 'NFT_MASQ'],
  netem: ['NET_SCH_NETEM'],
  tbf: ['NET_SCH_TBF'],
  ifb: ['IFB'],
  vlans: ['BRIDGE_VLAN_FILTERING'],
  mirred: ['NET_SCH_INGRESS', 'NET_CLS_U32', 'NET_ACT_MIRRED'],
};

const octal = (m: number | undefined) => (m === undefined ? '?' : (m & 0o7777).toString(8).padStart(4, '0'));
const owner = (d: DeviceFacts) => `${d.uid === 0 ? 'root' : d.uid}:${d.group ?? d.gid}`;

/** The findings of a rootless doctor for these facts (pure). */
export function rootlessFindings(f: RootlessFacts): Finding[] {
  const out: Finding[] = [];
  out.push({
    check: 'rootless',
    ok: true,
    detail: `running as ${f.user} (uid ${f.uid}), not root: these checks are for rootless labs (one user namespace per lab). \`qnet up\` makes your labs there, each kept by a holder process of yours (what needs the host's own namespace is refused: run that as root)`,
  });
  out.push(
    f.dirs.run
      ? { check: 'directories (XDG)', ok: true, detail: `runtime ${f.dirs.run}, state ${f.dirs.state}, cache ${f.dirs.cache}` }
      : { check: 'directories (XDG)', ok: false, detail: f.dirs.runError ?? 'no runtime directory', fix: `run qnet from a login session (pam_systemd makes /run/user/${f.uid}), or as root: install -d -m 0700 -o ${f.uid} /run/user/${f.uid}, then export XDG_RUNTIME_DIR=/run/user/${f.uid}` },
  );
  out.push(...usernsFindings(f));
  out.push(subidFinding(f));
  out.push(tunFinding(f));
  out.push(kvmFinding(f));
  out.push(uplinkFinding(f));
  const start = Number(f.sysctl.unprivilegedPortStart ?? '1024');
  out.push({ check: 'host ports for forwards', ok: true, detail: `an ordinary user listens on ports ${start} and up (net.ipv4.ip_unprivileged_port_start); a forward below is refused` });
  out.push(...moduleFindings(f));
  return out;
}

function usernsFindings(f: RootlessFacts): Finding[] {
  const out: Finding[] = [];
  const made = f.userns?.code === 0;
  const powered = made && f.usernsCaps?.code === 0;
  if (f.sysctl.unprivilegedUsernsClone !== undefined) {
    const on = f.sysctl.unprivilegedUsernsClone.trim() === '1';
    out.push({
      check: 'kernel.unprivileged_userns_clone',
      ok: on,
      detail: on ? '1: ordinary users may make user namespaces' : `${f.sysctl.unprivilegedUsernsClone.trim()}: ordinary users may not make user namespaces (Debian 10's default; 11 and later turn it on)`,
      ...(on ? {} : { fix: PERSIST_SYSCTL('kernel.unprivileged_userns_clone=1') }),
    });
  }
  if (f.sysctl.maxUserNamespaces !== undefined) {
    const n = Number(f.sysctl.maxUserNamespaces.trim());
    out.push({
      check: 'user.max_user_namespaces',
      ok: n > 0,
      detail: n > 0 ? `${n}: qnet needs one per lab` : '0: user namespaces are turned off for everyone',
      ...(n > 0 ? {} : { fix: PERSIST_SYSCTL('user.max_user_namespaces=65536') }),
    });
  }
  if (f.sysctl.apparmorRestrict !== undefined) {
    const on = f.sysctl.apparmorRestrict.trim() === '1';
    const profile =
      `printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile qnet-unshare ${f.unsharePath} flags=(unconfined) {\\n  userns,\\n}\\n' > /etc/apparmor.d/qnet-unshare && apparmor_parser -r /etc/apparmor.d/qnet-unshare`;
    out.push({
      check: 'AppArmor userns restriction',
      // On, but unshare's namespaces keep their capabilities: a profile already allows it.
      ok: !on || powered,
      detail: !on
        ? 'kernel.apparmor_restrict_unprivileged_userns is 0: user namespaces keep their capabilities'
        : powered
          ? `kernel.apparmor_restrict_unprivileged_userns is 1, but ${f.unsharePath} may make user namespaces with capabilities (a profile allows it)`
          : `kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10 and later): a user namespace made by an unconfined program has no capabilities, so a lab could not make its bridges. qnet makes each lab's user namespace with ${f.unsharePath}, which needs an AppArmor profile allowing \`userns\` (pasta, which joins it, too: Ubuntu's passt package lacks its profile, LP 2077158)`,
      ...(!on || powered
        ? {}
        : { fix: `${profile} (lets ${f.unsharePath} make user namespaces for every user; the host-wide alternative: ${PERSIST_SYSCTL('kernel.apparmor_restrict_unprivileged_userns=0')})` }),
    });
  }
  const why = (r: ProbeResult | null) => (r ? r.stderr.trim().split('\n').slice(-1)[0] || `exit code ${r.code}` : 'unshare not found');
  const blamed = out.some((x) => !x.ok);
  out.push({
    check: 'user namespaces (unshare -Urn)',
    ok: powered,
    detail: powered
      ? 'a user namespace with you as its root, and a network namespace it may configure: usable'
      : made
        ? `made, but its root may not configure its network namespace (ip link set lo up: ${why(f.usernsCaps)})`
        : `cannot be made: ${why(f.userns)}`,
    ...(powered
      ? {}
      : { fix: f.userns === null ? 'apt-get install util-linux (unshare)' : blamed ? 'the fix above' : 'a kernel with user namespaces (CONFIG_USER_NS): every Debian, Ubuntu and Fedora kernel has them' }),
  });
  return out;
}

function subidFinding(f: RootlessFacts): Finding {
  const have = [
    f.newuidmap ? `newuidmap ${f.newuidmap}` : 'no newuidmap',
    f.newgidmap ? `newgidmap ${f.newgidmap}` : 'no newgidmap',
    f.subuid.length ? `/etc/subuid ${f.subuid.join(', ')}` : 'no /etc/subuid range',
    f.subgid.length ? `/etc/subgid ${f.subgid.join(', ')}` : 'no /etc/subgid range',
  ];
  return {
    check: 'newuidmap, /etc/subuid, /etc/subgid',
    ok: true,
    detail:
      `optional: your own uid (root of the lab's user namespace: unshare --map-root-user) is enough for ` +
      `bridges, taps, nftables, dnsmasq (run as you) and QEMU (its capabilities dropped); with newuidmap, newgidmap and a range of each, qnet maps them too, which \`qnet capture\` needs (tcpdump changes its groups). Found: ${have.join('; ')}`,
  };
}

function tunFinding(f: RootlessFacts): Finding {
  const t = f.tun;
  const check = '/dev/net/tun';
  if (!t.exists) return { check, ok: false, detail: 'missing: no taps, pasta or slirp4netns', fix: `modprobe tun && echo tun > /etc/modules-load.d/qnet-tun.conf` };
  if (t.rw) return { check, ok: true, detail: `mode ${octal(t.mode)} ${owner(t)}: you may open it (taps, pasta, slirp4netns)` };
  return {
    check,
    ok: false,
    detail: `mode ${octal(t.mode)} ${owner(t)}: you cannot open it, so a lab can make no tap and pasta and slirp4netns cannot start. Stock distributions make it 0666 (systemd's udev rule); hosts without udev (containers, minimal VMs) keep 0600`,
    fix: `chmod 0666 /dev/net/tun && echo '${TUN_RULE}' > /etc/udev/rules.d/60-qnet-tun.rules (the rule keeps it 0666 after a reboot)`,
  };
}

function kvmFinding(f: RootlessFacts): Finding {
  const k = f.kvm;
  const check = '/dev/kvm';
  if (!k.exists) return { check, ok: true, detail: 'absent: guests run under TCG (slower)' };
  const group = k.group && k.gid !== 0 ? k.group : undefined;
  const how = k.inGroup && group ? `through group ${group}, which you are in` : (k.mode ?? 0) & 0o006 ? `mode ${octal(k.mode)}` : 'an ACL or your uid';
  if (k.rw) return { check, ok: true, detail: `mode ${octal(k.mode)} ${owner(k)}: you may use it (${how}); the first \`qnet up\` probes whether a guest really boots under KVM` };
  const fix = group
    ? `usermod -aG ${group} ${f.user} (then log in again)`
    : `groupadd -f -r kvm && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm && usermod -aG kvm ${f.user} && echo 'KERNEL=="kvm", GROUP="kvm", MODE="0660"' > /etc/udev/rules.d/60-qnet-kvm.rules (then log in again)`;
  return {
    check,
    ok: false,
    warn: true,
    detail: k.member && !k.inGroup
      ? `mode ${octal(k.mode)} ${owner(k)}: you were added to group ${group} after you logged in, so you cannot use it yet: guests would run under TCG (slower)`
      : `mode ${octal(k.mode)} ${owner(k)}: you cannot use it${group ? ` (not in group ${group})` : ''}: guests would run under TCG (slower)`,
    fix: k.member && !k.inGroup ? 'log in again (or `newgrp kvm`)' : fix,
  };
}

function uplinkFinding(f: RootlessFacts): Finding {
  const check = 'user-mode uplink (pasta, slirp4netns)';
  if (f.pasta)
    return {
      check,
      ok: true,
      detail: `pasta (${f.pasta}) will carry nat networks and forwards${f.slirp4netns ? `; slirp4netns (${f.slirp4netns}) is found too, but pasta is preferred` : ''}: forwards from the host are spliced sockets (host to lab 10.6 Gbit/s against slirp4netns' 5.8, measured) and it is Podman's default`,
    };
  if (f.slirp4netns)
    return { check, ok: true, detail: `slirp4netns (${f.slirp4netns}) will carry nat networks and forwards, because pasta is not installed (pasta is preferred: host to lab 10.6 Gbit/s against 5.8, measured; \`apt-get install passt\`)` };
  return { check, ok: false, warn: true, detail: 'neither pasta nor slirp4netns: a rootless lab\'s nat networks and forwards cannot reach the host (bridge, isolated, socket and user-mode NICs do not need them)', fix: 'apt-get install passt (pasta; or slirp4netns)' };
}

function moduleFindings(f: RootlessFacts): Finding[] {
  const out: Finding[] = [];
  const has = (m: string) => !f.modules || f.modules.loaded.includes(m) || f.modules.builtin.includes(m);
  // What to run for features that do not work: modprobe of the modules not there; a kernel without modules needs
  // another kernel (a user can never load one, and neither can root there).
  const fixFor = (features: Array<Feature | 'tun'>) => {
    const mods = [...new Set(features.flatMap((x) => MODULES[x]))].filter((m) => !has(m));
    const configs = [...new Set(features.flatMap((x) => CONFIG[x]))].map((c) => `CONFIG_${c}`).join(', ');
    if (!f.modules) return { mods, fix: `this kernel cannot load modules: a kernel with ${configs} (every Debian and Ubuntu kernel has them, as modules)` };
    if (!mods.length) return { mods, fix: `a kernel with ${configs} (every Debian and Ubuntu kernel has them)` };
    return { mods, fix: `modprobe -a ${mods.join(' ')} && printf '${mods.join('\\n')}\\n' > /etc/modules-load.d/qnet.conf (a user cannot load modules; the file loads them at boot)` };
  };
  const state = (mods: string[]) => (!f.modules ? 'this kernel cannot load modules' : `not loaded: ${mods.join(', ')}`);
  const feat = f.features;
  const required: Array<Feature | 'tun'> = ['bridge', 'veth', 'nftables', 'nft-bridge', 'masquerade'];
  // tun: its device is there once the module is; the device's mode is checked above.
  const broken: Array<Feature | 'tun'> = [...(f.tun.exists ? [] : (['tun'] as const)), ...(feat ? required.filter((x) => !feat[x as Feature]) : required.filter((x) => MODULES[x].some((m) => !has(m))))];
  const names = 'tun, bridge, veth, nf_tables (and its bridge family, masquerade)';
  if (!broken.length)
    out.push({ check: 'kernel modules', ok: true, detail: `${names}: ${feat ? 'usable in a user namespace' : 'loaded'}${f.modules ? '' : ' (built in: this kernel loads no modules)'}` });
  else {
    const { mods, fix } = fixFor(broken);
    out.push({ check: 'kernel modules', ok: false, detail: `${broken.join(', ')}: ${feat ? 'not usable in a user namespace' : 'not probed (no user namespace)'}; ${state(mods)}`, fix });
  }
  // Optional: impairments, VLANs and links (warnings, as root's doctor says them).
  const opt = (check: string, features: Feature[], what: string, say: (bad: Feature[]) => string = (bad) => bad.join(', ')) => {
    const bad = feat ? features.filter((x) => !feat[x]) : features.filter((x) => MODULES[x].some((m) => !has(m)));
    if (!bad.length) return void out.push({ check, ok: true, detail: feat ? 'usable in a user namespace' : 'loaded' });
    const { mods, fix } = fixFor(bad);
    out.push({ check, ok: false, warn: true, detail: `${what.replace('%', say(bad))}${mods.length ? ` (${state(mods)})` : ''}`, fix });
  };
  const lacks: Partial<Record<Feature, string>> = {
    netem: 'netem (sch_netem): delay, jitter, loss, duplicate and corrupt cannot be set',
    tbf: 'tbf (sch_tbf): rate cannot be set',
    ifb: 'ifb: what a guest sends (direction egress or both) cannot be impaired',
  };
  opt('impairments (tc)', ['netem', 'tbf', 'ifb'], `this kernel lacks, in a user namespace, %`, (bad) => bad.map((x) => lacks[x]).join('; '));
  opt('VLANs (bridge VLAN filtering)', ['vlans'], 'this kernel has no bridge VLAN filtering: networks with "vlans" cannot be made here');
  opt('links (tc ingress, u32, mirred)', ['mirred'], 'this kernel lacks the ingress qdisc, u32 or mirred: link networks cannot be made here');
  return out;
}

// The probe script: each feature that works prints its name. Run as root of a throwaway user and network namespace,
// which go when it exits (nothing to remove). tbf and mirred need the veth pair.
const PROBE = [
  'ip link add name br0 type bridge && echo bridge',
  'ip link add name a type veth peer name b && echo veth',
  'nft add table inet qnetprobe && echo nftables',
  'nft add table bridge qnetprobe && echo nft-bridge',
  "nft add table ip qnetnat && nft add chain ip qnetnat p '{ type nat hook postrouting priority 100; }' && nft add rule ip qnetnat p masquerade && echo masquerade",
  'tc qdisc add dev lo root netem delay 1ms && echo netem',
  'tc qdisc replace dev b root handle 1: tbf rate 1mbit burst 3200b limit 6400b && echo tbf',
  'ip link add name i type ifb && echo ifb',
  'ip link add name v0 type bridge vlan_filtering 1 && echo vlans',
  'tc qdisc add dev a handle ffff: ingress && tc filter add dev a parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev b && echo mirred',
].join('\n');

/** Where a program is on PATH (and in /usr/sbin and /sbin, often not on a user's PATH), or undefined. */
async function which(name: string, pathVar: string): Promise<string | undefined> {
  for (const dir of pathVar.split(':').filter(Boolean)) {
    const p = path.join(dir, name);
    if (await access(p, fsc.X_OK).then(() => true, () => false)) return p;
  }
  return undefined;
}

/** PATH with the system directories a user's PATH often lacks (nft, dnsmasq and tc live there). */
export function rootlessPath(env: NodeJS.ProcessEnv = process.env): string {
  const have = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':');
  return [...have, ...['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => !have.includes(d))].join(':');
}

async function device(p: string, groups: Map<number, { name: string; members: string[] }>, user: string): Promise<DeviceFacts> {
  const s = await stat(p).catch(() => null);
  if (!s) return { exists: false, rw: false };
  const g = groups.get(s.gid);
  return {
    exists: true,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    ...(g ? { group: g.name } : {}),
    rw: await access(p, fsc.R_OK | fsc.W_OK).then(() => true, () => false),
    member: !!g?.members.includes(user),
    inGroup: process.getgroups?.().includes(s.gid) ?? false,
  };
}

/** Reads and probes what the rootless checks need; changes nothing (the probes' namespaces go with them). */
export async function gatherRootlessFacts(run: CommandRunner): Promise<RootlessFacts> {
  const uid = process.geteuid?.() ?? 0;
  const user = os.userInfo().username;
  const input = processDirsInput();
  let runDir: string | undefined;
  let runError: string | undefined;
  try {
    runDir = resolveDir('run', input);
  } catch (e) {
    runError = (e as Error).message;
  }
  const sys = (p: string) => readFile(`/proc/sys/${p}`, 'utf8').then((t) => t.trim(), () => undefined);
  const [unprivilegedUsernsClone, maxUserNamespaces, apparmorRestrict, unprivilegedPortStart] = await Promise.all([
    sys('kernel/unprivileged_userns_clone'),
    sys('user/max_user_namespaces'),
    sys('kernel/apparmor_restrict_unprivileged_userns'),
    sys('net/ipv4/ip_unprivileged_port_start'),
  ]);
  const PATH = rootlessPath();
  const env = { ...process.env, PATH };
  const unsharePath = (await which('unshare', PATH)) ?? '/usr/bin/unshare';
  const probe = async (argv: string[]): Promise<ProbeResult | null> => {
    const r = await run.run(argv, { allowFail: true, env, timeoutMs: 20000 }).catch(() => null);
    return r ? { code: r.code, stderr: r.stderr } : null;
  };
  const userns = await probe(['unshare', '--user', '--map-root-user', '--net', '--', 'true']);
  const usernsCaps = userns?.code === 0 ? await probe(['unshare', '--user', '--map-root-user', '--net', '--', 'ip', 'link', 'set', 'lo', 'up']) : null;
  let features: Record<Feature, boolean> | null = null;
  if (usernsCaps?.code === 0) {
    const r = await run.run(['unshare', '--user', '--map-root-user', '--net', '--', 'sh', '-c', PROBE], { allowFail: true, env, timeoutMs: 30000 }).catch(() => null);
    const said = new Set((r?.stdout ?? '').split('\n').map((l) => l.trim()));
    features = Object.fromEntries(FEATURES.map((x) => [x, said.has(x)])) as Record<Feature, boolean>;
  }
  const ranges = async (file: string) =>
    (await readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .map((l) => l.split(':'))
      .filter((p) => p.length === 3 && (p[0] === user || p[0] === String(uid)))
      .map((p) => `${p[1]}:${p[2]}`);
  const groups = new Map<number, { name: string; members: string[] }>();
  for (const l of (await readFile('/etc/group', 'utf8').catch(() => '')).split('\n')) {
    const [name, , gid, members] = l.split(':');
    if (name && gid) groups.set(Number(gid), { name, members: (members ?? '').split(',').filter(Boolean) });
  }
  const version = async (argv: string[], re: RegExp) => {
    const r = await run.run(argv, { allowFail: true, env, timeoutMs: 10000 }).catch(() => null);
    return r?.code === 0 ? re.exec(`${r.stdout}${r.stderr}`)?.[0] : undefined;
  };
  const procModules = await readFile('/proc/modules', 'utf8').catch(() => null);
  const builtin = await readFile(`/lib/modules/${os.release()}/modules.builtin`, 'utf8').catch(() => '');
  const newuidmap = await which('newuidmap', PATH);
  const newgidmap = await which('newgidmap', PATH);
  const pasta = await version(['pasta', '--version'], /pasta \S+/);
  const slirp4netns = await version(['slirp4netns', '--version'], /slirp4netns version \S+/);
  return {
    uid,
    user,
    dirs: { ...(runDir ? { run: runDir } : {}), ...(runError ? { runError } : {}), state: resolveDir('state', input), cache: resolveDir('cache', input) },
    sysctl: {
      ...(unprivilegedUsernsClone !== undefined ? { unprivilegedUsernsClone } : {}),
      ...(maxUserNamespaces !== undefined ? { maxUserNamespaces } : {}),
      ...(apparmorRestrict !== undefined ? { apparmorRestrict } : {}),
      ...(unprivilegedPortStart !== undefined ? { unprivilegedPortStart } : {}),
    },
    userns,
    usernsCaps,
    unsharePath,
    ...(newuidmap ? { newuidmap } : {}),
    ...(newgidmap ? { newgidmap } : {}),
    subuid: await ranges('/etc/subuid'),
    subgid: await ranges('/etc/subgid'),
    tun: await device('/dev/net/tun', groups, user),
    kvm: await device('/dev/kvm', groups, user),
    ...(pasta ? { pasta } : {}),
    ...(slirp4netns ? { slirp4netns } : {}),
    features,
    modules: procModules === null ? null : { loaded: procModules.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean), builtin: builtin.split('\n').map((l) => path.basename(l, '.ko')).filter(Boolean) },
  };
}
