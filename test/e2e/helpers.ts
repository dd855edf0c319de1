// Shared helpers for end-to-end tests: the real CLI, temp topologies, and a host snapshot to prove nothing is left.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { findMarkedProcesses } from '../../src/qemu/process.js';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const QNET = path.join(ROOT, 'bin', 'qnet.js');

/** A lab name unique to this test run (labs of concurrent runs never collide). */
export function labName(base: string): string {
  return `${base}-${process.pid.toString(36)}`.slice(0, 24);
}

// Directories the topologies were written to (tests may put more beside them, such as an image copy): all removed
// when the test process exits, so a run leaves nothing in /tmp.
const written: string[] = [];
process.once('exit', () => {
  for (const d of written) rmSync(d, { recursive: true, force: true });
});

/** Writes a topology object as YAML to a temp file (removed when the test process exits) and returns its path. */
export function writeTopology(topo: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-'));
  written.push(dir);
  const file = path.join(dir, 'lab.yaml');
  writeFileSync(file, stringify(topo));
  return file;
}

/** Runs the real CLI to completion. */
export function qnet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [QNET, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface HostSnapshot {
  netns: string[];
  links: string[];
  nftTables: string[];
  routes: string[];
  guests: string[];
  runDirs: string[];
  /** Kept disks (QNET_STATE_DIR) and what image builds may leave: loop devices, mounts. */
  stateDirs: string[];
  loops: string[];
  mounts: string[];
  ipForward: string;
  /** Daemons of simulated hosts and OVS/OVN (whoever started them), as `comm:pid`; zombies aside. */
  daemons: string[];
}

/** The daemons a multi-host test may leave behind. */
const DAEMONS = new Set(['ovsdb-server', 'ovs-vswitchd', 'ovn-controller', 'ovn-northd', 'sshd']);

function daemons(): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      if (DAEMONS.has(comm) && !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8'))) out.push(`${comm}:${p}`);
    } catch {
      // gone meanwhile
    }
  }
  return out.sort();
}

function lines(argv: string[]): string[] {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
}

/** What exists on the host that a lab could leave behind. */
export async function snapshot(): Promise<HostSnapshot> {
  const runRoot = process.env.QNET_RUN_DIR ?? '/run/qnet';
  const stateRoot = process.env.QNET_STATE_DIR ?? '/var/lib/qnet';
  return {
    netns: lines(['ip', 'netns', 'list']).map((l) => l.split(' ')[0]!).sort(),
    links: lines(['ip', '-o', 'link', 'show']).map((l) => l.split(':')[1]!.trim().split('@')[0]!).sort(),
    nftTables: lines(['nft', 'list', 'tables']).sort(),
    routes: lines(['ip', 'route', 'show', 'table', 'all']).sort(),
    guests: (await findMarkedProcesses()).map((p) => `${p.lab}/${p.node ?? p.service}:${p.pid}`).sort(),
    runDirs: existsSync(runRoot) ? readdirSync(runRoot).sort() : [],
    stateDirs: existsSync(stateRoot) ? readdirSync(stateRoot).sort() : [],
    loops: lines(['losetup', '--noheadings', '--list', '--output', 'NAME,BACK-FILE']).sort(),
    mounts: readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => / \/(var\/cache|run|var\/lib)\/qnet/.test(l)).sort(),
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    daemons: daemons(),
  };
}

/** Resolves once `file` contains `text` (watching the file; bounded by `timeoutMs`). */
export async function waitForText(file: string, text: string, timeoutMs: number): Promise<void> {
  const { readFileSync, watch } = await import('node:fs');
  const has = () => {
    try {
      return readFileSync(file, 'utf8').includes(text);
    } catch {
      return false;
    }
  };
  if (has()) return;
  await new Promise<void>((resolve, reject) => {
    const dir = path.dirname(file);
    const w = watch(dir, () => {
      if (has()) finish();
    });
    // The watch covers appends; a slow fallback check covers file systems that miss events.
    const iv = setInterval(() => has() && finish(), 500);
    const t = setTimeout(() => {
      w.close();
      clearInterval(iv);
      reject(new Error(`${file} did not show "${text}" within ${timeoutMs} ms`));
    }, timeoutMs);
    function finish() {
      w.close();
      clearInterval(iv);
      clearTimeout(t);
      resolve();
    }
  });
}

