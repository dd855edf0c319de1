// Rootless against root, side by side in one run (issue 34): the seed lab's up and down times, and the throughput
// of a nat lab's uplink both ways (iperf3 in the guest, the host the other end, through a port forward: root's
// veth and host DNAT against the user's pasta). Run as root, under the e2e lock:
//   flock /tmp/qnet-e2e.lock node dist/bench/rootless.js [reps]
// It makes an ordinary user (removed at the end, with everything it ran), makes /dev/net/tun 0666 for the run as
// stock distributions have it (its mode is put back at the end, also on Ctrl-C), and prints a markdown table.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { uplinkHostIf } from '../src/render/uplink.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const QNET = path.join(ROOT, 'bin', 'qnet.js');
const USER = `qnb${process.pid.toString(36)}`;
const TUN = '/dev/net/tun';
const tunMode0 = statSync(TUN).mode & 0o7777;
const reps = Number(process.argv[2] ?? 3);
let uid = -1;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'qnet-bench-rl-'));
chmodSync(tmp, 0o755);

function sh(argv: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function cleanup(): void {
  if (uid > 0) sh(['pkill', '-KILL', '-u', String(uid)]);
  if (sh(['id', '-u', USER]).code === 0) sh(['userdel', '-r', USER]);
  if (uid > 0) rmSync(`/run/user/${uid}`, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
  if ((statSync(TUN).mode & 0o7777) !== tunMode0) chmodSync(TUN, tunMode0);
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130));

/** The CLI as root (asRoot) or as the bench's user, with its time. */
function qnet(args: string[], asRoot: boolean): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t = Date.now();
  const env = asRoot
    ? process.env
    : { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: `/home/${USER}`, USER, LOGNAME: USER, XDG_RUNTIME_DIR: `/run/user/${uid}`, LANG: 'C.UTF-8' };
  const argv = asRoot ? [process.execPath, QNET, ...args] : ['setpriv', '--reuid', String(uid), '--regid', String(uid), '--init-groups', '--', process.execPath, QNET, ...args];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, cwd: tmp });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - t }));
  });
}

async function must(args: string[], asRoot: boolean): Promise<{ stdout: string; ms: number }> {
  const r = await qnet(args, asRoot);
  if (r.code !== 0) throw new Error(`qnet ${args.join(' ')} (${asRoot ? 'root' : USER}) exit ${r.code}:\n${r.stderr}`);
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function file(name: string, topo: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, topo, { mode: 0o644 });
  return f;
}

/** Gbit/s of one iperf3 run from the host to `addr:port` (reverse: the guest sends). */
async function iperf(addr: string, port: number, reverse: boolean): Promise<number> {
  // The guest's `iperf3 -s -D` returns before it listens: a refused (or, through pasta, reset) first try is retried.
  for (let i = 0; ; i++) {
    const r = sh(['iperf3', '-c', addr, '-p', String(port), '-t', '5', '-J', ...(reverse ? ['-R'] : [])]);
    const j = JSON.parse(r.stdout || '{}') as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
    if (j.end?.sum_received) return j.end.sum_received.bits_per_second / 1e9;
    if (i === 10) throw new Error(`iperf3 to ${addr}:${port}: ${j.error ?? r.stderr}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

async function main(): Promise<void> {
  if (sh(['useradd', '--create-home', '--user-group', '--shell', '/bin/sh', USER]).code !== 0) throw new Error('useradd failed');
  uid = Number(sh(['id', '-u', USER]).stdout.trim());
  sh(['install', '-d', '-m', '0700', '-o', String(uid), '-g', String(uid), `/run/user/${uid}`]);
  sh(['mkdir', '-p', `/home/${USER}/.cache/qnet`]);
  for (const d of ['debs', 'images']) sh(['cp', '-a', `/var/cache/qnet/${d}`, `/home/${USER}/.cache/qnet/`]);
  sh(['chown', '-R', `${uid}:${uid}`, `/home/${USER}/.cache`]);
  chmodSync(TUN, 0o666);

  const rows: string[] = [];
  const seed = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8');
  for (const asRoot of [true, false]) {
    const name = `bseed${asRoot ? 'r' : 'u'}${process.pid.toString(36)}`;
    const f = file(`${name}.yaml`, seed.replace(/^name: seed$/m, `name: ${name}`));
    const ups: number[] = [];
    const downs: number[] = [];
    // The first run saves the guests' states (each side its own cache); the rest restore, as `qnet up` usually does.
    for (let i = 0; i <= reps; i++) {
      const u = await must(['up', f], asRoot);
      const d = await must(['down', name], asRoot);
      if (i > 0) (ups.push(u.ms), downs.push(d.ms));
    }
    rows.push(`| seed lab up (CLI, restored guests), median of ${reps} | ${asRoot ? 'root' : 'rootless'} | ${(median(ups) / 1000).toFixed(2)} s |`);
    rows.push(`| seed lab down (CLI), median of ${reps} | ${asRoot ? 'root' : 'rootless'} | ${(median(downs) / 1000).toFixed(2)} s |`);
  }
  for (const asRoot of [true, false]) {
    const name = `bnat${asRoot ? 'r' : 'u'}${process.pid.toString(36)}`;
    const port = 25201 + (asRoot ? 0 : 1);
    const f = file(
      `${name}.yaml`,
      `name: ${name}\nnetworks:\n  lan: { mode: nat, subnet: 172.31.9.0/24, address: 172.31.9.1 }\nforwards:\n  - { proto: tcp, host: ${port}, node: a, port: 5201 }\nnodes:\n  a:\n    memory: 256\n    nics: [{ network: lan, ip: 172.31.9.2 }]\n`,
    );
    await must(['up', f], asRoot);
    try {
      await must(['exec', name, 'a', '--', 'iperf3', '-s', '-D'], asRoot);
      // Root: the forward is DNAT of the host's own non-loopback addresses (its uplink veth's among them); rootless:
      // pasta listens on every address of the host, loopback too.
      let addr = '127.0.0.1';
      if (asRoot) {
        const j = JSON.parse(sh(['ip', '-j', '-4', 'addr', 'show', 'dev', uplinkHostIf(name)]).stdout || '[]') as Array<{ addr_info: Array<{ local: string }> }>;
        addr = j[0]?.addr_info[0]?.local ?? '';
        if (!addr) throw new Error(`no address on ${uplinkHostIf(name)}`);
      }
      const h2g = await iperf(addr, port, false);
      const g2h = await iperf(addr, port, true);
      rows.push(`| host → guest through the uplink (iperf3, 5 s, via the forward) | ${asRoot ? 'root (veth + DNAT)' : 'rootless (pasta)'} | ${h2g.toFixed(2)} Gbit/s |`);
      rows.push(`| guest → host through the uplink (iperf3 -R) | ${asRoot ? 'root (veth + DNAT)' : 'rootless (pasta)'} | ${g2h.toFixed(2)} Gbit/s |`);
    } finally {
      await qnet(['down', name], asRoot);
    }
  }
  process.stdout.write(['| what | who | figure |', '|---|---|---|', ...rows].join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`bench rootless: ${e.message}\n`);
    process.exit(1);
  },
);
