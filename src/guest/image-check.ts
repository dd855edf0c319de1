// Image nodes, before anything changes: what each disk image is (qemu-img info, once; the format is then always
// passed explicitly, so QEMU never probes), refusing what is not a disk image, names other files or is corrupt or
// cut short (qemu-img check, and the image's own layout against its file's size); ISOs, the UEFI firmware, and
// disks kept from an earlier `up` (`persist`). Reads only.
import { mkdtemp, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { keptPaths } from './kept.js';
import { UserError, type InputIssue } from '../errors.js';
import type { CommandRunner } from '../host/run.js';
import { IMAGE_FORMATS, type ImageFormat, type ResolvedLab, type ResolvedNode } from '../topology/model.js';
import { formatSize } from '../topology/size.js';
import { formatIssues } from '../topology/load.js';
import type { BaseIdentity } from '../render/host-types.js';

export type { BaseIdentity };

/** What `qemu-img info` says of an image that qnet accepts as a base. */
export interface ImageFacts {
  format: ImageFormat;
  virtualSize: number;
  actualSize: number;
  /** The version of qnet's resume hook the image carries (the GPT mark `qnet image create` puts on it). */
  resume?: number;
}

/** The facts of `qemu-img info --output=json` that decide whether an image is acceptable. */
interface QemuImgInfo {
  format?: string;
  'virtual-size'?: number;
  'actual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string; corrupt?: boolean; extents?: Array<{ filename?: string }> } };
}

/**
 * Why `qemu-img info` output is not an acceptable base (null when it is): a format qnet does not take, or a
 * reference to another file (backing file, qcow2 external data file, vmdk extents elsewhere), through which a
 * crafted image would make QEMU read host files into the guest. Pure, for unit tests.
 */
export function refusalOf(info: QemuImgInfo, file: string): string | null {
  const fmt = info.format ?? '';
  if (!(IMAGE_FORMATS as readonly string[]).includes(fmt))
    return `qemu-img reads it as ${fmt ? `"${fmt}"` : 'nothing it knows'}; qnet boots qcow2, raw, vmdk, vdi and vhdx images`;
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  if (backing !== undefined)
    return `it names a backing file (${backing}); qnet takes only self-contained images (flatten it: qemu-img convert -O qcow2 ${file} flat.qcow2)`;
  const data = info['format-specific']?.data;
  if (data?.['data-file'] !== undefined) return `it names an external data file (${data['data-file']}); qnet takes only self-contained images`;
  for (const e of data?.extents ?? []) {
    if (e.filename === undefined) continue;
    const where = path.resolve(path.dirname(file), e.filename);
    if (where !== file) return `it is a vmdk whose data is in another file (${e.filename}); qnet takes only self-contained images (qemu-img convert -O qcow2 ${file} disk.qcow2)`;
  }
  if (typeof info['virtual-size'] !== 'number' || info['virtual-size'] <= 0) return 'qemu-img reports no size for it';
  // QEMU sets this bit in a qcow2 header when it finds the image's metadata inconsistent while using it.
  if (data?.corrupt === true) return `QEMU has marked it corrupt (the "corrupt" bit of its qcow2 header)${GET_AGAIN}${REPAIR}`;
  return null;
}

// What a refusal of a damaged image advises.
const GET_AGAIN = '; an incomplete download or copy is the usual cause: get the image again';
const REPAIR = ' (`qemu-img check -r all` repairs a copy, losing what is damaged)';

/** The formats `qemu-img check` can check (raw has no metadata to check). */
export const CHECKED_FORMATS: readonly ImageFormat[] = ['qcow2', 'vmdk', 'vdi', 'vhdx'];

/** What one run of `qemu-img check --output=json` gave. */
export interface CheckOutput {
  code: number;
  stdout: string;
  stderr: string;
}

// qemu-img check prints each problem on stderr ("ERROR ...", "ERROR: ...", "qemu-img: ..."); leaked clusters
// (space the image holds and never uses) are not errors.
function firstError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !/^Leaked cluster/.test(l));
  const line = lines.find((l) => /^ERROR/.test(l)) ?? lines[0] ?? '';
  return line.replace(/^(ERROR:?|qemu-img:)\s*/, '');
}

