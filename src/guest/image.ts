// The built-in guest image: a Debian kernel (unpacked from its .deb, never installed) and a busybox initramfs.
// Cached under a key of all its inputs, rebuilt only when one of them changes.
import { createHash } from 'node:crypto';
import { exists } from '../host/fs.js';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { CommandRunner } from '../host/run.js';
import { aptCandidates } from '../host/apt.js';
import { cacheRoot } from '../dirs.js';
import type { GuestImage } from '../render/qemu.js';
import { NIC_MODELS } from '../topology/nic-models.js';
import { BOOT, INIT, INITTAB, LAZY_WRAPPER, PROFILE, UDHCPC } from './init-script.js';
import { loadOrder, parseAliases, parseModulesDep, parseSoftdeps } from './modules.js';
import { parseLdd } from './libs.js';

/** Bump when the layout of the image changes in a way its other inputs do not show. */
const BUILDER_VERSION = 6;

/** Modules the image carries: the boot essentials and a driver per NIC model. */
export const IMAGE_MODULES = [
  'virtio_pci',
  'virtio_console',
  'qemu_fw_cfg',
  'virtio_balloon',
  ...Object.values(NIC_MODELS).map((m) => m.module),
  // Router guests: NAT and stateful forwarding with nftables (loaded only on nodes that route).
  'nft_chain_nat',
  'nft_masq',
  'nft_ct',
  // VLAN sub-interfaces (loaded on nodes that have them); a bridge and bonding for labs of switches and routers
  // talking STP or LACP to each other (`modprobe bonding` in the guest: busybox's, from the modules.dep below).
  '8021q',
  'bridge',
  'bonding',
];

/**
 * Debian packages unpacked (not installed) for binaries the guest carries, and the binaries taken from them.
 * A package with a `bundle` is kept compressed in the image with the libraries only it needs, and unpacked in
 * the guest on first use (see LAZY_WRAPPER): its files would otherwise take guest RAM in every guest, and the
 * peak while the kernel unpacks the initramfs is what sets the smallest memory a guest boots in.
 */
const GUEST_DEBS: Array<{ pkg: string; files: Array<[string, string]>; bundle?: string }> = [
  { pkg: 'qemu-guest-agent', files: [['usr/sbin/qemu-ga', 'usr/sbin/qemu-ga']] },
  { pkg: 'nftables', files: [['usr/sbin/nft', 'usr/sbin/nft']] },
  // Throughput measurements between guests (`npm run bench`); its libraries come from their packages.
  { pkg: 'iperf3', files: [['usr/bin/iperf3', 'usr/bin/iperf3']], bundle: 'iperf3' },
  { pkg: 'libiperf0', files: [] },
  { pkg: 'libsctp1', files: [] },
];

/**
 * Kernel command line: serial console, quiet, no reboot loop on panic. For idle guests under TCG (each wakeup
 * costs a few hundred microseconds of emulation): `tsc=reliable` stops the clocksource watchdog reading the
 * HPET twice a second (QEMU derives the TSC and HPET from the same host clock), and proactive compaction
 * (kcompactd looking every 500 ms) is off. `no_timer_check`: on a host with many more guests booting than cores,
 * the kernel's early check that timer interrupts arrive can starve and panic ("IO-APIC + timer doesn't work").
 * `ipv6.disable=1`: a lab is IPv4; without it every guest coming up sends router solicitations, DAD and MLD to
 * its bridge, flooded to every other guest, each of which wakes and handles them under TCG: work that grows with
 * the square of the guests starting (measured with 250 guests: see BENCHMARKS.md).
 * The rest trims what every guest runs and every idle guest wakes for, for nothing in a lab guest: `lsm=capability
 * audit=0` (no AppArmor, TOMOYO or audit hooks on every exec, open and socket: the built-in guest's first boot to its
 * snapshot point 5.9 -> 2.9 s of guest time, 1,100 fewer blocks of code translated after a restore), `psi=0
 * cgroup_disable=memory` (pressure and memory-cgroup accounting in the scheduler and on every page fault, and their
 * 2-second workers), `nowatchdog` (the soft-lockup timer every 4 s) and `vm.stat_interval=120` (vmstat's worker
 * every second): an idle restored guest's wake-ups 2.5/s -> 0.5/s, its CPU 0.1 -> 0.056 % of a host core.
 */
