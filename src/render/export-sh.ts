// Pure rendering of a lab as plain shell scripts in the seed's spirit: ifup (namespace, bridges, taps, the uplink,
// the host's firewall table and forwarding, dnsmasq), start (one QEMU command per guest), ifdown (stop everything,
// remove everything), plus each guest's and each dnsmasq's configuration. What they make is what `qnet up` makes,
// rendered by the same functions (the lines `qnet up --dry-run` prints, one command each), with the same ownership
// markers: `qnet status` sees an exported lab, and `qnet down` removes it as well as ifdown.sh does.
import path from 'node:path';
import { labImpairments, NETEM_HINT, nicImpairment } from './impair.js';
import { fdbLines, linkLines, usesVlans, VLAN_HINT, vlanLines } from './l2.js';
import { bridgeMac, fixedHostSide, IPV6_OFF, renderLinkBatch, tapMaster } from './ipbatch.js';
import { describeImpairment } from '../topology/impair.js';
import { shellQuote } from './shell.js';
import type { ResolvedLab } from '../topology/model.js';
import { hasBridge, usesUplink } from '../topology/model.js';
import { renderGuestConfig, renderRouterRuleset } from './guest-config.js';
import { ENV_KIND, ENV_LAB, ENV_NODE, ENV_SERVICE, ownerMarker, uplinkTable } from './markers.js';
import { nodeFiles, renderGuestCommand, type Accel, type GuestImage } from './qemu.js';
import { formatCidr, formatIPv4, networkOf } from '../topology/ipv4.js';
import { needsGuard, renderGuardRuleset } from './guard.js';
import { dnsmasqFiles, renderDnsmasqConf, renderDnsmasqHosts } from './dnsmasq.js';
import {
  needsUplink,
  renderHostRuleset,
  renderUplinkHostBatch,
  renderUplinkLabBatch,
  renderUplinkRoutes,
  UPLINK_LAB_IF,
  uplinkHostIf,
  type UplinkAddressing,
} from './uplink.js';

export interface ShellExportOptions {
  /** The built-in guest's kernel and initrd where they are now (qnet's cache): copied into the export. */
  image: GuestImage;
  accel: Accel;
  /** The lab's own uid and gid, which its taps and QEMU processes get (as `qnet up` gives them). */
  ids: { uid: number; gid: number };
  /** The user dnsmasq drops to (qnet's unprivileged user). */
  dnsUser: string;
  /** Absolute directory the scripts will live in (sockets, configurations and the guest's files go below it). */
  dir: string;
  /** The uplink's /30 (labs with nat or routed networks), chosen free on this host as `qnet up` chooses it. */
  uplink?: UplinkAddressing;
  /** qnet's ledger of who turned the host's IPv4 forwarding on (shared with qnet's own labs). */
  ledger: string;
}

/** What an export consists of: files to write, and files to copy in (relative path -> where it is now). */
export interface ShellExport {
  files: Record<string, string>;
  copies: Record<string, string>;
}

/** Where the copied kernel and initrd live in an export (relative to its directory). */
export const BOOT_FILES = { kernel: 'boot/vmlinux', initrd: 'boot/initrd.img' } as const;

const SYSCTL = '/proc/sys/net/ipv4/ip_forward';

const header = (lab: string, what: string, errexit = true) =>
  `#!/bin/sh\n# ${what} for lab ${lab}, exported by \`qnet export ${lab} --format sh\`. Run as root.\nset -${errexit ? 'eu' : 'u'}\n`;

/** A batch line (`ip -batch`, `bridge -batch`, `tc -batch`) as one command after `prefix`, each word quoted for sh. */
function command(prefix: string, line: string): string {
  return `${prefix} ${line.trim().split(/\s+/).map(shellQuote).join(' ')}`;
}

/** A here-document feeding `text` to `cmd` unchanged (nothing in it is expanded by sh). */
function heredoc(cmd: string, text: string): string {
  return `${cmd} <<'EOF'\n${text.endsWith('\n') ? text : `${text}\n`}EOF`;
}