/**
 * Why the result of `qemu-img check --output=json` refuses an image (null when it does not). Exit 0 is clean; 3
 * is leaked clusters only (space wasted, nothing wrong with the data); 63 is a format without checks; 2 is
 * corruption; 1 is a check that could not finish (what it read makes no sense). Pure, for unit tests.
 */
export function checkRefusal(r: CheckOutput): string | null {
  if (r.code === 0 || r.code === 3 || r.code === 63) return null;
  const first = firstError(r.stderr);
  if (r.code === 2) {
    let n: number | undefined;
    try {
      n = (JSON.parse(r.stdout) as { corruptions?: number }).corruptions;
    } catch {
      n = undefined;
    }
    const count = n ? `${n} error${n === 1 ? '' : 's'}` : 'errors';
    return `qemu-img check finds it corrupt (${count}${first ? `; the first: ${first}` : ''})${GET_AGAIN}${REPAIR}`;
  }
  return `qemu-img check cannot finish reading it (exit ${r.code}${first ? `: ${first}` : ''})${GET_AGAIN}${REPAIR}`;
}

/** One extent of `qemu-img map --output=json`: guest bytes [start, start+length), at `offset` in the file when data. */
interface MapExtent {
  start: number;
  length: number;
  data?: boolean;
  offset?: number;
}

/**
 * Why an image's map refuses it (null when it does not): data that the image's own tables place past the end of
 * its file, as in a copy cut short. Pure.
 */
export function mapRefusal(extents: MapExtent[], fileSize: number): string | null {
  for (const e of extents) {
    if (!e.data || e.offset === undefined) continue;
    if (e.offset + e.length > fileSize)
      return `it is cut short: its tables put guest bytes ${e.start}-${e.start + e.length - 1} at ${e.offset}-${e.offset + e.length - 1} of the file, which ends at ${fileSize}${GET_AGAIN}`;
  }
  return null;
}

/**
 * Why a raw image is cut short (null when it is not, or says nothing of its size): its partition table describes a
 * disk bigger than the file (GPT: where its backup header is, the disk's last sector; MBR: the end of each
 * partition, read only when blkid takes the sector for one, `pttype` "dos": a filesystem's own boot sector ends
 * in 55 aa too). `head` is the image's start (at least its first 34 sectors for a GPT). Pure.
 */
export function rawTruncation(head: Buffer, fileSize: number, pttype?: string): string | null {
  const sectors = Math.floor(fileSize / 512);
  const short = (what: string, need: number) =>
    `it is cut short: its ${what} says the disk has at least ${need} sectors (${formatSize(need * 512)}), the file holds ${sectors} (${formatSize(fileSize)})${GET_AGAIN}`;
  if (head.length >= 1024 && head.toString('latin1', 512, 520) === 'EFI PART') {
    const backup = Number(head.readBigUInt64LE(512 + 32));
    const lastUsable = Number(head.readBigUInt64LE(512 + 48));
    const need = Math.max(backup, lastUsable) + 1;
    return need > sectors ? short('GPT', need) : null;
  }
  if (pttype !== 'dos' || head.length < 512) return null;
  let need = 0;
  for (let i = 0; i < 4; i++) {
    const at = 446 + 16 * i;
    // An empty entry.
    if (head[at + 4] === 0) continue;
    need = Math.max(need, head.readUInt32LE(at + 8) + head.readUInt32LE(at + 12));
  }
  return need > sectors ? short('partition table (MBR)', need) : null;
}

