// `qnet image create debian`: a bootable Debian disk image made from Debian's packages alone (mmdebstrap into an
// ext4 filesystem on a loop-mounted raw disk, GRUB installed in it, then a compressed qcow2), cached by its inputs.
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot } from '../dirs.js';
import { RuntimeError, UserError } from '../errors.js';
import { exists } from '../host/fs.js';
import type { CommandRunner } from '../host/run.js';
import { aptCandidates } from '../host/apt.js';
import { formatSize } from '../topology/size.js';
import { MASKED_UNITS, PACKAGE_NAME, packageList, RECIPE_VERSION, recipeFiles, renderPartitionTable, SUITE } from './debian-recipe.js';

export type Progress = (message: string) => void;

export interface DebianImageOptions {
  /** Packages beyond the base (FRR, tcpdump, ...). */
  packages?: string[];
  /** Virtual size of the disk in bytes (default 2 GiB). */
  size?: number;
  /** Build again even if the cache has this image. */
  force?: boolean;
  /** Units of MASKED_UNITS to leave enabled (for `npm run bench`, which measures what each one costs a boot). */
  keepUnits?: string[];
}

export interface DebianImage {
  /** The cached image (compressed qcow2; never handed to a guest: labs run on overlays of it, or of a copy). */
  file: string;
  key: string;
  packages: string[];
  size: number;
  builtAt: string;
  /** How long the build took (0 when it came from the cache). */
  buildMs: number;
}

export const DEFAULT_DEBIAN_SIZE = 2 * 2 ** 30;
const MIN_SIZE = 1536 * 2 ** 20; // the base system with the stock kernel takes about 800 MiB
// The default image, the three variants `npm run bench` boots (packages and keepUnits) and one of the user's own:
// fewer, and the bench's builds would evict each other (and the default image) on every run.
const KEPT_BUILDS = 5;

/** Where built Debian images are cached. */
export function debianCacheDir(): string {
  return path.join(cacheRoot(), 'debian');
}

/** Checks the options a user gave (exit 2 on bad input, before anything is built). */
export function checkDebianOptions(o: DebianImageOptions): void {
  for (const p of o.packages ?? [])
    if (!PACKAGE_NAME.test(p)) throw new UserError(`--packages: "${p}" is not a Debian package name (like frr or tcpdump)`);
  if (o.size !== undefined && o.size < MIN_SIZE)
    throw new UserError(`--size: ${formatSize(o.size)} is too small; the base system needs at least ${formatSize(MIN_SIZE)}`);
  if (o.size !== undefined && o.size > 2 ** 40) throw new UserError(`--size: ${formatSize(o.size)} is more than 1 TiB`);
}

/** The apt sources of this host that the image is made from (the same Debian mirror apt itself uses). */
async function hostSources(): Promise<string> {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    if (/^\s*(URIs:|deb\s)/m.test(text)) return f;
  }
  throw new RuntimeError('no Debian apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list): the image is made from the mirror apt uses');
}

/** The versions apt would install of the listed packages (part of the cache key: an update makes a new image). */
async function candidates(run: CommandRunner, pkgs: string[]): Promise<Record<string, string>> {
  const out = await aptCandidates(run, pkgs);
  const missing = pkgs.filter((p) => !out[p]);
  if (missing.length) throw new UserError(`apt knows no package ${missing.join(', ')} (run \`apt-get update\`, or check the name with \`apt-cache search\`)`);
  return out;
}