/** The argv quoted for sh, one QEMU option (with its value) a line after the wrapper. */
function breakLines(argv: string[]): string {
  const q = argv.indexOf('--', argv.indexOf('setpriv'));
  const head = argv.slice(0, q + 2).map(shellQuote).join(' ');
  const parts: string[] = [];
  for (const a of argv.slice(q + 2)) {
    if (a.startsWith('-') || !parts.length) parts.push(shellQuote(a));
    else parts[parts.length - 1] += ` ${shellQuote(a)}`;
  }
  return [head, ...parts].join(' \\\n  ');
}

/**
 * sh that lists the pids of live processes carrying the lab's marker in their environment (guests and dnsmasq),
 * as `qnet down` finds them. A zombie has no environment left, so it is not listed.
 */
function labPidsFunction(lab: string): string {
  return `lab_pids() { grep -lxz ${shellQuote(`${ENV_LAB}=${lab}`)} /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }`;
}

/**
 * sh that records the lab's need of IPv4 forwarding on the host and turns it on, in qnet's own ledger (the same
 * file and format as host/forwarding.ts): forwarding that was on for the host's own reasons (on, no ledger) is left
 * as it is; otherwise the lab joins the ledger, and the last lab to leave it (qnet's or an export's) restores the
 * value from before.
 */
export function forwardingClaim(lab: string, ledger: string, sysctl = SYSCTL): string {
  const l = shellQuote(ledger);
  return [
    `if [ -f ${l} ]; then`,
    `  grep -q '[[,]"${lab}"[],]' ${l} || sed -i 's/"labs":\\[/&"${lab}",/; s/,]/]/' ${l}`,
    `  echo 1 > ${sysctl}`,
    `elif [ "$(cat ${sysctl})" != 1 ]; then`,
    `  mkdir -p -m 711 ${shellQuote(path.dirname(ledger))}`,
    `  printf '{"was":"%s","labs":["${lab}"]}\\n' "$(cat ${sysctl})" > ${l}`,
    `  echo 1 > ${sysctl}`,
    'fi',
  ].join('\n');
}

/** sh that drops the lab from qnet's forwarding ledger; the last one out restores forwarding's value from before. */
export function forwardingRelease(lab: string, ledger: string, sysctl = SYSCTL): string {
  const l = shellQuote(ledger);
  return [
    `if [ -f ${l} ] && grep -q '[[,]"${lab}"[],]' ${l}; then`,
    `  sed -i 's/\\([[,]\\)"${lab}",/\\1/; s/\\([[,]\\)"${lab}"]/\\1]/; s/,]/]/' ${l}`,
    `  if grep -q '"labs":\\[]' ${l}; then`,
    `    sed -n 's/.*"was":"\\([^"]*\\)".*/\\1/p' ${l} > ${sysctl}`,
    `    rm -f ${l}`,
    '  fi',
    'fi',
  ].join('\n');
}

/** Comments that say what each group of the link batch makes, keyed by the batch line they go above. */
function linkBatchComments(lab: ResolvedLab, uid: number): Map<string, string> {
  const c = new Map<string, string>();
  for (const net of lab.networks.filter((n) => hasBridge(n))) {
    const side = fixedHostSide(net)
      ? `; host side ${formatCidr(net.address!)} with MAC ${bridgeMac(lab.name, net.name)}, which the guests are told (no ARP needed)`
      : net.address
        ? `; host side ${formatCidr(net.address)}`
        : '';
    c.set(`link add name ${net.bridge} `, `# ${net.name}: the L2 switch${net.vlans ? ', VLAN-aware' : ''}${side}`);
  }
  for (const node of lab.nodes)
    for (const nic of node.nics.filter((n) => n.kind === 'bridge')) {
      const master = tapMaster(lab, nic.network);
      c.set(`tuntap add dev ${nic.tap} `, `# ${node.name} eth${nic.index}: a tap owned by the lab's uid ${uid}, ${master ? `a port of ${master}` : `one end of link ${nic.network}`}`);
    }
  const firstUp = lab.networks.find((n) => hasBridge(n));
  if (firstUp) c.set(`link set dev ${firstUp.bridge} up`, '# the bridges up, once their ports are in');
  c.set('link set dev lo ', "# the namespace's loopback: up, and marked as the lab's");
  c.set('neigh replace ', "# the host side knows each guest's static address without ARP, as each guest knows the host side's");
  c.set('link add name qi', "# ifb devices: what an impaired NIC's guest sends passes through one (traffic control below)");
  return c;
}