// A raw image is any file to qemu-img: take it as a disk only if it is one (a partition table or boot sector, a
// filesystem blkid knows, or a blank disk), so that a text file named by mistake is refused; and not one cut short.
async function rawLooksLikeDisk(run: CommandRunner, file: string, size: number): Promise<string | null> {
  if (size % 512 !== 0) return `not a disk image: ${size} bytes is not a whole number of 512-byte sectors`;
  const fh = await open(file, 'r');
  const head = Buffer.alloc(Math.min(size, 2 ** 20));
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  if (head.every((b) => b === 0)) return null; // a blank disk, to install a system onto
  const probe = await run.run(['blkid', '--probe', '--output', 'export', file], { allowFail: true });
  const cut = rawTruncation(head, size, /^PTTYPE=(.*)$/m.exec(probe.stdout)?.[1]);
  if (cut) return cut;
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return null;
  if (/^(TYPE|PTTYPE)=/m.test(probe.stdout)) return null;
  return 'not a disk image: no partition table, boot sector or filesystem in it (qemu-img sees plain data)';
}

/** Inspects one base image; throws UserError naming `where` (the topology path) and the file when it is refused. */
export async function inspectImage(run: CommandRunner, file: string, where: string): Promise<ImageFacts> {
  const refuse = (why: string): never => {
    throw new UserError(`${where}: ${file}: ${why}`, [{ path: where, message: `${file}: ${why}` }]);
  };
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => refuse(e.code === 'ENOENT' ? 'no such file' : `cannot read it (${e.code})`));
  if (st.isDirectory()) refuse('is a directory, not a disk image');
  if (!st.isFile()) refuse('is not a regular file (qnet boots disk image files)');
  await open(file, 'r').then((h) => h.close(), (e: NodeJS.ErrnoException) => refuse(`cannot read it (${e.code})`));
  const real = await realpath(file);
  // -U: the image may be in use by a running lab (its overlays hold it open read-only); reading its header is safe.
  const r = await run.run(['qemu-img', 'info', '--output=json', '-U', real], { allowFail: true, timeoutMs: 30_000 });
  // The first line is the cause ("File truncated, expecting at least 65536 bytes", "VHDX BAT entry 0 ... points
  // after end of file"); the last only repeats that the file could not be opened.
  if (r.code !== 0) refuse(`qemu-img cannot read it: ${firstError(r.stderr)}`);
  let info: QemuImgInfo;
  try {
    info = JSON.parse(r.stdout) as QemuImgInfo;
  } catch {
    return refuse('qemu-img info gave no answer qnet can read');
  }
  const why = refusalOf(info, real);
  if (why) refuse(why);
  if (info.format === 'raw') {
    const raw = await rawLooksLikeDisk(run, real, st.size);
    if (raw) refuse(raw);
  }
  const damage = await damageOf(run, real, info.format as ImageFormat, st.size);
  if (damage) refuse(damage);
  const resume = await resumeMark(run, real, info.format as ImageFormat);
  return { format: info.format as ImageFormat, virtualSize: info['virtual-size']!, actualSize: info['actual-size'] ?? st.size, ...(resume ? { resume } : {}) };
}

// Whether the image's metadata holds together: `qemu-img check` (read-only, -U: the base may be open in running
// nodes, and is never written by them, so what it reads is stable), and for vdi, whose check does not look at the
// file's size, the map of its blocks against the file's end. Metadata only: on a 20 GiB qcow2 holding 4 GiB of
// data (3 GiB in runs and 16,384 scattered 64 KiB writes: 62,654 clusters, 13,467 fragmented) check took
// 0.01-0.09 s, 0.14 s with the page cache dropped (8 MB of memory); vmdk and vdi copies of it 0.04 and 0.01 s, the
// vdi's map 0.02 s (QEMU 7.2, 2026-12-07). Too cheap to cache.
async function damageOf(run: CommandRunner, file: string, format: ImageFormat, size: number): Promise<string | null> {
  if (!CHECKED_FORMATS.includes(format)) return null;
  const r = await run.run(['qemu-img', 'check', '--output=json', '-U', '-f', format, file], { allowFail: true, timeoutMs: 300_000 });
  const why = checkRefusal(r);
  if (why || format !== 'vdi') return why;
  const m = await run.run(['qemu-img', 'map', '--output=json', '-U', '-f', format, file], { allowFail: true, timeoutMs: 300_000 });
  if (m.code !== 0) return `qemu-img map cannot read it: ${firstError(m.stderr)}${GET_AGAIN}`;
  try {
    return mapRefusal(JSON.parse(m.stdout) as MapExtent[], size);
  } catch {
    return 'qemu-img map gave no answer qnet can read';
  }
}

