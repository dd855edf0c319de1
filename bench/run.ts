// `npm run bench`: measures qnet next to the alternatives on this machine, in one run, and writes BENCHMARKS.md.
// Every comparison runs both sides here and now. Labs live in namespaces made and removed by the bench.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealRunner } from '../src/host/run.js';
import { renderLinkBatch } from '../src/render/ipbatch.js';
import { validateTopology } from '../src/topology/load.js';
import { up } from '../src/lab/up.js';
import { down } from '../src/lab/down.js';
import { readState } from '../src/lab/state.js';
import { nodeDir } from '../src/dirs.js';
import { nodeFiles } from '../src/render/qemu.js';
import { QmpClient } from '../src/qemu/qmp.js';
import { stringify } from 'yaml';
import { BEFORE_REV, buildRev, cliStartup } from './cli.js';
import { ensureImage } from '../src/guest/image.js';
import { execInGuest } from '../src/lab/exec.js';
import { cacheRoot } from '../src/dirs.js';
import { labSnapshots } from '../src/lab/snapshot.js';
import { Libvirt, LV_NET, LV_TAG } from './libvirt.js';
import { scriptGuestConfig } from './script-config.js';
import { defaultBootWindow } from '../src/lab/slots.js';
import { imageSection, imagesMarkdown } from './images.js';
import { checkMarkdown, checkSection } from './check.js';
import { forceDown, Held } from './held.js';
import { iperfBps } from './iperf.js';
import { layoutsSection } from './ovn.js';
import { layoutsMarkdown } from './ovn-report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const QNET = path.join(ROOT, 'bin', 'qnet.js');
const run = new RealRunner();
const quick = process.argv.includes('--quick');
// --with-libvirt: the labs section also starts the same guests with libvirt (installed from Debian's packages if missing).
const withLibvirt = process.argv.includes('--with-libvirt');
const log = (s: string) => process.stderr.write(`${s}\n`);
// Prefix of every lab and namespace the bench makes (QNET_BENCH_PREFIX: two benches can run side by side).
const PREFIX = process.env.QNET_BENCH_PREFIX ?? 'bench';
// Everything a section makes is registered here until it is removed: a Ctrl-C or SIGTERM removes what is left.
const held = new Held(log);

function sh(argv: string[], input?: string): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}
async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const cell = (xs: number[]) => {
  const s = stats(xs);
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
};

// The image-node section (bench/images.ts) gets the same switches, prefix and helpers as the others.
const imageOpts = { quick, withLibvirt, prefix: PREFIX, log, fmt, cell, held };

/** A lab of n nodes with one tap each on one bridge (for plumbing only: no guest starts). */
function plumbingLab(n: number) {
  const nodes: Record<string, unknown> = {};
  // Ten NICs a node keeps the lab within the node limit at any N.
  for (let i = 0; i < n / 10; i++) nodes[`n${i}`] = { nics: Array.from({ length: 10 }, () => ({ network: 'lan' })) };
  return validateTopology({ name: `${PREFIX}-plumb-${n}`, networks: { lan: {} }, nodes });
}

// A namespace deletion returns at once and the kernel removes its links afterwards (about 0.1 s for 500 taps),
// holding the lock every link change takes: each setup is timed after that has settled, on every side alike.
const settle = () => new Promise((res) => setTimeout(res, 1000));

async function plumbing(): Promise<string[]> {
  const rows: string[] = [];
  const reps = quick ? 1 : 3;
  for (const n of quick ? [10, 100] : [10, 100, 500]) {
    const lab = plumbingLab(n);
    const taps = lab.nodes.flatMap((x) => x.nics.map((c) => c.tap));
    const res = { qnetUp: [] as number[], qnetDown: [] as number[], perOpUp: [] as number[], perOpDown: [] as number[], batchUp: [] as number[], batchDown: [] as number[] };
    held.add(`plumbing ${n}`, () => {
      for (const ns of [lab.netns, `${PREFIX}-perop-${n}`, `${PREFIX}-batch-${n}`]) spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    });
    for (let r = 0; r < reps; r++) {
      // qnet's own code path: namespace + one rendered ip -batch (with markers); teardown = delete the namespace.
      await settle();
      res.qnetUp.push(await timed(async () => {
        await run.run(['ip', 'netns', 'add', lab.netns]);
        await run.run(['ip', '-n', lab.netns, '-batch', '-'], { input: renderLinkBatch(lab, 'qnet') });
      }));
      res.qnetDown.push(await timed(() => run.run(['ip', 'netns', 'delete', lab.netns])));
      // The seed's ifup/ifdown: one process per operation.
      const ns = `${PREFIX}-perop-${n}`;
      sh(['ip', 'netns', 'add', ns]);
      await settle();
      res.perOpUp.push(await timed(() => {
        sh(['ip', '-n', ns, 'link', 'add', 'kbr0', 'type', 'bridge']);
        for (const t of taps) {
          sh(['ip', '-n', ns, 'tuntap', 'add', 'dev', t, 'mode', 'tap', 'user', 'qnet']);
          sh(['ip', '-n', ns, 'link', 'set', t, 'master', 'kbr0']);
          sh(['ip', '-n', ns, 'link', 'set', t, 'up']);
        }
        sh(['ip', '-n', ns, 'link', 'set', 'kbr0', 'up']);
      }));
      res.perOpDown.push(await timed(() => {
        sh(['ip', '-n', ns, 'link', 'set', 'kbr0', 'down']);
        sh(['ip', '-n', ns, 'link', 'delete', 'kbr0']);
        for (const t of taps) sh(['ip', '-n', ns, 'tuntap', 'del', 'dev', t, 'mode', 'tap']);
      }));
      sh(['ip', 'netns', 'delete', ns]);
      // The practical floor: one ip -batch with only what is needed, deleted by one ip -batch.
      const nsb = `${PREFIX}-batch-${n}`;
      sh(['ip', 'netns', 'add', nsb]);
      await settle();
      const batch = ['link add kbr0 type bridge', ...taps.flatMap((t) => [`tuntap add dev ${t} mode tap user qnet`, `link set ${t} master kbr0`, `link set ${t} up`]), 'link set kbr0 up'].join('\n') + '\n';
      res.batchUp.push(await timed(() => sh(['ip', '-n', nsb, '-batch', '-'], batch)));
      res.batchDown.push(await timed(() => sh(['ip', '-n', nsb, '-batch', '-'], ['link delete kbr0', ...taps.map((t) => `link delete ${t}`)].join('\n') + '\n')));
      sh(['ip', 'netns', 'delete', nsb]);
    }
    const ratio = (a: number[], b: number[]) => {
      const r = stats(a).median / stats(b).median;
      return r < 0.01 ? '<0.01' : r.toFixed(2);
    };
    rows.push(`| ${n} | setup | ${cell(res.qnetUp)} | ${cell(res.perOpUp)} | ${cell(res.batchUp)} | ${ratio(res.qnetUp, res.batchUp)}× | ${(stats(res.perOpUp).median / stats(res.qnetUp).median).toFixed(1)}× faster |`);
    rows.push(`| ${n} | teardown | ${cell(res.qnetDown)} | ${cell(res.perOpDown)} | ${cell(res.batchDown)} | ${ratio(res.qnetDown, res.batchDown)}× | ${(stats(res.perOpDown).median / stats(res.qnetDown).median).toFixed(1)}× faster |`);
    held.drop(`plumbing ${n}`);
    log(`plumbing ${n}: done`);
  }
  return rows;
}