/** Runs argv and returns its output (no shell); throws with stderr when it fails and `check` is set. */
export function sh(argv: string[], check = true): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30000 });
  if (check && r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * A simulated upstream ("the internet") made by the test: a namespace joined to the host by a veth, with an
 * HTTP server that reports every client's address. Only addresses in 198.18.0.0/15 (benchmark range) are used.
 */
export async function makeUpstream(tag: string, octet: number): Promise<{ ns: string; hostIp: string; ip: string; peers: string[]; stop: () => void }> {
  const ns = `up-${tag}`;
  const veth = `vu${tag}`.slice(0, 15);
  const hostIp = `198.18.${octet}.1`;
  const ip = `198.18.${octet}.2`;
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh(['ip', 'addr', 'add', `${hostIp}/24`, 'dev', veth]);
  sh(['ip', 'link', 'set', veth, 'up']);
  sh(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', ns, 'route', 'add', 'default', 'via', hostIp]);
  const server = path.join(ROOT, 'dist', 'src', 'lab', 'demo-server.js');
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, server, '8000', 'upstream', ip], { stdio: ['ignore', 'pipe', 'inherit'] });
  const peers: string[] = [];
  await new Promise<void>((resolve) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const m of buf.matchAll(/^peer (\S+)/gm)) if (!peers.includes(m[1]!)) peers.push(m[1]!.replace(/^::ffff:/, ''));
      if (buf.includes('listening')) resolve();
    });
  });
  return {
    ns,
    hostIp,
    ip,
    peers,
    stop: () => {
      child.kill('SIGTERM');
      spawnSync('ip', ['netns', 'delete', ns]);
      spawnSync('ip', ['link', 'delete', veth]);
    },
  };
}

/** The state of a host interface that a lab must give back exactly: addresses, routes (all tables), master, MAC. */
export function ifaceState(dev: string): { addrs: string[]; routes: string[]; master: string; mac: string } {
  const link = JSON.parse(sh(['ip', '-j', 'link', 'show', 'dev', dev]).stdout) as Array<{ master?: string; address: string }>;
  const addrs = (JSON.parse(sh(['ip', '-j', 'addr', 'show', 'dev', dev]).stdout) as Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>)[0]!
    .addr_info.map((a) => `${a.family} ${a.local}/${a.prefixlen}`)
    .sort();
  const routes = sh(['ip', 'route', 'show', 'table', 'all', 'dev', dev]).stdout.split('\n').filter(Boolean).sort();
  return { addrs, routes, master: link[0]?.master ?? '', mac: link[0]?.address ?? '' };
}

/**
 * A simulated LAN made by the test: a namespace with a router address (.1), a DHCP server (dnsmasq, range
 * .100-.150, router and DNS option .1), an HTTP server on .1:8000 that reports each client's address, and a veth
 * whose host end is the "uplink" (with the host's LAN address .2, a route through the router in the main table and
 * a default route through it in a table of its own, so the machine's real default route is never touched).
 * With `accessPoint`, the LAN end behaves like a Wi-Fi access point that knows one client: it drops every frame
 * whose source MAC is not the uplink's, and delivers unicast only to the uplink's MAC.
 */