/** The partition names of a GPT disk, from its first 34 sectors (none when it has no GPT). Pure. */
export function gptPartitionNames(head: Buffer): string[] {
  if (head.length < 1024 || head.toString('latin1', 512, 520) !== 'EFI PART') return [];
  const first = Number(head.readBigUInt64LE(512 + 72));
  const count = head.readUInt32LE(512 + 80);
  const size = head.readUInt32LE(512 + 84);
  if (size < 128 || size > 512) return [];
  const names: string[] = [];
  for (let i = 0; i < Math.min(count, 128); i++) {
    const at = first * 512 + i * size;
    if (at + 128 > head.length) break;
    if (head.subarray(at, at + 16).every((b) => b === 0)) continue; // an unused entry
    names.push(head.toString('utf16le', at + 56, at + 128).replace(/\0.*$/s, ''));
  }
  return names;
}

// The version of qnet's resume hook an image carries: the GPT name of its BIOS boot partition, read through
// qemu-img (any format; 17 KiB, about 15 ms), so a copy of the image keeps it. 0 when it has none.
async function resumeMark(run: CommandRunner, file: string, format: ImageFormat): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qnet-gpt-'));
  try {
    const out = path.join(dir, 'head');
    const r = await run.run(['qemu-img', 'dd', '-U', '-f', format, '-O', 'raw', 'bs=512', 'count=34', `if=${file}`, `of=${out}`], { allowFail: true, timeoutMs: 30_000 });
    if (r.code !== 0) return 0;
    const names = gptPartitionNames(await readFile(out));
    const m = names.map((n) => /^qnet-resume-(\d+)$/.exec(n)).find(Boolean);
    return m ? Number(m[1]) : 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Checks that a file is an ISO 9660 image (the "CD001" signature of its first volume descriptor). */
export async function checkIso(file: string, where: string): Promise<void> {
  const refuse = (why: string): never => {
    throw new UserError(`${where}: ${file}: ${why}`, [{ path: where, message: `${file}: ${why}` }]);
  };
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => refuse(e.code === 'ENOENT' ? 'no such file' : `cannot read it (${e.code})`));
  if (!st.isFile()) refuse('is not a regular file (cdrom takes an ISO image)');
  const sig = Buffer.alloc(5);
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => refuse(`cannot read it (${e.code})`));
  try {
    await fh.read(sig, 0, 5, 0x8001);
  } finally {
    await fh.close();
  }
  if (sig.toString('latin1') !== 'CD001') refuse('not an ISO 9660 image (no CD001 volume descriptor at 32 KiB)');
}

/** Where the UEFI firmware comes from (`QNET_OVMF_DIR`, default Debian's ovmf package). */
export function ovmfFiles(): { code: string; vars: string } {
  const dir = process.env.QNET_OVMF_DIR ?? '/usr/share/OVMF';
  return { code: path.join(dir, 'OVMF_CODE_4M.fd'), vars: path.join(dir, 'OVMF_VARS_4M.fd') };
}

