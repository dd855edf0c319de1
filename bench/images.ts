// The image-node section of `npm run bench`: a real Debian 12 guest (the image `qnet image create debian` makes,
// configured by qnet's cloud-init seed) from QEMU start to ready on its first boot: with qnet, with a plain script
// doing the same by hand (qemu-img overlay, the same seed packed with xorriso, one qemu-system line), and with
// `--with-libvirt` with virt-install. Then memory and disk per guest, `down`, and what each of the image's trims
// saves a first boot. Both sides of every comparison run here, in this run. Everything the section makes (labs,
// namespaces, overlays, seeds, keys, processes) is removed at the end, on failure, and on Ctrl-C or SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readSync, rmSync, statSync, writeFileSync, fstatSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RealRunner } from '../src/host/run.js';
import { validateTopology } from '../src/topology/load.js';
import type { ResolvedLab } from '../src/topology/model.js';
import { defaultBootWindow, defaultRestoreWindow } from '../src/lab/slots.js';
import { up } from '../src/lab/up.js';
import { down } from '../src/lab/down.js';
import { readState } from '../src/lab/state.js';
import { findLab } from '../src/lab/discover.js';
import { findMarkedProcesses } from '../src/qemu/process.js';
import { ensureDebianImage, type DebianImageOptions } from '../src/guest/debian-image.js';
import { MASKED_UNITS } from '../src/guest/debian-recipe.js';
import { renderSeed, type Seed } from '../src/guest/cloud-init.js';
import { IMAGE_TB_MIB, imageNodeFiles } from '../src/guest/image-node.js';
import { inspectLabImages } from '../src/guest/image-check.js';
import { ensureImage } from '../src/guest/image.js';
import { dropSnapshot, labSnapshots } from '../src/lab/snapshot.js';
import { labDir, stateRoot } from '../src/dirs.js';
import { nodeFiles } from '../src/render/qemu.js';
import { CLI_REMOVED_SPLIT, stoppedHow } from './stopped.js';
import { ensureVirtinst, Libvirt, LV_TAG, type LvImageGuest, type LvSeed } from './libvirt.js';
import { forceDown, type Held } from './held.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = new RealRunner();

/** What the section needs from run.ts: its switches and its helpers, so that every section prints alike. */
export interface ImageBenchOptions {
  quick: boolean;
  withLibvirt: boolean;
  prefix: string;
  log: (s: string) => void;
  fmt: (ms: number) => string;
  cell: (xs: number[]) => string;
  /** The bench's undo list: what the section makes is removed on Ctrl-C or SIGTERM. */
  held: Held;
}

/** The section's table rows (markdown), and what BENCHMARKS.md says about the libvirt side. */
export interface ImageRows {
  boot: string[];
  mem: string[];
  down: string[];
  trims: string[];
  /** 10 Debian nodes of one shape: restored, first up, --cold, virt-install. */
  ten: string[];
  /** With --with-libvirt: what virt-install chose for its domains, or exactly why it was not measured. */
  libvirt?: { ok: boolean; text: string };
  ms: number;
}

// The bridge's /24 for every side (the host side .1, guests .10 on): each side runs in a namespace of its own.
const NET = '10.214.0';
// Each guest idles this long after the last one is ready before its memory and disk are read.
const IDLE_MS = 20_000;
// A first boot of three guests at once takes minutes under TCG: a bound, not an expectation.
const READY_TIMEOUT_MS = 900_000;
const MEMORY = 512; // image nodes' default, and the script's and virt-install's -m

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const since = (t0: bigint, t: bigint = process.hrtime.bigint()) => Number(t - t0) / 1e6;