export async function makeLan(
  tag: string,
  octet: number,
  opts: { accessPoint?: boolean } = {},
): Promise<{ ns: string; uplink: string; mac: string; router: string; hostIp: string; table: string; leases: string; peers: string[]; dhcpLog: () => string; stop: () => void }> {
  const ns = `lan-${tag}`;
  const uplink = `vl${tag}`.slice(0, 15);
  const mac = `02:1a:${octet.toString(16).padStart(2, '0')}:00:00:02`;
  const router = `198.18.${octet}.1`;
  const hostIp = `198.18.${octet}.2`;
  const table = String(31000 + octet);
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', 'link', 'add', 'name', uplink, 'address', mac, 'type', 'veth', 'peer', 'name', 'ap0', 'netns', ns]);
  sh(['ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
  sh(['ip', '-n', ns, 'addr', 'add', `${router}/24`, 'dev', 'ap0']);
  sh(['ip', '-n', ns, 'link', 'set', 'dev', 'ap0', 'up']);
  if (opts.accessPoint)
    sh(['sh', '-c', `ip netns exec ${ns} nft -f - <<'N'
table netdev ap {
  chain from_client { type filter hook ingress device "ap0" priority 0; policy accept; ether saddr != ${mac} counter drop; }
  chain to_client { type filter hook egress device "ap0" priority 0; policy accept; ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 ether daddr != ${mac} counter drop; }
}
N`]);
  sh(['ip', 'addr', 'add', `${hostIp}/24`, 'dev', uplink]);
  sh(['ip', 'link', 'set', 'dev', uplink, 'up']);
  // The uplink's IPv6 link-local is tentative for a moment (duplicate detection): let it settle, so that "before"
  // and "after" compare the same state.
  for (let i = 0; i < 50 && sh(['ip', '-6', 'addr', 'show', 'dev', uplink, 'tentative']).stdout.trim(); i++) sh(['sleep', '0.1']);
  sh(['ip', 'route', 'add', `198.19.${octet}.0/24`, 'via', router, 'dev', uplink]);
  sh(['ip', 'route', 'add', 'default', 'via', router, 'dev', uplink, 'table', table]);
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-lan-'));
  const leases = path.join(dir, 'leases');
  const dnsmasq = spawn(
    'ip',
    [
      'netns', 'exec', ns, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--interface=ap0', '--bind-interfaces', '--port=0',
      `--dhcp-range=198.18.${octet}.100,198.18.${octet}.150,1h`, `--dhcp-option=option:router,${router}`, `--dhcp-leasefile=${leases}`,
      `--pid-file=${path.join(dir, 'pid')}`, '--log-dhcp', '--log-facility=-', '--user=root',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let dhcpLog = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`LAN dnsmasq did not start: ${dhcpLog}`)), 10000);
    dnsmasq.stderr!.on('data', (d: Buffer) => {
      dhcpLog += d.toString();
      const buf = dhcpLog;
      if (buf.includes('DHCP, IP range')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const server = path.join(ROOT, 'dist', 'src', 'lab', 'demo-server.js');
  const http = spawn('ip', ['netns', 'exec', ns, process.execPath, server, '8000', 'lan-server', router], { stdio: ['ignore', 'pipe', 'inherit'] });
  const peers: string[] = [];
  await new Promise<void>((resolve) => {
    let buf = '';
    http.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const m of buf.matchAll(/^peer (\S+)/gm)) if (!peers.includes(m[1]!)) peers.push(m[1]!.replace(/^::ffff:/, ''));
      if (buf.includes('listening')) resolve();
    });
  });
  return {
    ns,
    uplink,
    mac,
    router,
    hostIp,
    table,
    leases,
    peers,
    dhcpLog: () => dhcpLog,
    stop: () => {
      http.kill('SIGTERM');
      dnsmasq.kill('SIGTERM');
      spawnSync('ip', ['netns', 'delete', ns]);
      spawnSync('ip', ['link', 'delete', uplink]);
      spawnSync('ip', ['route', 'flush', 'table', table]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A real Debian 12 disk image for image-node tests, made the way a user makes one (`qnet image create debian`,
 * cached by its inputs: minutes the first time, seconds after), in a directory of this test run.
 */
export async function debianImage(): Promise<{ file: string; dir: string; remove: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-img-'));
  spawnSync('chmod', ['755', dir]);
  const file = path.join(dir, 'debian-12.qcow2');
  const r = await qnet(['image', 'create', 'debian', '--out', file]);
  if (r.code !== 0) throw new Error(`qnet image create failed (${r.code}): ${r.stderr}`);
  return { file, dir, remove: () => spawnSync('rm', ['-rf', dir]) };
}

/** The SHA-256 of a file (to show that a base image is never written). */
export function sha256(file: string): string {
  return sh(['sha256sum', file]).stdout.split(' ')[0]!;
}

/** What a node's screen shows, read twice over: the text and the pixels, and where the two disagree. */
export interface ScreenRead {
  /** The foreground virtual console (tty1 unless something switched). */
  active: string;
  /** Its text as the guest holds it (/dev/vcs of that console, through the guest agent), one string a row. */
  rows: string[];
  /** The screen's size in pixels (QMP screendump). */
  size: [number, number];
  /** Character cells where the pixels say otherwise: a character drawn in nothing, or a blank cell lit (the cursor aside). */
  mismatches: Array<{ row: number; col: number; char: string; lit: boolean }>;
}

/**
 * Reads what a node's VGA screen shows. The guest's text of its foreground console is read through the agent; the
 * screen itself by QMP `screendump` (what a VNC client is sent): cut into the console's character cells, each cell
 * holding a character must have a lit pixel and each blank one none. A text that both agree on is on the screen.
 * Read again when the text changed in between (a message printed while the screen was taken).
 */
export async function readScreen(lab: string, node: string): Promise<ScreenRead> {
  const { QmpClient } = await import('../../src/qemu/qmp.js');
  const dir = `${process.env.QNET_RUN_DIR ?? '/run/qnet'}/${lab}/${node}`;
  const text = async () => {
    const script = 'a=$(cat /sys/class/tty/tty0/active); n=${a#tty}; echo "$a"; head -c 4 /dev/vcsa$n | od -An -tu1; od -An -v -tx1 /dev/vcs$n | tr -d " \\n"';
    const r = await qnet(['exec', lab, node, '--', 'sh', '-c', script]);
    if (r.code !== 0) throw new Error(`reading ${node}'s console text: ${r.stderr}`);
    const [active, head, hex] = r.stdout.split('\n');
    const [rows, cols, x, y] = head!.trim().split(/\s+/).map(Number) as [number, number, number, number];
    const bytes = Buffer.from(hex!, 'hex');
    const lines = Array.from({ length: rows }, (_, i) => bytes.subarray(i * cols, (i + 1) * cols).toString('latin1'));
    return { active: active!, rows: lines, cols, cursor: [x, y] as const };
  };
  for (let attempt = 0; ; attempt++) {
    const before = await text();
    const file = path.join(dir, 'screen.ppm');
    const qmp = await QmpClient.connect(path.join(dir, 'qmp.sock'));
    try {
      await qmp.execute('screendump', { filename: file });
    } finally {
      qmp.close();
    }
    const ppm = readFileSync(file);
    rmSync(file, { force: true });
    const after = await text();
    if (before.rows.join('\n') !== after.rows.join('\n') && attempt < 5) continue;
    const m = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(ppm.subarray(0, 32).toString('latin1'));
    if (!m) throw new Error(`screendump of ${node} is not a PPM`);
    const [w, h] = [Number(m[1]), Number(m[2])];
    const px = ppm.subarray(m[0].length);
    const at = (x: number, y: number) => px.readUIntBE((y * w + x) * 3, 3);
    const bg = at(w - 1, h - 1);
    const cw = Math.floor(w / before.cols);
    const ch = Math.floor(h / before.rows.length);
    const mismatches: ScreenRead['mismatches'] = [];
    for (const [row, line] of before.rows.entries())
      for (let col = 0; col < line.length; col++) {
        if (col === before.cursor[0] && row === before.cursor[1]) continue;
        let lit = false;
        for (let y = row * ch; y < (row + 1) * ch && !lit; y++) for (let x = col * cw; x < (col + 1) * cw && !lit; x++) lit = at(x, y) !== bg;
        const char = line[col]!;
        const blank = char === ' ' || char === '\0' || char === '\xff';
        if (lit === blank) mismatches.push({ row, col, char, lit });
      }
    return { active: before.active, rows: before.rows.map((r) => r.replace(/\0/g, ' ').trimEnd()), size: [w, h], mismatches };
  }
}