export const KERNEL_CMDLINE = 'console=ttyS0 quiet panic=-1 rdinit=/init tsc=reliable sysctl.vm.compaction_proactiveness=0 no_timer_check ipv6.disable=1 lsm=capability audit=0 psi=0 cgroup_disable=memory nowatchdog sysctl.vm.stat_interval=120';

export interface ImageManifest extends GuestImage {
  key: string;
  kernelPackage: string;
  kernelVersion: string;
  busyboxVersion: string;
  modules: string[];
  builtAt: string;
}

export type Progress = (message: string) => void;


/** The kernel package that linux-image-amd64 currently points to. */
async function kernelPackage(run: CommandRunner): Promise<string> {
  if (process.env.QNET_KERNEL_PACKAGE) return process.env.QNET_KERNEL_PACKAGE;
  const r = await run.run(['apt-cache', 'depends', 'linux-image-amd64'], { allowFail: true });
  const m = /Depends:\s*(linux-image-[0-9][^\s]*)/.exec(r.stdout);
  if (!m) throw new RuntimeError('cannot find the Debian kernel package (linux-image-amd64); run `apt-get update` and try again');
  return m[1]!;
}

/** The versions apt would download for packages (part of the image key, so updates rebuild); each must be known. */
async function candidateVersions(run: CommandRunner, pkgs: string[]): Promise<Record<string, string>> {
  const out = await aptCandidates(run, pkgs);
  for (const p of pkgs)
    if (!out[p]) throw new RuntimeError(`apt knows no version of ${p}; run \`apt-get update\` and try again`);
  return out;
}

async function busyboxVersion(run: CommandRunner): Promise<string> {
  const r = await run.run(['dpkg-query', '-W', '-f', '${Version}', 'busybox-static'], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim() || !(await exists('/bin/busybox')))
    throw new RuntimeError('busybox-static is not installed; run `apt-get install busybox-static` (or `npm run setup`)');
  return r.stdout.trim();
}

/** Downloads a package's .deb into the cache if it is not there yet; returns its path. */
async function fetchDeb(run: CommandRunner, pkg: string, version: string, progress: Progress): Promise<string> {
  const dir = path.join(cacheRoot(), 'debs');
  await mkdir(dir, { recursive: true });
  const prefix = `${pkg}_${version.replace(/:/g, '%3a')}_`;
  const have = (await readdir(dir)).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  if (have) return path.join(dir, have);
  progress(`downloading ${pkg} ${version} (unpacked into the guest image, not installed on this host)`);
  await run.run(['apt-get', 'download', '-o', 'APT::Sandbox::User=root', pkg], { cwd: dir, timeoutMs: 600_000 });
  const got = (await readdir(dir)).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  if (!got) throw new RuntimeError(`apt-get download ${pkg} produced no .deb in ${dir}`);
  return path.join(dir, got);
}

function imageKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** Where the compressed payload of a bzImage starts, and the tool that unpacks it (xz, zstd or gzip). */
export function findKernelPayload(image: Buffer): { offset: number; argv: string[] } | null {
  const magics: Array<[Buffer, string[]]> = [
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc', '--single-stream']],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dcq']],
    [Buffer.from([0x1f, 0x8b, 0x08]), ['gzip', '-dc']],
  ];
  for (const [magic, argv] of magics) {
    const offset = image.indexOf(magic);
    if (offset >= 0) return { offset, argv };
  }
  return null;
}