/**
 * Waits until every address answers one ping from inside `ns`: 2 s pings, up to 8 at once (one at a time, a
 * restored guest's first answer after about 0.2 s made the loop itself take 163 s for 250 guests; 32 at once, each
 * resolved by an ARP broadcast that woke all 250 guests, kept them too busy to answer), each address pinged again
 * 100 ms after it failed.
 */
async function waitPing(ns: string, addrs: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ping = (a: string) =>
    new Promise<boolean>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '2', a], { stdio: 'ignore' });
      p.once('error', () => resolve(false));
      p.once('close', (code) => resolve(code === 0));
    });
  const queue = [...addrs];
  const failed: string[] = [];
  const worker = async () => {
    for (let a = queue.shift(); a !== undefined; a = queue.shift()) {
      while (!(await ping(a))) {
        if (Date.now() > deadline) return void failed.push(a);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, addrs.length) }, worker));
  if (failed.length) throw new Error(`no answer from ${failed.join(', ')}`);
}

/** n guests on one bridge, g<i> at .10 + i (a /24; a /22 from 10.99.0.0 beyond 240 guests, up to the schema's 250). */
function guestsLab(name: string, n: number, model = 'virtio', net = '10.99.0') {
  const wide = n > 240;
  const ip = (i: number) => (wide ? `10.99.${(10 + i) >> 8}.${(10 + i) & 255}` : `${net}.${10 + i}`);
  const nodes: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) nodes[`g${i}`] = { nics: [{ network: 'lan', ip: ip(i), model }] };
  const topology = { name, networks: { lan: { subnet: wide ? '10.99.0.0/22' : `${net}.0/24`, address: wide ? '10.99.0.1' : `${net}.1` } }, nodes };
  return Object.assign(validateTopology(topology), { topology, ips: Array.from({ length: n }, (_, i) => ip(i)) });
}