/** The scripts and files of a shell export, by file name relative to the export directory. */
export function renderShellExport(lab: ResolvedLab, o: ShellExportOptions): ShellExport {
  const ns = lab.netns;
  const mark = ownerMarker(lab.name);
  const d = (rel: string) => path.join(o.dir, rel);
  const uplink = needsUplink(lab);
  if (uplink && !o.uplink) throw new Error('renderShellExport: a lab with nat or routed networks needs o.uplink');
  const dhcpNets = lab.networks.filter((n) => n.dhcp);
  const hostIf = uplinkHostIf(lab.name);
  const files: Record<string, string> = {};
  const copies: Record<string, string> = { [BOOT_FILES.kernel]: o.image.kernel, [BOOT_FILES.initrd]: o.image.initrd };
  const image: GuestImage = { kernel: d(BOOT_FILES.kernel), initrd: d(BOOT_FILES.initrd), cmdline: o.image.cmdline };

  // ifup.sh: checks first (nothing made yet), then the network as `qnet up` makes it, in its order.
  const tools = ['ip', ...(needsGuard(lab) || uplink ? ['nft'] : []), ...(dhcpNets.length ? ['dnsmasq'] : [])];
  const ifup: string[] = [
    header(lab.name, `ifup: the namespace, bridges and taps${uplink ? ", the uplink, the host's firewall table and forwarding" : ''}${dhcpNets.length ? ', dnsmasq' : ''}`),
    `cd ${shellQuote(o.dir)}`,
    '[ "$(id -u)" = 0 ] || { echo "ifup.sh: run it as root" >&2; exit 1; }',
    `for c in ${tools.join(' ')}; do command -v "$c" >/dev/null || { echo "ifup.sh: $c is not installed" >&2; exit 1; }; done`,
    `if [ -e /run/netns/${ns} ]; then echo "ifup.sh: namespace ${ns} exists: lab ${lab.name} is up already (ifdown.sh, or qnet down ${lab.name}, removes it)" >&2; exit 1; fi`,
  ];
  if (dhcpNets.length)
    ifup.push(`id -u ${shellQuote(o.dnsUser)} >/dev/null 2>&1 || { echo "ifup.sh: user ${o.dnsUser} does not exist; dnsmasq runs as it: useradd --system --no-create-home --shell /usr/sbin/nologin ${o.dnsUser}" >&2; exit 1; }`);
  if (usesVlans(lab))
    ifup.push(
      '',
      '# VLAN-aware bridges need the kernel\'s VLAN filtering: tried in a throwaway namespace, as `qnet up` does',
      'probe=qnet-probe-$$',
      'if ! { ip netns add "$probe" && ip -n "$probe" link add name v0 type bridge vlan_filtering 1; } 2>/dev/null; then',
      '  ip netns delete "$probe" 2>/dev/null',
      `  echo ${shellQuote(`ifup.sh: this kernel cannot make a bridge VLAN-aware: nothing was made. ${VLAN_HINT}`)} >&2`,
      '  exit 1',
      'fi',
      'ip netns delete "$probe"',
    );
  if (uplink) {
    const up = o.uplink!;
    const nets = [`${formatIPv4(up.net)}/30`, ...lab.networks.filter(usesUplink).map((n) => formatCidr({ ip: networkOf(n.subnet!), prefix: n.subnet!.prefix }))];
    ifup.push(
      '',
      '# The uplink /30 (chosen free when this was exported) and the nat and routed subnets must be free on this host,',
      '# as `qnet up` requires: an address in them or a route to them (other than the default) would clash.',
      `for net in ${nets.join(' ')}; do`,
      '  clash=$(ip -o -4 addr show to "$net"; ip -4 route show table main root "$net"; ip -4 route show table main match "$net" | grep -v "^default" || true)',
      `  [ -z "$clash" ] || { printf 'ifup.sh: this host already has %s, which overlaps %s (another lab? qnet status); nothing was made (export again here to choose another uplink)\\n' "$clash" "$net" >&2; exit 1; }`,
      'done',
    );
  }
  ifup.push(
    '',
    `ip netns add ${ns}`,
    '# From here on, a failure undoes everything made so far (ifdown.sh) and says where it failed.',
    'at=start; hint=',
    `trap 'rc=$?; [ $rc = 0 ] || { echo "ifup.sh failed at: $at\${hint:+ ($hint)}; undoing it (ifdown.sh)" >&2; sh ./ifdown.sh >&2; }' EXIT`,
    '',
    '# IPv6 off in the namespace, as qnet up does: its bridges and taps send no router solicitations of their own',
    command(`ip netns exec ${ns}`, IPV6_OFF.join(' ')),
    'at="the bridges and taps"',
  );
  const comments = linkBatchComments(lab, o.ids.uid);
  for (const line of renderLinkBatch(lab, String(o.ids.uid)).trimEnd().split('\n')) {
    const note = [...comments].find(([k]) => line.startsWith(k));
    if (note) {
      ifup.push('', note[1]);
      comments.delete(note[0]);
    }
    ifup.push(command(`ip -n ${ns}`, line));
  }
  // VLANs of the VLAN-aware networks' ports, the guests' MACs on their ports, the transparent links.
  const vlans = vlanLines(lab, lab.networks, lab.nodes);
  if (vlans.length) ifup.push('', '# VLANs: access ports untagged in their VLAN, trunks tagged (native untagged), the host side "self"', ...vlans.map((l) => command(`ip netns exec ${ns} bridge`, l)));
  const fdb = fdbLines(lab, lab.nodes);
  if (fdb.length) ifup.push('', "# each guest's MAC tied to its bridge port: a silent guest's first frames are not flooded to every port", ...fdb.map((l) => command(`ip netns exec ${ns} bridge`, l)));
  const links = linkLines(lab, lab.nodes).tc;
  if (links.length) ifup.push('', 'at="the links"', '# links: everything each end sends leaves by the other end (tc mirred)', ...links.map((l) => command(`ip netns exec ${ns} tc`, l)));
  // Impaired NICs: the same traffic control as `qnet up` (their ifb devices are in the batch above).
  const impaired = labImpairments(lab).nics;
  if (impaired.length) ifup.push('', `at="the impairments"; hint=${shellQuote(NETEM_HINT)}`);
  for (const { node, nic } of impaired) {
    const r = nicImpairment(lab.name, node.name, nic, nic.impair!);
    ifup.push(`# ${node.name} eth${nic.index}: ${describeImpairment(nic.impair!)}`, ...r.tc.map((l) => command(`ip netns exec ${ns} tc`, l)));
  }
  if (impaired.length) ifup.push('hint=');
  if (needsGuard(lab))
    ifup.push('', 'at="the guard rules"', '# anti-spoofing and the DHCP guard on the bridges (a table in the lab namespace: it goes with it)', heredoc(`ip netns exec ${ns} nft -f -`, renderGuardRuleset(lab)));
  if (uplink) {
    const up = o.uplink!;
    ifup.push(
      '',
      'at="the uplink"',
      `# the uplink: veth ${hostIf} (host, ${formatIPv4(up.net + 1)}) <-> ${UPLINK_LAB_IF} (lab, ${formatIPv4(up.net + 2)}), marked; routes to the nat and routed subnets go with it`,
      ...renderUplinkHostBatch(lab, up).trimEnd().split('\n').map((l) => command('ip', l)),
      ...renderUplinkLabBatch(lab, up).trimEnd().split('\n').map((l) => command(`ip -n ${ns}`, l)),
      ...renderUplinkRoutes(lab, up).trimEnd().split('\n').map((l) => command('ip', l)),
      `ip netns exec ${ns} sysctl -qw net.ipv4.ip_forward=1`,
      '',
      '# IPv4 forwarding on the host, in qnet\'s ledger: on if it was off, and off again when the last lab that needed it goes',
      forwardingClaim(lab.name, o.ledger),
      '',
      `at="the host firewall table ip ${uplinkTable(lab.name)}"`,
      '# forwarding to and from the uplink, masquerade of the nat subnets, the port forwards (one nft transaction)',
      heredoc('nft -f -', renderHostRuleset(lab)),
    );
  }
  if (dhcpNets.length) {
    ifup.push('', 'at=dnsmasq', `# dnsmasq: DHCP and DNS on each such network's bridge only, as user ${o.dnsUser}, marked; its files in dnsmasq/`);
    ifup.push(`chown ${shellQuote(`${o.dnsUser}:`)} dnsmasq && chmod 700 dnsmasq`, 'rm -f dnsmasq/*.leases dnsmasq/*.pid');
    files['dnsmasq/hosts'] = renderDnsmasqHosts(lab);
    for (const net of dhcpNets) {
      const f = { ...dnsmasqFiles(d('dnsmasq'), net.name), hosts: d('dnsmasq/hosts') };
      files[`dnsmasq/${net.name}.conf`] = renderDnsmasqConf(lab, net, f, o.dnsUser);
      // Its own daemon mode: it returns once it serves (or with its error), having written its pid.
      ifup.push(
        `${ENV_LAB}=${lab.name} ${ENV_SERVICE}=dnsmasq:${net.name} nsenter --net=/run/netns/${ns} -- dnsmasq ${shellQuote(`--conf-file=${f.conf}`)} ${shellQuote(`--pid-file=${d(`dnsmasq/${net.name}.pid`)}`)}`,
      );
    }
  }
  ifup.push('', 'trap - EXIT', `echo "lab ${lab.name}: network up in namespace ${ns}; start.sh starts the guests"`);

  // start.sh: the guests, each as the lab's uid in the namespace, then a wait until each says it is configured.
  const start: string[] = [
    header(lab.name, 'start: the guests (QEMU as the lab\'s own unprivileged uid, seccomp on)'),
    `cd ${shellQuote(o.dir)}`,
    `[ -e /run/netns/${ns} ] || { echo "start.sh: namespace ${ns} does not exist: run ifup.sh first" >&2; exit 1; }`,
    labPidsFunction(lab.name),
    `for p in $(lab_pids); do if grep -qz '^${ENV_NODE}=' /proc/$p/environ 2>/dev/null; then echo "start.sh: guests of lab ${lab.name} are running already (ifdown.sh stops them)" >&2; exit 1; fi; done`,
    '# A failure stops the guests this script started (the network stays: ifdown.sh removes it).',
    `trap 'rc=$?; [ $rc = 0 ] || for n in ${lab.nodes.map((n) => shellQuote(n.name)).join(' ')}; do [ -f "$n/qemu.pid" ] && kill "$(cat "$n/qemu.pid")" 2>/dev/null; rm -f "$n/qemu.pid"; done' EXIT`,
  ];
  for (const node of lab.nodes) {
    const nf = nodeFiles(d(node.name));
    files[`${node.name}/guest.conf`] = renderGuestConfig(lab, node);
    if (node.router) files[`${node.name}/router.nft`] = renderRouterRuleset(lab, node);
    const argv = renderGuestCommand({ node, files: nf, image, accel: o.accel, netns: ns, user: String(o.ids.uid), group: String(o.ids.gid) });
    const q = shellQuote(node.name);
    start.push(
      '',
      `# ${node.name}: ${node.memory} MiB, ${node.nics.length} NIC(s); console: socat - UNIX-CONNECT:${nf.console}`,
      `chown ${o.ids.uid}:${o.ids.gid} ${q} && chmod 700 ${q} && rm -f ${q}/*.sock ${q}/console.log`,
      `${ENV_LAB}=${lab.name} ${ENV_NODE}=${node.name} ${ENV_KIND}=builtin ${breakLines(argv)} \\\n  > ${shellQuote(nf.log)} 2>&1 &`,
      `echo $! > ${q}/qemu.pid`,
    );
  }
  start.push(
    '',
    '# Wait until every guest has configured itself: it says READY (or ERROR) on its console; at most 120 s, as qnet.',
    `for n in ${lab.nodes.map((n) => shellQuote(n.name)).join(' ')}; do`,
    '  i=0',
    '  until grep -q "qnet: READY" "$n/console.log" 2>/dev/null; do',
    '    if grep -q "qnet: ERROR" "$n/console.log" 2>/dev/null; then echo "start.sh: $n: $(tr -d \'\\r\' < "$n/console.log" | grep "qnet: ERROR" | head -n 1)" >&2; exit 1; fi',
    '    kill -0 "$(cat "$n/qemu.pid")" 2>/dev/null || { echo "start.sh: $n: QEMU exited:" >&2; tail -n 5 "$n/qemu.log" >&2; exit 1; }',
    '    [ $i -lt 1200 ] || { echo "start.sh: $n is not configured after 120 s (see $n/console.log)" >&2; exit 1; }',
    '    i=$((i+1)); sleep 0.1',
    '  done',
    'done',
    'trap - EXIT',
    `echo "started ${lab.nodes.length} guest(s), each configured; their consoles are ${o.dir}/NODE/console.sock"`,
  );

  // ifdown.sh: everything of the lab, found by its markers (as `qnet down` finds it), whatever ifup.sh got to.
  const ifdown: string[] = [
    header(lab.name, `ifdown: stop the guests${dhcpNets.length ? ' and dnsmasq' : ''}, remove the namespace${uplink ? ", the uplink and the host's firewall table" : ''}`, false),
    `cd ${shellQuote(o.dir)}`,
    labPidsFunction(lab.name),
    `# The lab's processes (guests${dhcpNets.length ? ' and dnsmasq' : ''}) by their marker: SIGTERM, up to 5 s to go, then SIGKILL.`,
    'pids=$(lab_pids)',
    'if [ -n "$pids" ]; then',
    '  kill $pids 2>/dev/null',
    '  i=0; while [ -n "$(lab_pids)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done',
    '  pids=$(lab_pids); [ -z "$pids" ] || kill -9 $pids 2>/dev/null',
    'fi',
  ];
  if (uplink)
    ifdown.push(
      `# The host's firewall table and the uplink veth (its routes go with it), each only if it carries the lab's marker.`,
      `nft list table ip ${uplinkTable(lab.name)} 2>/dev/null | grep -q 'comment "${mark}"' && nft delete table ip ${uplinkTable(lab.name)}`,
      `[ "$(cat /sys/class/net/${hostIf}/ifalias 2>/dev/null)" = ${mark} ] && ip link delete ${hostIf}`,
      forwardingRelease(lab.name, o.ledger),
    );
  ifdown.push(
    '# The namespace, and every link in it, if it is the lab\'s (its loopback carries the marker, or it is empty).',
    `if [ -e /run/netns/${ns} ]; then`,
    `  if [ "$(ip netns exec ${ns} cat /sys/class/net/lo/ifalias 2>/dev/null)" = ${mark} ] || [ "$(ip -n ${ns} -o link show | wc -l)" -le 1 ]; then`,
    `    ip netns delete ${ns}`,
    `  else echo "ifdown.sh: namespace ${ns} does not carry lab ${lab.name}'s marker; left alone" >&2; fi`,
    'fi',
    `rm -f ${lab.nodes.map((n) => `${shellQuote(n.name)}/qemu.pid ${shellQuote(n.name)}/*.sock`).join(' ')}${dhcpNets.length ? ' dnsmasq/*.pid dnsmasq/*.leases' : ''}`,
    `echo "lab ${lab.name} removed"`,
    'exit 0',
  );
  files['ifup.sh'] = ifup.join('\n') + '\n';
  files['start.sh'] = start.join('\n') + '\n';
  files['ifdown.sh'] = ifdown.join('\n') + '\n';
  return { files, copies };
}