/** Writes the kernel's uncompressed ELF (vmlinux) out of a bzImage; false if it cannot (then boot the bzImage). */
async function extractVmlinux(run: CommandRunner, bzImage: string, out: string): Promise<boolean> {
  const found = findKernelPayload(await readFile(bzImage));
  if (!found) return false;
  // The tool reads the payload from the offset on; what follows the stream is ignored (or warned about).
  await run.run(['sh', '-c', 'o=$1 f=$2 out=$3; shift 3; tail -c +"$o" "$f" | "$@" > "$out" 2>/dev/null; exit 0', 'extract', String(found.offset + 1), bzImage, out, ...found.argv]).catch(() => undefined);
  try {
    const head = Buffer.alloc(4);
    const { open } = await import('node:fs/promises');
    const fh = await open(out, 'r');
    await fh.read(head, 0, 4, 0);
    await fh.close();
    if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return true;
  } catch {
    // fall through
  }
  await rm(out, { force: true });
  return false;
}

/** Packs `root` as a gzip-compressed newc cpio (compressed, the guest needs less RAM while it unpacks). */
async function cpioNewc(run: CommandRunner, root: string, out: string): Promise<void> {
  const files: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(path.join(root, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      files.push(r);
      if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
  // Sorted names, root ownership and a fixed mtime make the archive reproducible.
  await run.run(['touch', '-h', '-d', '@0', ...files.map((f) => path.join(root, f))]);
  await run.run(['sh', '-c', 'cd "$1" && cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -n -6 > "$2"', 'cpio', root, out], {
    input: files.join('\n') + '\n',
  });
}

/** Returns the cached image for the current inputs, building it first when needed. */
export async function ensureImage(run: CommandRunner, progress: Progress = () => {}, force = false, recheck = false): Promise<ImageManifest> {
  // Asking apt for its candidate versions costs seconds: do it at most once a day (and on every `image build`),
  // as long as nothing local that goes into the image changed.
  const bb = await busyboxVersion(run);
  const localKey = imageKey({ BUILDER_VERSION, bb, GUEST_DEBS, INIT, INITTAB, PROFILE, BOOT, UDHCPC, LAZY_WRAPPER, IMAGE_MODULES, KERNEL_CMDLINE });
  const currentPath = path.join(cacheRoot(), 'images', 'current.json');
  if (!force && !recheck) {
    try {
      const cur = JSON.parse(await readFile(currentPath, 'utf8')) as { localKey: string; manifest: string; checkedAt: number };
      if (cur.localKey === localKey && Date.now() - cur.checkedAt < APT_RECHECK_MS && (await exists(cur.manifest)))
        return JSON.parse(await readFile(cur.manifest, 'utf8')) as ImageManifest;
    } catch {
      // no current image yet
    }
  }
  const m = await ensureImageChecked(run, progress, force, bb);
  await writeFile(currentPath, JSON.stringify({ localKey, manifest: path.join(path.dirname(m.kernel), 'manifest.json'), checkedAt: Date.now() }) + '\n');
  return m;
}

const APT_RECHECK_MS = 24 * 3600 * 1000;

async function ensureImageChecked(run: CommandRunner, progress: Progress, force: boolean, bbVersion: string): Promise<ImageManifest> {
  const pkg = await kernelPackage(run);
  const versions = await candidateVersions(run, [pkg, ...GUEST_DEBS.map((d) => d.pkg)]);
  const kernelVersion = versions[pkg]!;
  const debVersions: Record<string, string> = {};
  for (const d of GUEST_DEBS) debVersions[d.pkg] = versions[d.pkg]!;
  const inputs = { BUILDER_VERSION, pkg, kernelVersion, bbVersion, debVersions, GUEST_DEBS, INIT, INITTAB, PROFILE, BOOT, UDHCPC, LAZY_WRAPPER, IMAGE_MODULES, KERNEL_CMDLINE };
  const key = imageKey(inputs);
  const dir = path.join(cacheRoot(), 'images', key);
  const manifestPath = path.join(dir, 'manifest.json');
  if (!force && (await exists(manifestPath))) return JSON.parse(await readFile(manifestPath, 'utf8')) as ImageManifest;

  const deb = await fetchDeb(run, pkg, kernelVersion, progress);
  const extraDebs = await Promise.all(GUEST_DEBS.map(async (d) => ({ ...d, deb: await fetchDeb(run, d.pkg, debVersions[d.pkg]!, progress) })));
  progress(`building the guest image ${key} (${pkg}, busybox ${bbVersion})`);
  await mkdir(path.join(cacheRoot(), 'images'), { recursive: true });
  const work = await mkdtemp(path.join(cacheRoot(), 'images', '.build-'));
  try {
    const kx = path.join(work, 'kernel');
    await run.run(['dpkg-deb', '-x', deb, kx]);
    const kver = (await readdir(path.join(kx, 'lib/modules')))[0];
    if (!kver) throw new RuntimeError(`${deb} holds no kernel modules`);
    await run.run(['depmod', '-b', kx, kver]);
    const mdir = path.join(kx, 'lib/modules', kver);
    const index = {
      deps: parseModulesDep(await readFile(path.join(mdir, 'modules.dep'), 'utf8')),
      softdeps: parseSoftdeps(await readFile(path.join(mdir, 'modules.softdep'), 'utf8')),
      aliases: parseAliases(await readFile(path.join(mdir, 'modules.alias'), 'utf8')),
    };
    const deps = index.deps;

    const root = path.join(work, 'root');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'etc/qnet', 'lib/modules/order', 'tmp', 'run', 'root'])
      await mkdir(path.join(root, d), { recursive: true });
    await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
    const needed = new Set<string>();
    for (const m of IMAGE_MODULES) {
      const order = loadOrder(index, m);
      order.forEach((n) => needed.add(n));
      await writeFile(path.join(root, 'lib/modules/order', m), order.join('\n') + '\n');
    }
    for (const n of needed)
      await copyFile(path.join(kx, 'lib/modules', kver, deps.get(n)!.file), path.join(root, 'lib/modules', `${n}.ko`));
    // modules.dep for busybox's modprobe in the guest (`modprobe bonding`): each module with what it needs, the
    // first to load last (as depmod writes it), by absolute path (they all lie flat in /lib/modules).
    await mkdir(path.join(root, 'lib/modules', kver), { recursive: true });
    const depLines = [...needed].sort().map((n) => `/lib/modules/${n}.ko:${loadOrder(index, n).slice(0, -1).reverse().map((d) => ` /lib/modules/${d}.ko`).join('')}`);
    await writeFile(path.join(root, 'lib/modules', kver, 'modules.dep'), depLines.join('\n') + '\n');
    // Dynamic binaries from their packages, with the shared libraries ldd resolves: from the unpacked packages
    // when one of them ships it (libnftables, libiperf, libsctp), otherwise from this (Debian) host.
    const unpacked: string[] = [];
    for (const d of extraDebs) {
      const x = path.join(work, `deb-${d.pkg}`);
      await run.run(['dpkg-deb', '-x', d.deb, x]);
      unpacked.push(x);
    }
    const libPath = unpacked.flatMap((x) => [path.join(x, 'usr/lib/x86_64-linux-gnu'), path.join(x, 'lib/x86_64-linux-gnu')]).join(':');
    // Where a library goes in the image: its path inside the package that ships it, or its path on the host.
    const rel = (lib: string) => {
      const from = unpacked.find((x) => lib.startsWith(`${x}/`));
      return from ? lib.slice(from.length) : lib;
    };
    const libs = new Set<string>();
    const bundles = new Map<string, { dir: string; bins: string[]; libs: Set<string> }>();
    for (const [i, d] of extraDebs.entries()) {
      const x = unpacked[i]!;
      const bundle = d.bundle ? bundles.get(d.bundle) ?? { dir: path.join(work, `bundle-${d.bundle}`), bins: [], libs: new Set<string>() } : undefined;
      if (d.bundle) bundles.set(d.bundle, bundle!);
      for (const [from, to] of d.files) {
        const dest = bundle ? path.join(bundle.dir, 'bin', path.basename(to)) : path.join(root, to);
        await mkdir(path.dirname(dest), { recursive: true });
        await copyFile(path.join(x, from), dest);
        await chmod(dest, 0o755);
        if (bundle) bundle.bins.push(to);
        const ldd = await run.run(['ldd', path.join(x, from)], { env: { ...process.env, LD_LIBRARY_PATH: libPath } });
        for (const lib of parseLdd(ldd.stdout)) (bundle ? bundle.libs : libs).add(lib);
      }
    }
    for (const lib of libs) {
      await mkdir(path.dirname(path.join(root, rel(lib))), { recursive: true });
      await copyFile(lib, path.join(root, rel(lib)));
    }
    const inRoot = new Set([...libs].map(rel));
    for (const [name, b] of bundles) {
      await mkdir(path.join(b.dir, 'lib'), { recursive: true });
      for (const lib of b.libs) if (!inRoot.has(rel(lib))) await copyFile(lib, path.join(b.dir, 'lib', path.basename(lib)));
      const archive = path.join(root, 'usr/lib/qnet', `${name}.tar.xz`);
      await mkdir(path.dirname(archive), { recursive: true });
      // Reproducible: sorted names, fixed owner and mtime, one xz thread; CRC32 is a check busybox's xz reads.
      await run.run(['sh', '-c', 'tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . | xz -6 -T1 --check=crc32 > "$2"', 'bundle', b.dir, archive]);
      for (const to of b.bins) {
        await mkdir(path.dirname(path.join(root, to)), { recursive: true });
        await writeFile(path.join(root, to), LAZY_WRAPPER.replaceAll('@BUNDLE@', name).replaceAll('@BIN@', path.basename(to)));
        await chmod(path.join(root, to), 0o755);
      }
    }
    const scripts: Array<[string, string, number]> = [
      ['init', INIT, 0o755],
      ['etc/inittab', INITTAB, 0o644],
      ['etc/profile', PROFILE, 0o644],
      ['etc/qnet/boot', BOOT, 0o755],
      ['etc/qnet/udhcpc', UDHCPC, 0o755],
      ['etc/hosts', '127.0.0.1 localhost\n', 0o644],
      ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
      ['etc/group', 'root:x:0:\n', 0o644],
      ['etc/protocols', 'ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\n', 0o644],
      ['etc/services', '', 0o644],
    ];
    for (const [p, text, mode] of scripts) {
      await writeFile(path.join(root, p), text);
      await chmod(path.join(root, p), mode);
    }
    const out = path.join(work, 'out');
    await mkdir(out);
    await cpioNewc(run, root, path.join(out, 'initrd.img'));
    const vmlinuz = (await readdir(path.join(kx, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new RuntimeError(`${deb} holds no vmlinuz`);
    // Boot the uncompressed ELF through PVH: no firmware real-mode path and no in-guest decompression,
    // which under TCG halves the time to a ready guest (measured 11.3 s -> 5.7 s). Fall back to bzImage.
    const kernelFile = (await extractVmlinux(run, path.join(kx, 'boot', vmlinuz), path.join(out, 'vmlinux'))) ? 'vmlinux' : 'vmlinuz';
    if (kernelFile === 'vmlinuz') await copyFile(path.join(kx, 'boot', vmlinuz), path.join(out, 'vmlinuz'));
    await chmod(path.join(out, kernelFile), 0o644);
    await chmod(path.join(out, 'initrd.img'), 0o644);
    const manifest: ImageManifest = {
      key,
      kernel: path.join(dir, kernelFile),
      initrd: path.join(dir, 'initrd.img'),
      cmdline: KERNEL_CMDLINE,
      kernelPackage: pkg,
      kernelVersion: kver,
      busyboxVersion: bbVersion,
      modules: [...needed].sort(),
      builtAt: new Date().toISOString(),
    };
    await writeFile(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(out, dir);
    const size = (await stat(manifest.initrd)).size;
    progress(`guest image ready: ${manifest.kernelVersion}, initramfs ${(size / 1048576).toFixed(1)} MiB, ${needed.size} modules`);
    return manifest;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