/** The identity of a base image as it is now. */
export async function baseIdentity(file: string, format: ImageFormat): Promise<BaseIdentity> {
  const st = await stat(file);
  return { path: file, format, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
}

/** Why a kept overlay cannot be used on the base as it is now (null when it can). Pure. */
export function keptDiskRefusal(was: BaseIdentity, now: BaseIdentity): string | null {
  if (was.path !== now.path) return `it was made on ${was.path}, and the node's image is now ${now.path}`;
  if (was.format !== now.format) return `its base was ${was.format} and is now ${now.format}`;
  if (was.size !== now.size || was.mtimeMs !== now.mtimeMs || was.ino !== now.ino || was.dev !== now.dev)
    return `its base ${now.path} changed since (${was.size !== now.size ? `size ${formatSize(was.size)} -> ${formatSize(now.size)}` : `modified ${new Date(now.mtimeMs).toISOString()}`}); an overlay on a changed base reads garbage`;
  return null;
}

/**
 * Inspects every image node of a lab (bases, ISOs, firmware, kept disks, sizes) and returns the lab with each
 * base's format and virtual size filled in; throws one UserError listing every problem with its path.
 */
export async function inspectLabImages(run: CommandRunner, lab: ResolvedLab, source = 'topology'): Promise<ResolvedLab> {
  const issues: InputIssue[] = [];
  const facts = new Map<string, ImageFacts | null>();
  const nodes: ResolvedNode[] = [];
  for (const node of lab.nodes) {
    const img = node.image;
    if (!img) {
      nodes.push(node);
      continue;
    }
    const at = (...p: string[]) => ['nodes', node.name, ...p].join('.');
    const note = (e: unknown, where: string) => {
      if (e instanceof UserError) issues.push(...(e.issues.length ? e.issues : [{ path: where, message: e.message }]));
      else throw e;
    };
    if (!facts.has(img.path)) facts.set(img.path, await inspectImage(run, img.path, at('image')).catch((e) => (note(e, at('image')), null)));
    const f = facts.get(img.path);
    const base = f ? await realpath(img.path) : img.path;
    if (img.cdrom) await checkIso(img.cdrom, at('cdrom')).catch((e) => note(e, at('cdrom')));
    if (img.firmware === 'uefi') {
      const fw = ovmfFiles();
      for (const file of [fw.code, fw.vars])
        if (!(await stat(file).then((s) => s.isFile(), () => false)))
          issues.push({ path: at('firmware'), message: `firmware: uefi needs OVMF, and ${file} is missing: install Debian's ovmf package (apt-get install ovmf)` });
    }
    if (!f) {
      nodes.push(node);
      continue;
    }
    if (img.diskSize !== undefined && img.diskSize < f.virtualSize)
      issues.push({ path: at('disk', 'size'), message: `${formatSize(img.diskSize)} is smaller than the image (${formatSize(f.virtualSize)}); a disk can grow, not shrink` });
    if (img.persist) {
      const kept = keptPaths(lab.name, node.name);
      const was = await readFile(kept.base, 'utf8').then((t) => JSON.parse(t) as BaseIdentity, () => null);
      const disk = await stat(kept.disk).then(() => true, () => false);
      if (disk && !was)
        issues.push({ path: at('image'), message: `the kept disk ${kept.disk} has no record of the base it was made on (${kept.base}), so qnet cannot tell it fits ${img.path}: \`qnet down ${lab.name} --purge\` drops it` });
      if (was && disk) {
        const why = keptDiskRefusal(was, await baseIdentity(base, f.format));
        if (why)
          issues.push({ path: at('image'), message: `the kept disk of ${node.name} (persist: true, ${kept.disk}) cannot be used: ${why}. \`qnet down ${lab.name} --purge\` drops the kept disk (and what the guest wrote on it)` });
      }
    }
    const st = await stat(base);
    const identity = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
    nodes.push({ ...node, image: { ...img, path: base, format: f.format, virtualSize: f.virtualSize, identity, ...(f.resume ? { resume: f.resume } : {}) } });
  }
  if (issues.length) throw new UserError(formatIssues(source, issues), issues);
  return { ...lab, nodes };
}