function sh(argv: string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${(r.stderr || String(r.error ?? r.signal)).trim()}`);
  return r.stdout;
}

/**
 * The lab every side boots: n Debian nodes of one base on a bridge with a host address, static IPs. `cloudInit`:
 * configured by qnet's cloud-init seed, as the script and virt-install are (an empty user-data of the user's own
 * keeps qnet's resume hook out); otherwise as a user writes it, and qnet's resume hook configures the nodes.
 */
function imageLab(name: string, n: number, image: string, cloudInit = true): ResolvedLab {
  const nodes: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) nodes[`d${i}`] = { image, ...(cloudInit ? { cloudInit: { userData: {} } } : {}), nics: [{ network: 'lan', ip: `${NET}.${10 + i}` }] };
  return validateTopology({ name, networks: { lan: { subnet: `${NET}.0/24`, address: `${NET}.1` } }, nodes });
}

/** The QEMU's memory (RSS and PSS, KiB) and CPU time so far (clock ticks), from /proc. */
function procSample(pid: number): { rss: number; pss: number; ticks: number } {
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(roll)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss: kb('Rss'), pss: kb('Pss'), ticks: Number(f[11]) + Number(f[12]) };
}

/** Per guest after IDLE_MS of idling: RSS and PSS (MiB), CPU over the idle time (%), the overlay's bytes on disk. */
interface Sample {
  rss: number[];
  pss: number[];
  cpu: number[];
  disk: number[];
}

/** Idles IDLE_MS, then reads each QEMU's smaps_rollup and each overlay's allocated blocks (stat: blocks × 512). */
async function idleSample(pids: number[], overlays: string[]): Promise<Sample> {
  const a = pids.map(procSample);
  await sleep(IDLE_MS);
  const b = pids.map(procSample);
  return {
    rss: b.map((x) => x.rss / 1024),
    pss: b.map((x) => x.pss / 1024),
    cpu: b.map((x, i) => ((x.ticks - a[i]!.ticks) / 100 / (IDLE_MS / 1000)) * 100),
    disk: overlays.map((f) => statSync(f).blocks * 512),
  };
}

/** One side's boot of a lab: the whole (first command → last ready) and each guest's start → ready, in ms. */
interface Boot {
  wholeMs: number;
  guests: Array<{ node: string; ms: number }>;
  sample?: Sample;
}

/**
 * Waits until `file` (a serial console log) shows "qnet: READY" (the console echo of qnet-ready.service); resolves
 * with the time it was seen. Rejects on "qnet: ERROR", when `gone()` says the QEMU exited, or after the timeout.
 */
async function serialReady(file: string, what: string, gone: () => boolean): Promise<bigint> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let offset = 0;
  let tail = '';
  for (;;) {
    if (existsSync(file)) {
      const fd = openSync(file, 'r');
      try {
        const size = fstatSync(fd).size;
        if (size > offset) {
          const buf = Buffer.alloc(size - offset);
          readSync(fd, buf, 0, buf.length, offset);
          offset = size;
          // The last line and the new text: a line split across two reads is still found.
          const text = tail + buf.toString('latin1');
          if (/qnet: READY/.test(text)) return process.hrtime.bigint();
          const err = /qnet: ERROR[^\r\n]*/.exec(text);
          if (err) throw new Error(`${what}: the guest said ${err[0]}`);
          tail = text.slice(-256);
        }
      } finally {
        closeSync(fd);
      }
    }
    if (gone()) throw new Error(`${what}: QEMU exited before "qnet: READY" (${file}: ${tail.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, '').trim().split('\n').slice(-3).join(' | ')})`);
    if (Date.now() > deadline) throw new Error(`${what}: no "qnet: READY" on the serial console within ${READY_TIMEOUT_MS / 1000} s`);
    await sleep(100);
  }
}

/** `ssh-keygen` keys in `dir` and each node's seed as qnet renders it (renderSeed), for the script and virt-install. */
function makeSeeds(lab: ResolvedLab, dir: string): Record<string, Seed> {
  const key = (name: string, comment: string) => {
    sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path.join(dir, name)]);
    return { priv: readFileSync(path.join(dir, name), 'utf8'), pub: readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim() };
  };
  const labKey = key('lab_key', `bench lab ${lab.name}`);
  const seeds: Record<string, Seed> = {};
  for (const node of lab.nodes) {
    const host = key(`${node.name}_host_key`, `${node.name}.${lab.name}`);
    seeds[node.name] = renderSeed(lab, node, { labPublic: labKey.pub, hostPrivate: host.priv, hostPublic: host.pub });
  }
  return seeds;
}

/** A qnet lab from `up()` to ready, optionally sampled at idle, then taken down by the library or by the CLI. */
async function qnetSide(
  held: Held,
  lab: ResolvedLab,
  opts: { sample: boolean; down: 'library' | 'cli'; cold?: boolean; window?: boolean },
): Promise<Boot & { downMs: number; stopped: string; restored: number }> {
  held.add(`lab ${lab.name}`, () => forceDown(lab.name));
  try {
    const t0 = process.hrtime.bigint();
    // parallel 0: every node starts at once (the default window, cores + 1, is 3 here anyway); window: the default.
    await held.building(up(lab, { runner: run, accel: 'tcg', readyTimeoutMs: READY_TIMEOUT_MS, ...(opts.window ? {} : { parallel: 0 }), ...(opts.cold ? { cold: true } : {}) }));
    const wholeMs = since(t0);
    const state = await readState(lab.name);
    if (!state) throw new Error(`${lab.name}: no state file after up`);
    const guests = lab.nodes.map((n) => {
      const g = state.guests[n.name];
      if (!g?.readyAt) throw new Error(`${lab.name}/${n.name}: the state file has no readyAt`);
      return { node: n.name, ms: Date.parse(g.readyAt) - Date.parse(g.startedAt) };
    });
    // The signal the script and virt-install sides watch for is on qnet's consoles too (the same seed).
    for (const n of lab.nodes)
      if (!/qnet: READY/.test(readFileSync(nodeFiles(path.join(labDir(lab.name), n.name)).consoleLog, 'latin1'))) throw new Error(`${lab.name}/${n.name}: no "qnet: READY" on its serial console`);
    const sample = opts.sample
      ? await idleSample(lab.nodes.map((n) => state.guests[n.name]!.pid), lab.nodes.map((n) => imageNodeFiles(lab.name, n).overlay))
      : undefined;
    let downMs: number;
    let stopped: string;
    if (opts.down === 'library') {
      // down() with its defaults, as `qnet down` calls it: the ACPI power button, up to 30 s to power off.
      const d0 = process.hrtime.bigint();
      const r = await down(lab.name, { runner: run });
      downMs = since(d0);
      stopped = stoppedHow(r.removed);
    } else {
      // The CLI as a user runs it: a new node process, loading the CLI, the same down().
      const d0 = process.hrtime.bigint();
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [path.join(ROOT, 'bin/qnet.js'), 'down', lab.name], { stdio: ['ignore', 'ignore', 'pipe'] });
        held.child(p);
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.once('error', reject);
        p.once('close', (code) => resolve({ code, stderr }));
      });
      downMs = since(d0);
      if (r.code !== 0) throw new Error(`qnet down ${lab.name}: exit ${r.code}: ${r.stderr.trim()}`);
      const removed = /removed (.*)$/m.exec(r.stderr.replace(/\x1b\[[0-9;]*m/g, ''))?.[1] ?? '';
      stopped = stoppedHow(removed.split(CLI_REMOVED_SPLIT));
    }
    const restored = lab.nodes.filter((n) => state.guests[n.name]?.start === 'restored').length;
    return { wholeMs, guests, ...(sample ? { sample } : {}), downMs, stopped, restored };
  } catch (e) {
    // Interrupted: the bench's undo list removes the lab (two removals at once could each fail part-way).
    if (!held.stopping) await forceDown(lab.name);
    throw e;
  } finally {
    if (!held.stopping) held.drop(`lab ${lab.name}`);
  }
}

/**
 * The same lab by hand: keys with ssh-keygen, each node's seed (qnet's renderSeed) packed by xorriso, a namespace
 * with a bridge and taps, `qemu-img create` overlays, then one qemu-system-x86_64 line per node, all at once; ready
 * when its serial log shows "qnet: READY". Teardown: kill the QEMUs, delete the namespace and the directory.
 */
async function scriptSide(held: Held, prefix: string, lab: ResolvedLab, base: string): Promise<Boot> {
  const ns = `${prefix}-imgplain`;
  const dir = mkdtempSync(`/tmp/qnet-bench-img-${prefix}-`);
  const procs: ChildProcess[] = [];
  const undo = async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
    if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'delete', ns]);
    rmSync(dir, { recursive: true, force: true });
  };
  held.add(`namespace ${ns}`, undo);
  try {
    const t0 = process.hrtime.bigint();
    const seeds = makeSeeds(lab, dir);
    for (const node of lab.nodes) {
      const s = path.join(dir, `${node.name}-seed`);
      mkdirSync(s);
      for (const f of ['meta-data', 'user-data', 'network-config'] as const) writeFileSync(path.join(s, f), seeds[node.name]![f]);
      sh(['xorriso', '-as', 'mkisofs', '-quiet', '-V', 'cidata', '-J', '-r', '-o', `${s}.iso`, s]);
    }
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'add', 'kbr0', 'type', 'bridge']);
    sh(['ip', '-n', ns, 'addr', 'add', `${NET}.1/24`, 'dev', 'kbr0']);
    sh(['ip', '-n', ns, 'link', 'set', 'kbr0', 'up']);
    const started: bigint[] = [];
    for (const [i, node] of lab.nodes.entries()) {
      sh(['ip', '-n', ns, 'tuntap', 'add', 'dev', `tap${i}`, 'mode', 'tap']);
      sh(['ip', '-n', ns, 'link', 'set', `tap${i}`, 'master', 'kbr0']);
      sh(['ip', '-n', ns, 'link', 'set', `tap${i}`, 'up']);
      sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path.join(dir, `${node.name}.qcow2`)]);
    }
    for (const [i, node] of lab.nodes.entries()) {
      const out = openSync(path.join(dir, `${node.name}.qemu.log`), 'a');
      started.push(process.hrtime.bigint());
      procs.push(
        spawn('ip', [
          'netns', 'exec', ns, 'qemu-system-x86_64', '-accel', `tcg,tb-size=${IMAGE_TB_MIB}`, '-m', String(MEMORY),
          '-hda', path.join(dir, `${node.name}.qcow2`), '-cdrom', path.join(dir, `${node.name}-seed.iso`),
          '-display', 'none', '-serial', `file:${path.join(dir, `${node.name}.serial.log`)}`,
          '-netdev', `tap,id=n0,ifname=tap${i},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${node.nics[0]!.mac}`,
          // The guest agent's port: the seed starts qemu-guest-agent, whose unit waits for this device (90 s without it).
          '-device', 'virtio-serial-pci', '-chardev', `socket,id=ga,path=${path.join(dir, `${node.name}.ga.sock`)},server=on,wait=off`,
          '-device', 'virtserialport,chardev=ga,name=org.qemu.guest_agent.0',
        ], { stdio: ['ignore', out, out] }),
      );
      closeSync(out);
    }
    const ready = await Promise.all(
      lab.nodes.map((node, i) => serialReady(path.join(dir, `${node.name}.serial.log`), `script ${node.name}`, () => procs[i]!.exitCode !== null || procs[i]!.signalCode !== null)),
    );
    const wholeMs = Math.max(...ready.map((t) => since(t0, t)));
    const guests = lab.nodes.map((n, i) => ({ node: n.name, ms: since(started[i]!, ready[i]!) }));
    // `ip netns exec` execs the command: each spawned pid is its QEMU.
    const sample = await idleSample(procs.map((p) => p.pid!), lab.nodes.map((n) => path.join(dir, `${n.name}.qcow2`)));
    return { wholeMs, guests, sample };
  } finally {
    await undo();
    held.drop(`namespace ${ns}`);
  }
}

/** The same lab with virt-install in the bench's private libvirt (see Libvirt.imageLab). */
async function libvirtSide(lv: Libvirt, prefix: string, lab: ResolvedLab, base: string): Promise<Boot & { chose: string }> {
  const keys = mkdtempSync(`/tmp/qnet-bench-img-${prefix}-keys-`);
  try {
    const seeds = makeSeeds(lab, keys);
    const lvSeeds: Record<string, LvSeed> = Object.fromEntries(Object.entries(seeds).map(([n, s]) => [n, { 'meta-data': s['meta-data'], 'user-data': s['user-data'], 'network-config': s['network-config'] }]));
    return await lv.imageLab(lab, base, NET, lvSeeds, async (guests: LvImageGuest[], t0) => {
      const seen = new Map<string, number>();
      const gone = (g: LvImageGuest) => () => {
        // Gone once it was seen running and is no more (the QEMU starts inside virt-install, before this).
        const pid = lv.qemuPid(g.domain);
        if (pid) seen.set(g.domain, pid);
        return !pid && seen.has(g.domain);
      };
      const ready = await Promise.all(guests.map((g) => serialReady(g.serial, `virt-install ${g.node}`, gone(g))));
      const wholeMs = Math.max(...ready.map((t) => since(t0, t)));
      const pids = guests.map((g) => lv.qemuPid(g.domain));
      if (pids.some((p) => p === undefined)) throw new Error('virt-install: a domain\'s QEMU is not running after it was ready');
      const sample = await idleSample(pids as number[], guests.map((g) => g.overlay));
      return { wholeMs, guests: guests.map((g, i) => ({ node: g.node, ms: since(g.calledAt, ready[i]!) })), sample, chose: lv.describeDomain(guests[0]!.domain) };
    });
  } finally {
    rmSync(keys, { recursive: true, force: true });
  }
}

/** The image variants of the trims table: what each adds back to the default image. */
const TRIMS: Array<{ what: string; opts: DebianImageOptions }> = [
  { what: 'the default image (`qnet image create debian`)', opts: {} },
  { what: '+ apparmor (a Recommends of the base packages)', opts: { packages: ['apparmor'] } },
  { what: '+ systemd-timesyncd, unattended-upgrades (Recommends)', opts: { packages: ['systemd-timesyncd', 'unattended-upgrades'] } },
  { what: `the masked units left enabled (${MASKED_UNITS.join(', ')})`, opts: { keepUnits: [...MASKED_UNITS] } },
];

/** Fails when anything the section made is still there (names with the bench's prefix or libvirt's tag). */
async function checkNothingLeft(prefix: string): Promise<void> {
  const left: string[] = [];
  const mine = (s: string) => s.startsWith(`${prefix}-`) || s.startsWith(`qnet-${prefix}-`) || s.startsWith(`${LV_TAG}-`);
  for (const ns of sh(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '').filter(mine)) left.push(`namespace ${ns}`);
  for (const p of await findMarkedProcesses()) if (p.lab.startsWith(`${prefix}-`)) left.push(`process ${p.pid} of lab ${p.lab}`);
  for (const d of [path.dirname(labDir('x')), stateRoot()])
    for (const e of existsSync(d) ? sh(['ls', '-A', d]).split('\n').filter((x) => x.startsWith(`${prefix}-`)) : []) left.push(`${d}/${e}`);
  for (const e of sh(['ls', '-A', '/tmp']).split('\n').filter((x) => x.startsWith(`qnet-bench-img-${prefix}-`))) left.push(`/tmp/${e}`);
  for (const lab of [`${prefix}-img-1`, `${prefix}-img-3`, `${prefix}-img-10`, ...TRIMS.map((_, i) => `${prefix}-trim-${i}`)]) if ((await findLab(lab)).present) left.push(`lab ${lab}`);
  if (left.length) throw new Error(`the image section left ${left.join(', ')}`);
}

/** Runs the image-node section and returns its rows; leaves nothing behind, also on failure and Ctrl-C. */
export async function imageSection(o: ImageBenchOptions): Promise<ImageRows> {
  const { fmt, cell, log, held } = o;
  const started = Date.now();
  const rows: ImageRows = { boot: [], mem: [], down: [], trims: [], ten: [], ms: 0 };
  let lv: Libvirt | undefined;
  try {
    const image = await held.building(ensureDebianImage(run, {}, (m) => log(`images: ${m}`)));
    log(`images: Debian image ${image.key} (${image.file})`);
    if (o.withLibvirt) {
      try {
        ensureVirtinst(log);
        lv = await Libvirt.start(log, { signals: false });
        const l = lv;
        held.add('libvirt', () => l.close());
      } catch (e) {
        rows.libvirt = { ok: false, text: `not measured: the private libvirt could not be started: ${(e as Error).message}` };
      }
    }
    const each = (b: Boot) => (b.guests.length === 1 ? fmt(b.guests[0]!.ms) : b.guests.map((g) => `${g.node} ${fmt(g.ms)}`).join(', '));
    const mib = (xs: number[]) => (xs.length === 1 ? `${xs[0]!.toFixed(0)} MiB` : `${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0)} MiB (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`);
    const pct = (xs: number[]) => `${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)} %`;
    const memRow = (n: number, how: string, s: Sample) => `| ${n} | ${how} | ${mib(s.rss)} | ${mib(s.pss)} | ${pct(s.cpu)} | ${mib(s.disk.map((b) => b / 2 ** 20))} |`;
    let firstDefault: number | undefined;
    for (const n of o.quick ? [1] : [1, 3]) {
      const lab = imageLab(`${o.prefix}-img-${n}`, n, image.file);
      log(`images ${n}: qnet up`);
      const q = await qnetSide(held, lab, { sample: true, down: 'library' });
      log(`images ${n}: qnet ${fmt(q.wholeMs)} (${each(q)}), down ${fmt(q.downMs)} (${q.stopped}); plain script`);
      if (n === 1) firstDefault = q.guests[0]!.ms;
      const s = await scriptSide(held, o.prefix, lab, image.file);
      log(`images ${n}: script ${fmt(s.wholeMs)} (${each(s)})`);
      let v: (Boot & { chose: string }) | undefined;
      if (lv && rows.libvirt?.ok !== false) {
        try {
          v = await libvirtSide(lv, o.prefix, lab, image.file);
          rows.libvirt = { ok: true, text: v.chose };
          log(`images ${n}: virt-install ${fmt(v.wholeMs)} (${each(v)})`);
        } catch (e) {
          rows.libvirt = { ok: false, text: `not measured: ${(e as Error).message}` };
          log(`images ${n}: virt-install failed: ${(e as Error).message}`);
        }
      }
      const ratio = (b: Boot) => (b.wholeMs / q.wholeMs).toFixed(2);
      rows.boot.push(`| ${n} | qnet \`up()\` | ${fmt(q.wholeMs)} | ${each(q)} | 1.00 |`);
      rows.boot.push(`| ${n} | plain script | ${fmt(s.wholeMs)} | ${each(s)} | ${ratio(s)} |`);
      if (v) rows.boot.push(`| ${n} | virt-install | ${fmt(v.wholeMs)} | ${each(v)} | ${ratio(v)} |`);
      rows.mem.push(memRow(n, 'qnet', q.sample!), memRow(n, 'plain script', s.sample!));
      if (v) rows.mem.push(memRow(n, 'virt-install', v.sample!));
      rows.down.push(`| ${n} | library \`down()\` (ACPI button, up to 30 s grace) | ${fmt(q.downMs)} | ${q.stopped} |`);
    }
    if (!o.quick) {
      // 10 Debian nodes of one shape as a user writes them (qnet's resume hook): every node booting (--cold, the
      // default window), the first up of the shape (one boots and is saved, nine are restored), every later up
      // (all restored); virt-install boots the same image (with cloud-init: it cannot use qnet's hook).
      const n = 10;
      const lab = imageLab(`${o.prefix}-img-10`, n, image.file, false);
      const inspected = await inspectLabImages(run, lab);
      const guestImage = await ensureImage(run);
      const states = await labSnapshots(inspected, guestImage, 'tcg', run);
      log(`images 10: qnet --cold`);
      const cold = await qnetSide(held, lab, { sample: false, down: 'cli', cold: true, window: true });
      for (const st of new Set(Object.values(states).map((x) => x.path))) await dropSnapshot(st);
      log(`images 10: --cold ${fmt(cold.wholeMs)}; first up of the shape`);
      const first = await qnetSide(held, lab, { sample: false, down: 'cli', window: true });
      const warm = [];
      for (let r = 0; r < 2; r++) warm.push(await qnetSide(held, lab, { sample: r === 0, down: 'cli', window: true }));
      log(`images 10: first ${fmt(first.wholeMs)} (${first.restored} restored), restored ${warm.map((w) => fmt(w.wholeMs)).join(', ')}`);
      const per = (b: Boot) => `${fmt(Math.min(...b.guests.map((g) => g.ms)))}–${fmt(Math.max(...b.guests.map((g) => g.ms)))}`;
      rows.ten.push(`| qnet, every later up (each node restored) | ${warm.map((w) => fmt(w.wholeMs)).join(', ')} | ${warm.map((w) => `${w.restored} of ${n}`).join(', ')} | ${per(warm[0]!)} | ${fmt(warm[0]!.downMs)} |`);
      rows.ten.push(`| qnet, first up of the shape (one boots and is saved) | ${fmt(first.wholeMs)} | ${first.restored} of ${n} | ${per(first)} | ${fmt(first.downMs)} |`);
      rows.ten.push(`| qnet \`--cold\` (every node boots, at most ${defaultBootWindow()} at once) | ${fmt(cold.wholeMs)} | 0 of ${n} | ${per(cold)} | ${fmt(cold.downMs)} |`);
      rows.mem.push(memRow(n, 'qnet, restored', warm[0]!.sample!));
      if (lv && rows.libvirt?.ok !== false) {
        try {
          const v = await libvirtSide(lv, o.prefix, imageLab(`${o.prefix}-img-10`, n, image.file), image.file);
          rows.ten.push(`| virt-install, all at once (cloud-init) | ${fmt(v.wholeMs)} | | ${per(v)} | |`);
          rows.mem.push(memRow(n, 'virt-install', v.sample!));
          log(`images 10: virt-install ${fmt(v.wholeMs)}`);
        } catch (e) {
          rows.ten.push(`| virt-install | not measured: ${(e as Error).message} | | | |`);
        }
      }
      // Every variant is built (or taken from the cache) before any of them boots: a build takes both cores.
      const images = [];
      for (const t of TRIMS) images.push(await held.building(ensureDebianImage(run, t.opts, (m) => log(`images: ${m}`))));
      const boots: Array<{ ms: number; downMs: number; stopped: string }> = [];
      for (const [i, t] of TRIMS.entries()) {
        const lab = imageLab(`${o.prefix}-trim-${i}`, 1, images[i]!.file);
        log(`images: first boot of ${t.what} (${images[i]!.key})`);
        const q = await qnetSide(held, lab, { sample: false, down: 'cli' });
        boots.push({ ms: q.guests[0]!.ms, downMs: q.downMs, stopped: q.stopped });
        log(`images: ${t.what}: ready in ${fmt(q.guests[0]!.ms)}, qnet down ${fmt(q.downMs)} (${q.stopped})`);
      }
      for (const [i, t] of TRIMS.entries()) {
        const d = boots[i]!.ms - boots[0]!.ms;
        const build = images[i]!.buildMs ? `built in ${fmt(images[i]!.buildMs)}` : 'cached';
        rows.trims.push(`| ${t.what} | ${fmt(boots[i]!.ms)} | ${i === 0 ? (firstDefault !== undefined ? `(the 1-guest row above: ${fmt(firstDefault)})` : '') : `${d >= 0 ? '+' : '−'}${fmt(Math.abs(d))}`} | ${fmt(boots[i]!.downMs)} (${boots[i]!.stopped}) | ${images[i]!.key}, ${build} |`);
      }
      rows.down.push(`| 1 | CLI \`node bin/qnet.js down LAB\` (the default image's lab of the trims table) | ${fmt(boots[0]!.downMs)} | ${boots[0]!.stopped} |`);
      rows.down.push(`| 1 | CLI, every image of the trims table | ${cell(boots.map((b) => b.downMs))} | |`);
    } else rows.down.push('| 1 | CLI `node bin/qnet.js down LAB` | not measured (--quick) | |');
  } finally {
    lv?.close();
    held.drop('libvirt');
  }
  await checkNothingLeft(o.prefix);
  rows.ms = Date.now() - started;
  log(`images: section took ${fmt(rows.ms)}`);
  return rows;
}