/** Returns the cached Debian image for these options, building it first when needed (3-4 minutes). */
export async function ensureDebianImage(run: CommandRunner, o: DebianImageOptions, progress: Progress = () => {}): Promise<DebianImage> {
  checkDebianOptions(o);
  const packages = packageList(o.packages ?? []);
  const size = o.size ?? DEFAULT_DEBIAN_SIZE;
  const sources = await hostSources();
  const versions = await candidates(run, packages);
  const masked = MASKED_UNITS.filter((u) => !(o.keepUnits ?? []).includes(u));
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE_VERSION, SUITE, packages, size, versions, sources: await readFile(sources, 'utf8'), masked, files: recipeFiles('uuid'), ssh: 'socket' }))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(debianCacheDir(), key);
  const manifest = path.join(dir, 'manifest.json');
  await tidyBuilds(run);
  if (!o.force && (await exists(manifest))) return { ...(JSON.parse(await readFile(manifest, 'utf8')) as DebianImage), buildMs: 0 };
  const t0 = Date.now();
  progress(`building Debian ${SUITE} image ${key}: ${packages.length} packages, ${formatSize(size)} disk (about 3-4 minutes)`);
  await mkdir(debianCacheDir(), { recursive: true, mode: 0o755 });
  const work = await mkdtemp(path.join(debianCacheDir(), `.build-${process.pid}-`));
  const built = path.join(work, 'disk.qcow2');
  // Ctrl-C during the build: mmdebstrap stops with it, and the cleanup below still runs (no loop device or mount left).
  const ignore = () => progress('interrupted: cleaning up the build');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  try {
    await buildInto(run, work, packages, size, sources, masked, progress);
    const out = path.join(work, 'out');
    await mkdir(out);
    await rename(built, path.join(out, 'disk.qcow2'));
    await chmod(path.join(out, 'disk.qcow2'), 0o444);
    const m: DebianImage = { file: path.join(dir, 'disk.qcow2'), key, packages, size, builtAt: new Date().toISOString(), buildMs: Date.now() - t0 };
    await writeFile(path.join(out, 'manifest.json'), JSON.stringify(m, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(out, dir);
    await pruneBuilds(key);
    const st = await stat(m.file);
    progress(`Debian image ${key} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${formatSize(st.size)} compressed qcow2, ${formatSize(size)} virtual`);
    return m;
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', ignore);
    await cleanupWork(run, work);
  }
}

/** The steps of one build inside `work`: disk, partitions, filesystem, packages, boot loader, compressed qcow2. */
async function buildInto(run: CommandRunner, work: string, packages: string[], size: number, sources: string, masked: string[], progress: Progress): Promise<void> {
  const raw = path.join(work, 'disk.raw');
  const root = path.join(work, 'root');
  await mkdir(root);
  await run.run(['truncate', '-s', String(size), raw]);
  await run.run(['sfdisk', '--quiet', raw], { input: renderPartitionTable() });
  const loop = (await run.run(['losetup', '--find', '--show', '--partscan', raw])).stdout.trim();
  await writeFile(path.join(work, 'loop'), loop + '\n');
  const part = `${loop}p2`;
  await partitionNode(run, loop, part);
  await run.run(['mkfs.ext4', '-q', '-L', 'root', part]);
  const uuid = (await run.run(['blkid', '-s', 'UUID', '-o', 'value', part])).stdout.trim();
  if (!/^[0-9a-f-]{36}$/.test(uuid)) throw new RuntimeError(`blkid gave no filesystem UUID for ${part}`);
  await run.run(['mount', part, root]);
  progress(`installing ${packages.length} packages with mmdebstrap from the mirror of ${sources}`);
  const t = Date.now();
  await run.run(
    [
      'mmdebstrap', '--quiet', '--variant=minbase', `--include=${packages.join(',')}`,
      // Documentation, manual pages and translations: not for a lab guest (about 100 MiB less).
      '--dpkgopt=path-exclude=/usr/share/man/*', '--dpkgopt=path-exclude=/usr/share/doc/*',
      '--dpkgopt=path-include=/usr/share/doc/*/copyright', '--dpkgopt=path-exclude=/usr/share/locale/*',
      SUITE, root, sources,
    ],
    { timeoutMs: 1_800_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
  );
  progress(`packages installed in ${((Date.now() - t) / 1000).toFixed(0)} s; installing GRUB and qnet's settings`);
  for (const f of recipeFiles(uuid)) {
    await mkdir(path.dirname(path.join(root, f.path)), { recursive: true });
    await writeFile(path.join(root, f.path), f.content);
    await chmod(path.join(root, f.path), f.mode);
  }
  for (const unit of masked) {
    await rm(path.join(root, 'etc/systemd/system', unit), { force: true });
    await run.run(['ln', '-s', '/dev/null', path.join(root, 'etc/systemd/system', unit)]);
    for (const wants of await readdir(path.join(root, 'etc/systemd/system')).catch(() => [] as string[]))
      if (wants.endsWith('.wants')) await rm(path.join(root, 'etc/systemd/system', wants, unit), { force: true });
  }
  // sshd starts on the first connection (ssh.socket), not at boot: it then reads the host key a node was given
  // (by cloud-init, or after a resume by qnet's hook, where a daemon started before would hold the saved guest's).
  await rm(path.join(root, 'etc/systemd/system/multi-user.target.wants/ssh.service'), { force: true });
  await mkdir(path.join(root, 'etc/systemd/system/sockets.target.wants'), { recursive: true });
  await run.run(['ln', '-sf', '/lib/systemd/system/ssh.socket', path.join(root, 'etc/systemd/system/sockets.target.wants/ssh.socket')]);
  // Each guest makes its own SSH host keys (cloud-init, or sshd's first start) and machine-id.
  for (const f of await readdir(path.join(root, 'etc/ssh')))
    if (f.startsWith('ssh_host_')) await rm(path.join(root, 'etc/ssh', f));
  await rm(path.join(root, 'var/lib/dbus/machine-id'), { force: true });
  // GRUB from the image itself, into the whole disk's BIOS boot partition (the chroot sees the loop device).
  const mounts: string[] = [];
  try {
    for (const [src, dst, type] of [['/dev', 'dev', 'bind'], ['proc', 'proc', 'proc'], ['sysfs', 'sys', 'sysfs']] as const) {
      await run.run(type === 'bind' ? ['mount', '--bind', src, path.join(root, dst)] : ['mount', '-t', type, src, path.join(root, dst)]);
      mounts.push(path.join(root, dst));
    }
    await run.run(['chroot', root, 'grub-install', '--target=i386-pc', '--modules=part_gpt ext2 biosdisk', loop]);
  } finally {
    for (const m of mounts.reverse()) await run.run(['umount', m], { allowFail: true });
  }
  // grub-install leaves the grub.cfg written above alone; write it again in case a hook replaced it.
  const grub = recipeFiles(uuid).find((f) => f.path === 'boot/grub/grub.cfg')!;
  await writeFile(path.join(root, grub.path), grub.content);
  // Blocks of files deleted during the install (the downloaded .debs) become holes, so qemu-img skips them.
  await run.run(['fstrim', root], { allowFail: true });
  await run.run(['umount', root]);
  await run.run(['losetup', '--detach', loop]);
  await rm(path.join(work, 'loop'));
  progress('compressing into qcow2');
  await run.run(['qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, path.join(work, 'disk.qcow2')], { timeoutMs: 900_000 });
  await rm(raw);
}

// The partition's device node: made by the kernel with --partscan where udev runs; here (no udev) partx asks the
// kernel to add it, and if no node appears, it is made from the numbers sysfs gives.
async function partitionNode(run: CommandRunner, loop: string, part: string): Promise<void> {
  if (await exists(part)) return;
  await run.run(['partx', '--add', loop], { allowFail: true });
  if (await exists(part)) return;
  const dev = (await readFile(`/sys/class/block/${path.basename(part)}/dev`, 'utf8').catch(() => '')).trim();
  const m = /^(\d+):(\d+)$/.exec(dev);
  if (!m) throw new RuntimeError(`the loop device ${loop} shows no partition 2 (no ${part}, nothing in /sys/class/block)`);
  await run.run(['mknod', part, 'b', m[1]!, m[2]!]);
}

// Undoes whatever a build in `work` left: mounts under it (deepest first), its loop device, the directory.
async function cleanupWork(run: CommandRunner, work: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((m) => m === work || m.startsWith(`${work}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run.run(['umount', '--lazy', m], { allowFail: true });
  const loops = JSON.parse((await run.run(['losetup', '--json', '--list'], { allowFail: true })).stdout || '{"loopdevices":[]}') as {
    loopdevices: Array<{ name: string; 'back-file'?: string }>;
  };
  for (const l of loops.loopdevices) if (l['back-file']?.startsWith(`${work}/`)) await run.run(['losetup', '--detach', l.name], { allowFail: true });
  await rm(work, { recursive: true, force: true });
}

// Builds that a killed qnet left (named by its pid): cleaned up before the next one starts.
async function tidyBuilds(run: CommandRunner): Promise<void> {
  for (const n of await readdir(debianCacheDir()).catch(() => [] as string[])) {
    const m = /^\.build-(\d+)-/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    try {
      if (!alive) process.kill(pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (!alive) await cleanupWork(run, path.join(debianCacheDir(), n));
  }
}

// Keeps the most recent builds (each about 300 MiB).
async function pruneBuilds(keep: string): Promise<void> {
  const dir = debianCacheDir();
  const builds = await Promise.all(
    (await readdir(dir)).filter((n) => /^[0-9a-f]{16}$/.test(n)).map(async (n) => ({ n, t: (await stat(path.join(dir, n))).mtimeMs })),
  );
  for (const b of builds.sort((a, z) => z.t - a.t).slice(KEPT_BUILDS)) if (b.n !== keep) await rm(path.join(dir, b.n), { recursive: true, force: true });
}

/**
 * Writes the image to `out` (qcow2, or raw for .raw/.img), through a temporary file renamed into place. An
 * existing file is refused unless `force`: it may be the base of a running lab.
 */
export async function writeDebianImage(run: CommandRunner, img: DebianImage, out: string, force = false): Promise<{ format: 'qcow2' | 'raw' }> {
  const format = /\.(raw|img)$/i.test(out) ? 'raw' : 'qcow2';
  if (!force && (await exists(out))) throw new UserError(`--out: ${out} exists; choose another name or add --force to replace it`);
  const dirOk = await stat(path.dirname(path.resolve(out))).then((s) => s.isDirectory(), () => false);
  if (!dirOk) throw new UserError(`--out: the directory ${path.dirname(path.resolve(out))} does not exist`);
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    if (format === 'raw') await run.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', img.file, tmp], { timeoutMs: 900_000 });
    else await copyFile(img.file, tmp);
    await chmod(tmp, 0o644);
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { format };
}