/** Runs the real CLI (`node bin/qnet.js ...`) as a user types it; resolves with its exit code and stderr. */
function cli(args: string[], qnet = QNET): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [qnet, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    held.child(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

/** The same guests started by a plain script: bridge, taps, one qemu-system line each (bzImage, defaults). */
async function plainScript(n: number, image: { kernel: string; initrd: string; cmdline: string; bzImage: string }): Promise<{ upMs: number; downMs: number }> {
  const ns = `${PREFIX}-plain`;
  const dir = mkdtempSync('/tmp/qnet-bench-');
  chmodSync(dir, 0o755);
  const lab = guestsLab('plain', n);
  const procs: ReturnType<typeof spawn>[] = [];
  const killGuests = async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
  };
  // A failure part-way or an interrupt leaves nothing behind: the guests killed, the namespace and the directory removed.
  const removeAll = async () => {
    await killGuests();
    spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  held.add(`namespace ${ns}`, removeAll);
  try {
    const t0 = process.hrtime.bigint();
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'add', 'kbr0', 'type', 'bridge']);
    sh(['ip', '-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'kbr0']);
    sh(['ip', '-n', ns, 'link', 'set', 'kbr0', 'up']);
    lab.nodes.forEach((node, i) => {
      sh(['ip', '-n', ns, 'tuntap', 'add', 'dev', `tap${i}`, 'mode', 'tap']);
      sh(['ip', '-n', ns, 'link', 'set', `tap${i}`, 'master', 'kbr0']);
      sh(['ip', '-n', ns, 'link', 'set', `tap${i}`, 'up']);
      const conf = path.join(dir, `${node.name}.conf`);
      writeFileSync(conf, scriptGuestConfig(lab, node));
      procs.push(spawn('ip', ['netns', 'exec', ns, 'qemu-system-x86_64', '-machine', 'accel=tcg', '-m', '128', '-display', 'none', '-kernel', image.bzImage, '-initrd', image.initrd,
        '-append', image.cmdline, '-fw_cfg', `name=opt/qnet/config,file=${conf}`, '-netdev', `tap,id=n0,ifname=tap${i},script=no,downscript=no`,
        '-device', `virtio-net-pci,netdev=n0,mac=${node.nics[0]!.mac}`, '-serial', 'null'], { stdio: 'ignore' }));
    });
    await waitPing(ns, lab.nodes.map((x) => `10.99.0.${10 + lab.nodes.indexOf(x)}`), 300_000);
    const upMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const downMs = await timed(async () => {
      await killGuests();
      sh(['ip', 'netns', 'delete', ns]);
    });
    rmSync(dir, { recursive: true, force: true });
    return { upMs, downMs };
  } catch (e) {
    await removeAll();
    throw e;
  } finally {
    held.drop(`namespace ${ns}`);
  }
}

function memAndCpu(pids: number[], seconds: number): { rss: number; pss: number; cpuPct: number } {
  const read = (pid: number) => {
    const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(roll)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    return { rss: kb('Rss'), pss: kb('Pss'), ticks: Number(stat[11]) + Number(stat[12]) };
  };
  const a = pids.map(read);
  spawnSync('sleep', [String(seconds)]);
  const b = pids.map(read);
  const hz = 100;
  const cpu = b.map((x, i) => ((x.ticks - a[i]!.ticks) / hz / seconds) * 100);
  const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return { rss: avg(b.map((x) => x.rss)) / 1024, pss: avg(b.map((x) => x.pss)) / 1024, cpuPct: avg(cpu) };
}

/**
 * One qnet lab brought up until every guest answers ping, then taken down (times, and how the guests started): with
 * the CLI as a user types it, `qnet up FILE` (its defaults, but for the options given here) and `qnet down LAB`.
 */
async function qnetLab(lab: ReturnType<typeof guestsLab>, opts: { cold?: boolean; parallel?: number; timeout?: number; downBefore?: boolean; measure?: (pids: number[]) => Promise<void>; qnet?: string }) {
  const dir = mkdtempSync('/tmp/qnet-bench-lab-');
  held.add(`lab ${lab.name}`, async () => {
    await forceDown(lab.name);
    rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, `${lab.name}.yaml`);
  writeFileSync(file, stringify(lab.topology));
  try {
    const t0 = process.hrtime.bigint();
    const args = ['up', file, ...(opts.cold ? ['--cold'] : []), ...(opts.parallel !== undefined ? ['--parallel', String(opts.parallel)] : []), ...(opts.timeout ? ['--timeout', String(opts.timeout)] : [])];
    const r = await cli(args, opts.qnet);
    if (r.code !== 0) throw new Error(`qnet ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    await waitPing(lab.netns, lab.ips, 120_000);
    const upMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const state = await readState(lab.name);
    const guests = Object.values(state!.guests);
    if (opts.measure) await opts.measure(guests.map((g) => g.pid));
    let d = { code: 0, stderr: '' };
    const downMs = opts.downBefore ? await downAsBefore(lab) : await timed(async () => (d = await cli(['down', lab.name], opts.qnet)));
    if (d.code !== 0) throw new Error(`qnet down ${lab.name} failed: ${d.stderr}`);
    return { upMs, downMs, boots: guests.map((g) => (g.bootSeconds ?? 0) * 1000), restored: guests.filter((g) => g.start === 'restored').length };
  } catch (e) {
    // A failed measurement leaves nothing running (a 250-guest lab left up starved everything after it); when the
    // bench was interrupted, its undo list does that.
    if (!held.stopping) await cli(['down', lab.name], opts.qnet);
    throw e;
  } finally {
    if (!held.stopping) {
      rmSync(dir, { recursive: true, force: true });
      held.drop(`lab ${lab.name}`);
    }
  }
}

/**
 * `down` as qnet did it before built-in guests were stopped at once: a power-off in each guest (asked through its
 * agent), then the wait for its QEMU to exit (its monitor closing), all guests at once; then the rest of `qnet down`.
 */
async function downAsBefore(lab: ReturnType<typeof guestsLab>): Promise<number> {
  return timed(async () => {
    await Promise.all(
      lab.nodes.map(async (n) => {
        const files = nodeFiles(nodeDir(lab.name, n.name));
        const qmp = await QmpClient.connect(files.qmp, 2000);
        // The guest's own power-off, as its control port's "poweroff" ran it (the guest now looks at that port
        // less and less often while nobody speaks, so the request goes through its agent, which answers at once).
        void execInGuest(lab.name, n.name, ['poweroff', '-f'], { timeoutMs: 3000 }).catch(() => {});
        await Promise.race([qmp.closed, new Promise((r) => setTimeout(r, 3000))]);
        qmp.close();
      }),
    );
    const r = await cli(['down', lab.name]);
    if (r.code !== 0) throw new Error(`qnet down ${lab.name} failed: ${r.stderr}`);
  });
}

/** Forgets the saved state of the bench guests' shape, so that the next up boots one guest and saves it. */
async function forgetSnapshot(lab: ReturnType<typeof guestsLab>, image: Awaited<ReturnType<typeof ensureImage>>): Promise<void> {
  for (const s of Object.values(await labSnapshots(lab, image, 'tcg', run))) rmSync(s.path, { force: true });
}

const memRow = (what: string, m: { rss: number; pss: number; cpuPct: number }) => `| ${what} | ${m.rss.toFixed(0)} MiB | ${m.pss.toFixed(0)} MiB | ${m.cpuPct.toFixed(2)} % |`;
// Idle: 10 s after every guest answered (the last ones may still be finishing), then 30 s of CPU.
const idle = async (pids: number[]) => {
  await new Promise((res) => setTimeout(res, 10_000));
  return memAndCpu(pids, 30);
};

/** libvirt: also the libvirt side; extras: also the waves, the idle samples and the 100 guests (off for `--only libvirt`). */
async function labs(libvirt: boolean, extras = true): Promise<{ rows: string[]; boot: string[]; mem: string[]; waves: string[]; hundred: string[] }> {
  const waves: string[] = [];
  const rows: string[] = [];
  const boot: string[] = [];
  const mem: string[] = [];
  const hundred: string[] = [];
  const image = await ensureImage(run);
  const reps = quick ? 1 : 3;
  // The script side boots Debian's bzImage, as a plain script would: taken from the cached kernel package.
  const bzDir = mkdtempSync('/tmp/qnet-bz-');
  held.add('bzImage', () => rmSync(bzDir, { recursive: true, force: true }));
  const bzImage = path.join(bzDir, 'vmlinuz');
  let lv: Libvirt | undefined;
  try {
    chmodSync(bzDir, 0o755);
    const debs = path.join(cacheRoot(), 'debs');
    const deb = (await import('node:fs')).readdirSync(debs).find((f) => f.startsWith(`${image.kernelPackage}_`))!;
    sh(['sh', '-c', 'cd "$1" && dpkg-deb --fsys-tarfile "$2" | tar -x --wildcards "./boot/vmlinuz-*" && cp boot/vmlinuz-* vmlinuz && chmod 644 vmlinuz', 'x', bzDir, path.join(debs, deb)]);
    // Installed and started before the first N, stopped after the last (daemon start-up is not what is compared).
    if (libvirt) {
      const l = await Libvirt.start(log, { signals: false });
      lv = l;
      held.add('libvirt', () => l.close());
    }
    for (const n of quick ? [1, 3] : [1, 3, 10]) {
      const lab = guestsLab(`${PREFIX}-up-${n}`, n);
      const big = extras && (n === 10 || (quick && n === 3));
      // Every guest boots (--cold), at most cores + 1 at once (the default): the path without saved states.
      const cold = await qnetLab(lab, { cold: true, ...(big ? { measure: async (pids) => void mem.push(memRow(`booted (--cold), ${n} idle guests, 128 MiB each`, await idle(pids))) } : {}) });
      if (n === 1 || big) boot.push(`| ${n} | booted | ${cell(cold.boots)} |`);
      if (big) {
        // The boot storm: every guest booting at once, against the default window (cores + 1) above.
        // Two of each, alternating (one sample of a 30 s boot storm varies by a few seconds).
        const storm = [await qnetLab(guestsLab(`${PREFIX}-storm`, n), { cold: true, parallel: 0 })];
        const win = [cold, await qnetLab(guestsLab(`${PREFIX}-window`, n), { cold: true })];
        storm.push(await qnetLab(guestsLab(`${PREFIX}-storm`, n), { cold: true, parallel: 0 }));
        const [s1, w1] = [stats(storm.map((x) => x.upMs)), stats(win.map((x) => x.upMs))];
        const both = (xs: Array<{ upMs: number }>) => xs.map((x) => fmt(x.upMs)).join(', ');
        waves.push(`| ${n} | ${both(storm)} | ${both(win)} (at most ${defaultBootWindow()} booting) | ${((w1.min + w1.max) / (s1.min + s1.max)).toFixed(2)} |`);
        log(`lab ${n} booted all at once: ${both(storm)}, in a window: ${both(win)}`);
      }
      // The first up of a shape: one guest boots and is saved at its snapshot point, the others are restored.
      await forgetSnapshot(lab, image);
      const first = await qnetLab(lab, {});
      // Every later up: each guest restored from the saved state (the default path once it exists).
      const warm: Array<Awaited<ReturnType<typeof qnetLab>>> = [];
      for (let r = 0; r < reps; r++)
        warm.push(await qnetLab(lab, r === 0 && big ? { measure: async (pids) => void mem.push(memRow(`restored (the default), ${n} idle guests, 128 MiB each`, await idle(pids))) } : {}));
      if (warm.some((x) => x.restored !== n)) throw new Error(`lab ${n}: not every guest was restored`);
      if (n === 1 || big) boot.push(`| ${n} | restored | ${cell(warm.flatMap((x) => x.boots))} |`);
      // `down` as it was before built-in guests were quit at once (a power-off request and the wait), for comparison.
      const before = await qnetLab(lab, { downBefore: true });
      const plain = await plainScript(n, { ...image, bzImage });
      const virt = lv && (await lv.lab(guestsLab(`${LV_TAG}-${n}`, n, 'virtio', LV_NET), { ...image, bzImage }, waitPing));
      const warmUp = stats(warm.map((x) => x.upMs)).median;
      rows.push(
        `| ${n} | ${cell(warm.map((x) => x.upMs))} | ${fmt(first.upMs)} | ${fmt(cold.upMs)} | ${fmt(plain.upMs)} | ${(warmUp / plain.upMs).toFixed(2)} / ${(cold.upMs / plain.upMs).toFixed(2)} |${virt ? ` ${fmt(virt.upMs)} |` : ''} ${cell(warm.map((x) => x.downMs))} | ${fmt(before.downMs)} | ${fmt(plain.downMs)} |${virt ? ` ${fmt(virt.downMs)} |` : ''}`,
      );
      log(`lab ${n}: qnet restored ${fmt(warmUp)}, first ${fmt(first.upMs)}, cold ${fmt(cold.upMs)}, script ${fmt(plain.upMs)}${virt ? `, libvirt ${fmt(virt.upMs)}` : ''}`);
    }
  } finally {
    lv?.close();
    held.drop('libvirt');
    rmSync(bzDir, { recursive: true, force: true });
    held.drop('bzImage');
  }
  if (!quick && extras) {
    // 100 and 250 (the schema's limit) idle guests at once (their saved state exists from above): time to all
    // answering, memory, idle CPU.
    for (const n of [100, 250]) {
      const lab = guestsLab(`${PREFIX}-hundred`, n);
      const avail = () => Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) / 2 ** 20;
      const before = avail();
      let m: { rss: number; pss: number; cpuPct: number } | undefined;
      let used = 0;
      const r = await qnetLab(lab, {
        // The one option a user adds here: that many guests take longer than the default 180 s bound if they boot.
        timeout: 900,
        measure: async (pids) => {
          m = await idle(pids);
          used = before - avail();
        },
      });
      hundred.push(`| ${n} | ${fmt(r.upMs)} | ${r.restored} of ${n} | ${(m!.pss * n / 1024).toFixed(1)} GiB | ${used.toFixed(1)} GiB of ${Math.round(os.totalmem() / 2 ** 30)} | ${m!.rss.toFixed(0)} / ${m!.pss.toFixed(0)} MiB | ${m!.cpuPct.toFixed(2)} % | ${fmt(r.downMs)} |`);
      log(`lab ${n}: ${fmt(r.upMs)}, PSS ${m!.pss.toFixed(0)} MiB per guest`);
    }
  }
  return { rows, boot, mem, waves, hundred };
}

/** The last revision whose restored guests each held their own copy of the saved state's RAM. */
const COPIED_RAM_REV = '3b07f91';

/**
 * PSS of idle restored guests: RAM mapped copy-on-write from the state's template (now) vs each guest loading its
 * own copy (qnet at COPIED_RAM_REV, built from git in a temporary worktree). 10 guests each, the CLI as typed,
 * the second up of each measured (the first saves the state of the shape, for that revision's own image).
 */
async function sharedVsCopied(): Promise<string[]> {
  const rows: string[] = [];
  const n = 10;
  const sample = async (qnet: string | undefined, what: string) => {
    const lab = guestsLab(`${PREFIX}-ram`, n);
    await qnetLab(lab, { ...(qnet ? { qnet } : {}) });
    let m: { rss: number; pss: number; cpuPct: number } | undefined;
    const r = await qnetLab(lab, { ...(qnet ? { qnet } : {}), measure: async (pids) => void (m = await idle(pids)) });
    rows.push(`| ${what} | ${r.restored} of ${n} | ${m!.rss.toFixed(0)} MiB | ${m!.pss.toFixed(0)} MiB | ${(m!.pss * n).toFixed(0)} MiB |`);
    log(`ram: ${what}: PSS ${m!.pss.toFixed(0)} MiB per guest`);
  };
  const before = buildRev(ROOT, COPIED_RAM_REV, log, held);
  try {
    await sample(undefined, 'shared: RAM mapped copy-on-write from the template (now)');
    if ('why' in before) rows.push(`| copied: each guest loads its own RAM (${COPIED_RAM_REV}) | not measured: ${before.why} | | | |`);
    else await sample(path.join(before.dir, 'bin', 'qnet.js'), `copied: each guest loads its own RAM (qnet ${COPIED_RAM_REV})`);
  } finally {
    if (!('why' in before)) before.remove();
  }
  return rows;
}

async function throughput(): Promise<string[]> {
  const rows: string[] = [];
  const secs = quick ? 5 : 10;
  const reps = quick ? 1 : 3;
  const mbit = (xs: number[]) => {
    const s = stats(xs);
    return reps > 1 ? `${s.median.toFixed(0)} Mbit/s (${s.min.toFixed(0)}–${s.max.toFixed(0)})` : `${s.median.toFixed(0)} Mbit/s`;
  };
  for (const model of ['virtio', 'e1000']) {
    const name = `${PREFIX}-tp-${model}`;
    const lab = guestsLab(name, 2, model);
    held.add(`lab ${name}`, () => forceDown(name));
    await held.building(up(lab, { runner: run, accel: 'tcg' }));
    try {
      const got: number[] = [];
      for (let r = 0; r < reps; r++) {
        // A one-off server in the background on g1; the client on g0 reports what g1 received.
        await execInGuest(name, 'g1', ['iperf3', '-s', '-D', '-1'], { timeoutMs: 10000 });
        let out = '';
        for (let i = 0; i < 10; i++) {
          out = (await execInGuest(name, 'g0', ['iperf3', '-c', '10.99.0.11', '-t', String(secs), '-i', '0', '-J'], { timeoutMs: (secs + 30) * 1000 })).stdout.toString();
          if (!/connection refused/i.test(out)) break;
          await new Promise((res) => setTimeout(res, 200)); // the server was not listening yet
        }
        got.push(iperfBps(out, `${model} guest → guest`) / 1e6);
      }
      rows.push(`| guest → guest, ${model}, iperf3 ${secs} s | ${mbit(got)} |`);
    } finally {
      await down(name, { runner: run, graceMs: 0 });
      held.drop(`lab ${name}`);
    }
  }
  // The machine's upper bound: two namespaces on a bridge of veths, iperf3 on the host.
  if (spawnSync('iperf3', ['--version']).status !== 0) {
    rows.push('| host veth → veth over a bridge (upper bound) | not measured: no iperf3 on the host (`npm run bench` installs it) |');
    return rows;
  }
  const [v1, v2, vb] = [`${PREFIX}-v1`, `${PREFIX}-v2`, `${PREFIX}-vb`];
  // iperf3's server may still run in v2 (interrupted): a namespace is deleted only once nothing runs in it.
  const removeVeths = () => {
    for (const ns of [v1, v2, vb]) {
      for (const pid of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
      spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    }
  };
  held.add('veth namespaces', removeVeths);
  sh(['ip', 'netns', 'add', v1]);
  sh(['ip', 'netns', 'add', v2]);
  sh(['ip', 'netns', 'add', vb]);
  try {
    sh(['ip', '-n', vb, 'link', 'add', 'name', 'br0', 'type', 'bridge']);
    sh(['ip', '-n', vb, 'link', 'set', 'dev', 'br0', 'up']);
    for (const [i, ns] of [[1, v1], [2, v2]] as const) {
      sh(['ip', '-n', vb, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh(['ip', '-n', vb, 'link', 'set', 'dev', `p${i}`, 'master', 'br0', 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', `10.98.0.${i}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    const got: number[] = [];
    for (let r = 0; r < reps; r++) {
      const srv = spawn('ip', ['netns', 'exec', v2, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
      const closed = new Promise((res) => srv.once('close', res));
      // Wait until the listener is there (a bounded look at the namespace's sockets), then send.
      for (let i = 0; i < 100 && !/:5201\b/.test(spawnSync('ip', ['netns', 'exec', v2, 'ss', '-ltn'], { encoding: 'utf8' }).stdout); i++)
        await new Promise((res) => setTimeout(res, 20));
      const c = spawnSync('ip', ['netns', 'exec', v1, 'iperf3', '-c', '10.98.0.2', '-t', String(secs), '-i', '0', '-J'], { encoding: 'utf8' });
      got.push(iperfBps(c.stdout, 'veth') / 1e6);
      await closed;
    }
    rows.push(`| host veth → veth over a bridge, iperf3 ${secs} s (upper bound) | ${mbit(got)} |`);
  } finally {
    removeVeths();
    held.drop('veth namespaces');
  }
  return rows;
}

/** The machine in one line, as the sections that say it name it. */
function machine(): string {
  return `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}`;
}

/** Replaces the section of BENCHMARKS.md that starts with `heading` by `md`, or puts it before `before` if it has none. */
function replaceSection(heading: string, before: string, md: string): void {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf(heading);
  const next = at < 0 ? -1 : text.indexOf('\n## ', at + 5);
  const anchor = text.indexOf(before);
  if (at < 0 && anchor < 0) throw new Error(`BENCHMARKS.md has neither "${heading}" nor "${before}"`);
  writeFileSync(file, at >= 0 ? text.slice(0, at) + md + (next < 0 ? '' : text.slice(next + 1)) : text.slice(0, anchor) + md + text.slice(anchor));
}

/**
 * Rootless against root (issue 34), by bench/rootless.ts in a process of its own (it makes and removes a user and
 * puts /dev/net/tun's mode back at its exit): its table, with the targets judged, as a BENCHMARKS.md section.
 */
async function rootlessSection(reps: number): Promise<string> {
  log('bench: rootless against root');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'rootless.js'), String(reps)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_200_000 });
  if (r.status !== 0) throw new Error(`bench/rootless.js failed (exit ${r.status ?? r.signal})`);
  const table = r.stdout.trim();
  // | what | who | figure |: the two sides of each row, for the targets.
  const fig = (what: RegExp, who: string) => {
    // "root", "root (veth + DNAT)", "rootless (pasta)": the side is the cell's first word.
    const line = table.split('\n').find((l) => what.test(l) && l.split('|')[2]?.trim().split(' ')[0] === who);
    const m = line && /\| ([\d.]+) (s|Gbit\/s) \|$/.exec(line);
    return m ? Number(m[1]) : NaN;
  };
  const ratio = (what: RegExp) => fig(what, 'rootless') / fig(what, 'root');
  const upR = ratio(/seed lab up/);
  const downR = ratio(/seed lab down/);
  const tput = table.split('\n').filter((l) => /Gbit\/s/.test(l)).map((l) => l.split('|')[1]!.trim());
  const tputR = [...new Set(tput)].map((w) => ({ w, r: ratio(new RegExp(w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))) }));
  const judged = [
    `- rootless up within 1.1× of root: ${upR.toFixed(2)}× (${upR <= 1.1 ? 'met' : 'NOT met'}); down: ${downR.toFixed(2)}× (${downR <= 1.1 ? 'met' : 'NOT met'})`,
    ...tputR.map(({ w, r: x }) => `- ${w}: rootless ${x.toFixed(2)}× root (${x >= 0.5 ? 'met' : 'NOT met'}: at least half)`),
  ];
  return `## Rootless against root (issue 34)

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} by \`npm run bench -- --only rootless\` (bench/rootless.ts: an ordinary
user made for the run, /dev/net/tun 0666 for it as stock distributions have it, both removed or put back after),
on ${machine()}, both sides in this run. Up and down: the seed lab (examples/seed-lab.yaml) by the CLI, restored
guests, median of ${reps} after a first run that saves the states. Throughput: iperf3 between a nat lab's guest and
the host through the lab's uplink and a port forward: root's veth and host DNAT, rootless pasta and the lab's DNAT.

${table}

Targets:
${judged.join('\n')}

`;
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  // --only SECTION measures one section and prints it, leaving BENCHMARKS.md alone (for working on one part).
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  if (only) {
    if (only === 'cli') {
      const c = await cliStartup(ROOT, { log, cell, held });
      process.stdout.write([...c.rows, c.note].join('\n') + '\n');
      return;
    }
    if (only === 'images') {
      // --only images: the Debian image rows (with --quick: 1 guest, no trims; with --with-libvirt: virt-install too).
      const r = await imageSection(imageOpts);
      process.stdout.write([...r.boot, '', ...r.mem, '', ...r.down, '', ...r.trims, ...(r.libvirt ? ['', `virt-install: ${r.libvirt.text}`] : []), '', `section: ${fmt(r.ms)}`].join('\n') + '\n');
      return;
    }
    if (only === 'check') {
      // --only check: also replaces the check section of BENCHMARKS.md (it says when it was measured).
      const c = await checkSection(ROOT, { reps: quick ? 1 : 3, log, fmt, held });
      const md = checkMarkdown(c, new Date().toISOString().slice(0, 16).replace('T', ' '));
      process.stdout.write(md);
      const file = path.join(ROOT, 'BENCHMARKS.md');
      const text = readFileSync(file, 'utf8');
      const at = text.indexOf('## Reachability: `qnet check`');
      const next = at < 0 ? -1 : text.indexOf('\n## ', at + 5);
      const anchor = text.indexOf('## CLI start-up');
      writeFileSync(file, at >= 0 ? text.slice(0, at) + md + text.slice(next + 1) : text.slice(0, anchor) + md + text.slice(anchor));
      return;
    }
    if (only === 'layouts') {
      // --only layouts: bridges, OVN on one host and on two; also replaces that section of BENCHMARKS.md.
      const r = await layoutsSection({ root: ROOT, prefix: PREFIX, quick, log, held });
      const md = layoutsMarkdown(r, { when: new Date().toISOString().slice(0, 16).replace('T', ' '), machine: machine() });
      process.stdout.write(md);
      replaceSection('## Layouts: bridges, OVN', '## Image nodes', md);
      return;
    }
    if (only === 'rootless') {
      // --only rootless: rootless against root; also replaces that section of BENCHMARKS.md.
      const md = await rootlessSection(quick ? 1 : 3);
      process.stdout.write(md);
      replaceSection('## Rootless against root', '## Image nodes', md);
      return;
    }
    if (only === 'ram') {
      process.stdout.write((await sharedVsCopied()).join('\n') + '\n');
      return;
    }
    if (!['plumbing', 'labs', 'libvirt', 'throughput'].includes(only)) throw new Error(`--only: unknown section "${only}" (plumbing, ram, labs, libvirt, throughput, layouts, rootless, images, check, cli)`);
    // --only libvirt: the labs rows with the libvirt columns, without the waves, the idle samples and the 100 guests.
    const l = only === 'labs' ? await labs(withLibvirt) : only === 'libvirt' ? await labs(true, false) : undefined;
    const out = only === 'plumbing' ? await plumbing() : only === 'throughput' ? await throughput() : [...l!.rows, '', ...l!.hundred, '', ...l!.waves, '', ...l!.boot, '', ...l!.mem];
    process.stdout.write(out.join('\n') + '\n');
    return;
  }
  log('bench: plumbing');
  const plumb = await plumbing();
  // Before the labs and the image nodes: the older qnet it runs removes the saved states of every other image.
  log('bench: shared RAM');
  const ram = await sharedVsCopied();
  log('bench: labs');
  const l = await labs(withLibvirt);
  log('bench: throughput');
  const tp = await throughput();
  log('bench: layouts (bridges, OVN on one host and on two)');
  const lay = await layoutsSection({ root: ROOT, prefix: PREFIX, quick, log, held });
  const rootless = await rootlessSection(quick ? 1 : 3);
  log('bench: image nodes');
  const img = await imageSection(imageOpts);
  log('bench: check');
  const chk = await checkSection(ROOT, { reps: quick ? 1 : 3, log, fmt, held });
  log('bench: CLI start-up');
  const startup = await cliStartup(ROOT, { log, cell, held });
  const labsHead = withLibvirt
    ? `With \`--with-libvirt\`, also libvirt (Debian's, its own daemon in a namespace, qemu:///system, domain type qemu):
\`virsh net-define\` + \`net-start\` of an isolated network, \`virsh define\` + \`start\` of the script's guests as
direct-kernel-boot domains, the same ping loop; teardown \`virsh destroy\` + \`undefine\` of each and
\`net-destroy\` + \`net-undefine\`.

| guests | qnet up → ping (saved state) | first up (saves it) | --cold | script → ping | ratio saved / cold to script | libvirt → ping | qnet down | down before (power-off request) | script teardown | virsh teardown |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`
    : `| guests | qnet up → ping (saved state) | first up (saves it) | --cold | script → ping | ratio saved / cold to script | qnet down | down before (power-off request) | script teardown |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |`;
  const md = `# Benchmarks

Written by \`npm run bench\` on ${when} UTC. Machine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,
Linux ${os.release()}, ${qemu}, guests under TCG (KVM does not boot guests here). Every comparison ran both
sides in this same run. Times are medians with min–max${quick ? ' (--quick: one repetition)' : ' over 3 repetitions'} where repeated.

## Host plumbing: N taps on one bridge

qnet's own code path (namespace + one rendered \`ip -batch\`, with ownership markers; teardown = delete the
namespace), the seed's ifup/ifdown (one \`ip\` process per operation) and one bare \`ip -batch\` (the floor: its
namespace made before the clock starts). Each setup starts 1 s after the previous teardown: deleting a namespace
returns at once and the kernel removes its links afterwards (about 0.1 s for 500 taps), holding the lock every
link change needs.

| N | phase | qnet | one process per op | one ip -batch | qnet / batch | qnet vs per-op |
| --- | --- | --- | --- | --- | --- | --- |
${plumb.join('\n')}

## Lab start → every guest answers ping, and teardown

qnet as a user runs it (\`node bin/qnet.js up FILE\` with its defaults, a new process each time, until it returns
and then a ping from the lab namespace answers) vs the same guests started by a
plain script (bridge, taps, one \`qemu-system-x86_64\` line each with Debian's bzImage and QEMU's defaults, all
at once, readiness by pinging in a loop). qnet three ways: with the saved state of the guests' shape (what every
\`up\` after the first does: each guest restored from it), the first \`up\` of a shape (one guest boots and is
saved at its snapshot point, the others are restored from it once saved), and \`--cold\` (every guest boots).
Teardown: \`node bin/qnet.js down LAB\` (its defaults: built-in guests are quit at once, they have no disk) vs
\`down\` as it was until this version (a power-off in each guest, asked through its agent, and the wait for its QEMU
to exit, then the rest) vs killing the QEMUs and deleting the namespace.

${labsHead}
${l.rows.join('\n')}

## Restored guests share the saved RAM

10 idle guests restored from the saved state of their shape (\`qnet up FILE\`, the second up; 10 s after every
guest answers, 30 s sample): now, every guest maps the state's RAM template copy-on-write (a sealed memfd made once
per \`up\`; a guest's private memory is what it wrote since, and its translation cache), against qnet
${COPIED_RAM_REV}, where each guest loaded its own copy of the RAM from the state.

| how | restored | RSS per guest | PSS per guest | PSS, all 10 |
| --- | --- | --- | --- | --- |
${ram.join('\n')}

## 100 and 250 guests at once

One lab of 100, then one of 250 guests (250 is the schema's limit; 128 MiB each, restored from the saved state of
their shape), \`qnet up FILE --timeout 900\` (the default bound of 180 s is for labs that boot) until every one
answers ping; then, 10 s later, memory and CPU over 30 s; then \`qnet down\`.

| guests | up → all answer | restored | PSS, all guests | host memory used (MemAvailable drop) | RSS / PSS per guest | idle CPU per guest | down |
| --- | --- | --- | --- | --- | --- | --- | --- |
${l.hundred.join('\n') || '| 100 | not measured (--quick) | | | | | | |'}

## Boot storm or a window

The same lab with every guest booting (\`--cold\`): all at once (\`up --parallel 0\`), and with the default window
(at most cores + 1 guests booting at once, the next started as soon as one reports ready).

| guests | all at once → ping (two runs) | window → ping (two runs) | window / all at once (means) |
| --- | --- | --- | --- |
${l.waves.join('\n')}

## Guest start → network ready (reported by the guest, timed by qnet from the start of its QEMU)

| guests starting at once | how | start → ready |
| --- | --- | --- |
${l.boot.join('\n')}

## Memory and idle CPU per guest (10 s after every guest answers, 30 s sample)

| what | RSS | PSS | idle CPU |
| --- | --- | --- | --- |
${l.mem.join('\n')}

## Throughput (TCP, iperf3, one stream)

iperf3 from the guest image: g0 sends to g1 across the lab's bridge; the figure is what g1 received.

| path | throughput |
| --- | --- |
${tp.join('\n')}

${layoutsMarkdown(lay, { machine: machine() })}${rootless}${imagesMarkdown(img, { quick, withLibvirt, fmt })}
${checkMarkdown(chk)}## CLI start-up

A command as a user types it: a new \`node bin/qnet.js …\` process each time, started by a shell (one bash loop,
wall time until the command exits by bash's \$EPOCHREALTIME), ${10} runs after one to warm the page cache.
"Before": the CLI of ${BEFORE_REV} (the last version that loaded every module at start), built from git in a
temporary worktree with the same node_modules. \`status\` with no labs on the host.
Each in an environment without \`NODE_EXTRA_CA_CERTS\`, then (when the bench's environment sets it) with it.

| command | now | before |
| --- | --- | --- |
${startup.rows.join('\n')}
${startup.note}

## What each choice bought (measured while building the image)

- PVH boot of the uncompressed kernel instead of the bzImage: one guest ready in 5.7 s instead of 11.3 s.
- gzip-compressed initramfs (5.3 MiB instead of 13.7 MiB): needed to boot in 104 MiB (96 MiB ran out of memory
  while unpacking the uncompressed one).
- The guest's control loop pauses with a builtin read on a FIFO instead of forking \`sleep\` every second: idle
  CPU per guest 5.0 % → 2.6 % (10 idle guests, this bench before and after).
- The guest agent on a virtio console port (hvc0) instead of a named virtio-serial port: idle CPU per guest
  2.5 % → 0.6 % (with no host connected, the named port kept the agent and QEMU's main loop waking).
- Kernel command line \`tsc=reliable\` and no proactive compaction: idle CPU per guest 0.64 % → 0.30 %.
- virtio-serial with 2 ports instead of 31: 6 virtqueues instead of 64 and 72 fewer eventfds polled by QEMU.
- \`-cpu max,erms=off\` under TCG (the guest kernel copies with rep movsq instead of rep movsb, which TCG emulates
  element by element): guest-to-guest TCP with iperf3 340 → 765 Mbit/s in the measurement that chose it.
- iperf3 kept compressed in the image and unpacked on first use: the image still boots in 104 MiB.
- \`-accel tcg,tb-size=32\` (QEMU 7.2's default translation cache is far larger than an idle guest needs): 32 MiB
  less RSS and PSS per idle guest.
- A virtio-balloon device that is never inflated, with free page reporting (blocks of 128 KiB): PSS per idle guest
  173 → 157 MiB.
- Kernel command line \`no_timer_check\`: a boot storm of 100 guests on 2 cores no longer panics a guest in the
  IO-APIC timer check.
- Saved states (one per shape, restored with \`-incoming\`): measured above as "saved state" against "--cold"; the
  restore itself (QEMU up and the state loaded) takes about 0.2 s, the rest is the guest applying its own
  configuration. A vmgenid device lets each copy reseed its randomness.
- A window of booting guests (cores + 1, refilled as each is ready) instead of all at once: measured above. It
  replaced waves (\`--parallel N\` used to start N, wait for all N, then start the next N), which left cores idle
  while a wave's last guest finished.
- Restored guests map the saved RAM copy-on-write from one sealed memfd per \`up\` (devices migrated in with
  \`x-ignore-shared\`): measured above against each guest loading its own copy. Their translation cache is 24 MiB
  instead of 32: private memory per idle restored guest 47 → 37 MiB, iperf3 between two of them unchanged (16 MiB
  was tried first: a restored guest fills that by \`READY\`, and QEMU flushed it and translated it all again, 0.1 s
  of CPU a guest by \`info jit\`).
- The restored guest's configuration sent on its control port after \`resume\` instead of re-reading fw_cfg (which
  reloaded its driver, cold under TCG): CPU per restored guest 0.50 → 0.31 s, 100 guests up 43.5 → 36.8 s (the CLI
  as typed, measured while making it). Then \`ipv6.disable=1\` (no router solicitations, DAD and MLD flooded to
  every guest on the bridge by each one coming up), NICs named before the snapshot point and shell builtins instead
  of cat, hostname and cut after it: 100 guests 36.8 → 33.6 s, 250 guests 143 → 121 s (measured the same way).
- No self-announce after a restore (\`migrate-set-parameters announce-rounds=0\`): QEMU sent 5 RARPs per NIC and
  had the guest send gratuitous ARPs, broadcasts that woke every guest on the bridge; and the control port connected
  before the restored guest runs (without a host on its port, a guest at its snapshot point polls, forking every
  20 ms). Guests already up spent ~0.9 % CPU each while a 100-guest lab came up, ~0.1 % after: 100 guests 43–57 →
  34–37 s, 250 guests 121–128 → 110 s (\`qnet up\` as typed, measured while making it).
- Restored guests started 4 at once instead of one after the other: 100 guests 38.8 s against 36.8 s (a restore is
  bound by CPU, the guests' own work after it): not kept.
- The Debian image's resume hook writes each file with shell builtins (in a restored Debian guest, base64, chmod and
  mv cost 300 ms a file: each program started costs about 100 ms with an empty translation cache), and sshd starts
  by socket on the first connection (restarting it for the node's host key took 1.1 s): a restored Debian node ready
  in 7.6 s → 2.2 s (measured while making it).
- No ARP between the host side and built-in guests (a derived MAC on each bridge with a host address, permanent
  neighbour entries on both sides): every ARP broadcast was flooded to every guest on the bridge. 100 guests, each
  pinged from the lab namespace 8 at a time right after \`qnet up\`: the first ping of all 100 14.1–14.7 s → 1.06 s
  (measured while making it).
- Each guest's MAC tied to its bridge port (static forwarding entries, one \`bridge -batch\`): a restored guest
  sends nothing until spoken to, so the bridge had not learned it and flooded the host's first frame for it out of
  every port, waking every guest (100 guests pinged once each: frames out of each tap 106 → 10.6).
- The RAM template copied into its sealed memfd with a native compare for zero blocks instead of a byte-by-byte scan
  in JavaScript: 0.26 → 0.04 s for a built-in guest's 128 MiB state, 1.35–2.1 → 0.23 s for a Debian node's 512 MiB,
  at every \`up\` that restores; one built-in guest up → ping 1.49–1.74 → 1.23–1.57 s (5 runs each, taken in turn).
- Restored image nodes take a slot of the boot window (cores + 1 at once; a restored Debian node needs ~3.7 s of
  CPU around \`READY\`): 10 restored Debian nodes 26.5–43.8 s all at once (7 runs) → 24.6–35.7 s (6 runs).
  Then a window of their own, cores − 1 (at least 1): a resume with a core to itself while the node before it
  finishes its own work after \`READY\` on the other. 10 restored Debian nodes on 2 cores, 3 runs of each taken in
  turn: three at once each node 2.2–6.6 s from its start to ready, the lab 14.9–17.2 s; two at once 1.4–4.0 s,
  13.9–17.7 s; one at a time 1.3–2.0 s, 17.5–17.8 s (kept: every node ready within 3 s of its start).
- Image nodes get a 128 MiB translation cache instead of 32 (the bench's plain script and virt-install guests
  too): a restored Debian guest flushed its 32 MiB cache 6 times in its first 10 s and translated everything again
  each time. 10 restored Debian nodes 22.7–25.0 s (QEMU CPU 43–46 s) → 16.7–17.1 s (31 s), taken in turn.
- A restored built-in guest gets the other nodes' names as one block of \`/etc/hosts\` lines after its
  configuration, copied by one \`head -c\`, instead of one \`host\` line each (read by the shell a byte per system
  call and appended one by one: a cost every guest paid in proportion to the lab's size). 250 guests, \`qnet up\`
  as typed, taken in turn: QEMU CPU per guest 0.86–0.93 → 0.59–0.73 s, up 118.8–133.0 → 85.0–108.9 s; 10 guests
  unchanged.
- \`qnet status\` with no labs loads only discovery and the ownership markers (not the renderers, nor node:crypto,
  nor what reads and shows a lab), reads host links' markers from /sys/class/net instead of running \`ip\`, reads
  /proc synchronously (3.4 ms for 70 processes against 12 ms a read at a time) while \`nft\` runs, and commander is
  required as the CommonJS package it is (14–15 ms against 20–22 ms through an ES import). 3 rounds of 10 runs
  taken in turn with the previous CLI: without NODE_EXTRA_CA_CERTS 168–171 → 135–137 ms, with it 203–211 →
  173–182 ms; \`--help\` 113–114 → 108–113 ms (\`node -e 0\` 62–66 and 104–109 ms).
- \`qnet status\` with no labs starts no process: it no longer asks \`nft\` for leftover tables (qnet makes a lab's
  host tables after its namespace and removes them first; \`down --all\` still asks), since node starts a process slowly here (its
  first spawn blocks it 8–9 ms, against 0.5 ms for Python's); and each command defines only itself with commander
  (defining all 21 took 6–7 ms). 3 rounds of 10 runs taken in turn with the previous CLI, without
  NODE_EXTRA_CA_CERTS: status 138–150 → 120–123 ms, \`--help\` unchanged (113–114 and 114–117 ms), \`validate\`
  of the seed lab 298–306 → 290–301 ms (\`node -e 0\` 71–74 ms; these by a script that adds about 10 ms a run).
  The table above is timed from one bash loop, as a shell runs a command: from the bench's own node process, each
  run also carried its fork (3–8 ms more).
`;
  writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), md);
  log('bench: wrote BENCHMARKS.md');
}

main().then(
  () => held.close(),
  (e) => {
    // Interrupted: the failure is the signal's doing, and the undos under way exit when they are done.
    if (held.stopping) return;
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exit(1);
  },
);