/** The section's text for BENCHMARKS.md (its tables with the paragraphs that say what was measured). */
export function imagesMarkdown(r: ImageRows, o: { quick: boolean; withLibvirt: boolean; fmt: (ms: number) => string }): string {
  const lvText = !o.withLibvirt
    ? 'virt-install was not run (`--with-libvirt` was not given).'
    : r.libvirt?.ok
      ? `With \`--with-libvirt\`, also \`virt-install --import --cloud-init meta-data=…,user-data=…,network-config=…\` (Debian's virtinst, in the bench's private libvirtd, qemu:///system, \`--virt-type qemu --osinfo\` as below, \`--memory ${MEMORY} --vcpus 1\`, the same seed files, \`--disk\` an overlay of a copy of the image, bus virtio, \`--network\` model virtio with the node's MAC on an isolated libvirt network, the agent's channel, \`--serial file\`, the TCG cache set to ${IMAGE_TB_MIB} MiB as qnet's image nodes with \`--xml ./features/tcg/tb-cache=${IMAGE_TB_MIB}\`), one virt-install after the other as a loop would; each guest timed from its \`qemu-img create\` and virt-install until "qnet: READY" in its serial file. its domains: ${r.libvirt.text}.`
      : `virt-install: ${r.libvirt?.text ?? 'not measured'}.`;
  return `## Image nodes: a real Debian 12 guest, first boot

The Debian image \`qnet image create debian\` makes (cached by the bench; every guest on a qcow2 overlay of its own,
the image itself never written), configured by qnet's cloud-init seed (each node given an empty user-data of its
own, which keeps qnet's resume hook out: the same cloud-init boot on every side; the hook is measured below), ${MEMORY} MiB, one vCPU, one virtio NIC on a
bridge with a host address (${NET}.1/24, static addresses .10 on), under TCG with a ${IMAGE_TB_MIB} MiB translation cache (what qnet gives image nodes).
Ready means the same signal on every side: qnet-ready.service, which runs after cloud-init's final stage, saying
READY. qnet (the library \`up()\`, default readiness: READY on its virtio-serial port, then the guest agent
answering) is timed from the call until it returns; each guest from the start of its QEMU to the moment qnet
recorded it ready (\`startedAt\`/\`readyAt\` in the state file). The plain script does what a person does by hand:
\`ssh-keygen\`, the same seed (qnet's renderSeed) packed with \`xorriso -as mkisofs -V cidata -J -r\`, a namespace with
a bridge and taps, \`qemu-img create -f qcow2 -F qcow2 -b BASE\`, then \`qemu-system-x86_64 -accel tcg,tb-size=${IMAGE_TB_MIB} -m
${MEMORY} -hda overlay -cdrom seed.iso -display none -serial file:LOG -netdev tap -device virtio-net-pci\` per guest,
all at once (QEMU's default machine and CPU otherwise), ready when its serial log shows "qnet: READY" (the same
unit echoes it to /dev/console, which is ttyS0). The script's QEMU also has the guest agent's virtio-serial port:
the seed's \`systemctl start qemu-guest-agent\` waits for that device, and without it cloud-init's final stage stalls
for systemd's 90 s device timeout (one guest: 177 s to ready instead of about 85 s, measured while writing this
bench). Whole: from the first command to the last guest ready; ratio: whole against qnet's. ${lvText}

| guests at once | how | whole → last ready | each guest: start → ready | ratio to qnet |
| --- | --- | --- | --- | --- |
${r.boot.join('\n')}

### 10 Debian nodes of one shape: restored from a saved state, cold, and virt-install

The same image, the 10 nodes as a user writes them (no user-data of their own), so that qnet configures them
with its resume hook instead of cloud-init (qnet image create puts it in the image; cloud-init stays out of those
boots). \`qnet up FILE\` with its defaults (at most cores + 1 = ${defaultBootWindow()} nodes booting at once, cores − 1 = ${defaultRestoreWindow()} being restored),
timed to its return with every node ready (READY, then the guest agent), and \`qnet down LAB\`: every later up
(each node restored from the saved state of the shape and its disk, twice), the first up of the shape (one node boots
and is saved at the hook's snapshot point, nine are restored once it is), and \`--cold\` (every node boots, no saved
state). virt-install boots the same image with cloud-init, all 10 one after the other as above. Each node: start of
its QEMU → ready, the fastest and the slowest of the 10.

| how | up → every node ready | restored | each node: start → ready | qnet down |
| --- | --- | --- | --- | --- |
${r.ten.join('\n') || '| not measured (--quick) | | | | |'}

### Memory and disk per Debian guest

Each guest's QEMU after every guest was ready and then idled ${IDLE_MS / 1000} s: RSS and PSS from
/proc/PID/smaps_rollup, its CPU over those ${IDLE_MS / 1000} s, and its overlay's allocated size on disk (stat: blocks × 512)
after the boot. Means over the guests (min–max) where there are several. qnet's guests have a virtio-balloon with free
page reporting (what the guest frees goes back to the host); the script's have no balloon, virt-install's libvirt's
default balloon without free page reporting.

| guests | how | RSS | PSS | CPU while idle | overlay on disk |
| --- | --- | --- | --- | --- | --- |
${r.mem.join('\n')}

### down of Debian guests

\`down\` as \`qnet down\` does it: the ACPI power button to every guest at once, up to 30 s for each to power off
(QEMU exits when it has), then the namespace and run directory (overlays, seeds, keys). The library \`down()\` with
its defaults, and the CLI as a user runs it (a new node process, loading the CLI first); how the guests stopped is
what \`down\` reported.

| guests | how | time | guests |
| --- | --- | --- | --- |
${r.down.join('\n')}

### What the Debian image leaves out, and what each costs a first boot

One first boot each, 1 guest, qnet \`up()\` with the default readiness, start of its QEMU → ready: the default image
against images built with the same recipe and one thing put back (\`ensureDebianImage\` with \`packages\` or
\`keepUnits\`; each a cached build of its own). Each lab taken down with the CLI \`qnet down\`. The default image
boots twice in this run (its row here and the 1-guest row above): the difference between those two is how much one
first boot varies, and a difference smaller than that is not a measured cost.

| image | first boot → ready | against the default | qnet down (CLI) | build |
| --- | --- | --- | --- | --- |
${r.trims.join('\n') || '| not measured (--quick) | | | | |'}

The image section took ${o.fmt(r.ms)}.
`;
}
