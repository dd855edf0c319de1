// Saved guest states ("snapshots"): one per node shape, taken at the built-in guest's snapshot point (kernel
// booted, drivers loaded, nothing of the node applied), so that later guests of the same shape are restored in
// a fraction of a second instead of booting for several under TCG.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chown, mkdir, open, readdir, readFile, readlink, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { CommandRunner } from '../host/run.js';
import { QmpClient } from '../qemu/qmp.js';
import { snapshotShape, type Accel, type GuestImage } from '../render/qemu.js';
import type { ResolvedLab } from '../topology/model.js';
import { cacheRoot } from '../dirs.js';
import { layerOf, resumeShape, usesResumeHook } from '../guest/resume-mark.js';

/** How many saved states the cache keeps (the least recently used go first); each is the size of a booted guest's memory. */
export const SNAPSHOTS_KEPT = 8;
// Bumped when the guest's side of the snapshot point changes in a way the image key would not show.
// 2: the device state and the RAM template are two files (x-ignore-shared), the RAM mapped copy-on-write.
const FORMAT = 2;
// Saved states of image nodes (qnet's resume hook) are named so.
const IMAGE_PREFIX = 'img-';

/** The RAM template that goes with a saved device state (`X.state` -> `X.ram`). */
export function ramOf(state: string): string {
  return state.replace(/\.state$/, '.ram');
}

/** Where saved states live. */
export function snapshotDir(): string {
  return path.join(cacheRoot(), 'snapshots');
}

const versions = new Map<string, string>();
async function qemuVersion(runner: CommandRunner, binary: string): Promise<string> {
  let v = versions.get(binary);
  if (!v) {
    v = (await runner.run([binary, '--version'])).stdout.split('\n')[0]!.trim();
    versions.set(binary, v);
  }
  return v;
}

/**
 * The saved-state file for each node of the lab that can use one (observed: whether it exists). A node's file
 * is named by a hash of its shape, the image and QEMU's version, so a state is only restored into the same
 * devices, memory, kernel and QEMU it was saved from.
 */
export async function labSnapshots(
  lab: ResolvedLab,
  image: GuestImage & { key?: string },
  accel: Accel,
  runner: CommandRunner,
  binary = 'qemu-system-x86_64',
  notes: string[] = [],
): Promise<Record<string, { path: string; exists: boolean }>> {
  const out: Record<string, { path: string; exists: boolean }> = {};
  const version = await qemuVersion(runner, binary);
  const present = (f: string) => stat(f).then((s) => s.isFile() && s.size > 0, () => false);
  for (const node of lab.nodes) {
    if (node.image) {
      // An image node of an image qnet made (its resume hook): keyed by the base as inspected, so a changed image
      // or QEMU never meets an old state; the saver's disk at the snapshot point is saved beside it.
      if (!usesResumeHook(node)) continue;
      const key = createHash('sha256').update(JSON.stringify({ FORMAT, shape: resumeShape(node), version, binary, accel })).digest('hex').slice(0, 20);
      const file = path.join(snapshotDir(), `${IMAGE_PREFIX}${key}.state`);
      await dropOutdated(node.image.path, node.image.identity, notes);
      out[node.name] = { path: file, exists: (await present(file)) && (await present(ramOf(file))) && (await present(layerOf(file))) };
      continue;
    }
    const shape = snapshotShape(node, image, accel);
    if (shape === undefined) continue;
    const key = createHash('sha256').update(JSON.stringify({ FORMAT, shape, version, binary, image: image.key ?? '' })).digest('hex').slice(0, 20);
    // Named after the image first: states of an image that is no longer current are recognised and removed.
    const file = path.join(snapshotDir(), `${image.key ?? 'image'}-${key}.state`);
    out[node.name] = { path: file, exists: (await present(file)) && (await present(ramOf(file))) };
  }
  await tidySnapshots(image.key);
  return out;
}

/** What an image node's saved state was made on: written beside it (`X.base.json`), read to drop outdated states. */
export function baseRecordOf(state: string): string {
  return state.replace(/\.state$/, '.base.json');
}

// The image nodes' saved states in the cache, each with what it was made on (its `.base.json`; null if unreadable).
async function imageStates(dir: string): Promise<Array<{ state: string; rec: { base?: unknown; identity?: unknown } | null }>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(IMAGE_PREFIX) && n.endsWith('.base.json'));
  return Promise.all(
    names.map(async (n) => ({
      state: path.join(dir, n.replace(/\.base\.json$/, '.state')),
      rec: await readFile(path.join(dir, n), 'utf8').then((t) => JSON.parse(t) as { base?: unknown; identity?: unknown }, () => null),
    })),
  );
}

// Drops the saved states made on an earlier version of this base (same path, other size, time or inode): they can
// never be restored into again, and each holds a RAM template and a disk layer.
async function dropOutdated(base: string, identity: unknown, notes: string[]): Promise<void> {
  for (const { state, rec } of await imageStates(snapshotDir())) {
    if (rec?.base !== base || JSON.stringify(rec.identity) === JSON.stringify(identity)) continue;
    await dropSnapshot(state);
    notes.push(`dropped the saved state of ${path.basename(state)}: it was made on an earlier version of ${base}`);
  }
}

/**
 * Removes the partial files of saves whose qnet process is gone (killed mid-save: they are named by its pid), the
 * saved states of image nodes whose base image is gone and, given the current image's key, the saved states of other
 * images (a rebuilt image makes them useless).
 */
export async function tidySnapshots(currentImage?: string): Promise<void> {
  const dir = snapshotDir();
  // A state made on a base that was deleted can never be restored into (a new file there has another identity),
  // yet it would hold its place among the SNAPSHOTS_KEPT (a RAM template and a disk layer, 240-320 MiB for Debian).
  for (const { state, rec } of await imageStates(dir)) {
    const gone = typeof rec?.base === 'string' && (await stat(rec.base).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'ENOENT'));
    if (gone) await dropSnapshot(state);
  }
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    const partial = /\.(?:state|ram|disk)\.(\d+)\.\d+\.tmp$/.exec(n);
    // States of image nodes are keyed by their own base (pruned by use, below), not by the built-in guest's image.
    const stale = partial ? !pidAlive(Number(partial[1])) : currentImage !== undefined && /\.(state|ram)$/.test(n) && !n.startsWith(`${currentImage}-`) && !n.startsWith(IMAGE_PREFIX);
    if (stale) await rm(path.join(dir, n), { force: true });
  }
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Saves a running guest's state into `dest` (its devices) and `ramOf(dest)` (its RAM, the template of its shape).
 * The devices go through QEMU's migration to a Unix socket this process listens on (QEMU runs sandboxed and
 * unprivileged: it cannot open the cache, and may not spawn a writer), with RAM left out (x-ignore-shared: the
 * guest's RAM is a shared memfd); while the guest is paused at the end of the stream, qnet copies that memfd out of
 * QEMU (as root, through /proc), holes for zero pages. Then the guest is resumed. Resolves with both files' sizes.
 */
export async function saveGuestState(
  qmpPath: string,
  sockPath: string,
  dest: string,
  owner: { uid: number; gid: number },
  pid: number,
  disk?: { overlay: string; base: string; identity: unknown },
): Promise<number> {
  await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  const stamp = `${process.pid}.${Date.now()}.tmp`;
  const tmp = `${dest}.${stamp}`;
  const ramTmp = `${ramOf(dest)}.${stamp}`;
  const diskTmp = `${layerOf(dest)}.${stamp}`;
  const out = createWriteStream(tmp, { mode: 0o600 });
  const server = net.createServer({ allowHalfOpen: false });
  const streamed = new Promise<void>((resolve, reject) => {
    server.once('connection', (c) => {
      server.close();
      c.pipe(out);
      out.once('finish', resolve);
      out.once('error', reject);
      c.once('error', reject);
    });
    server.once('error', reject);
  });
  await rm(sockPath, { force: true });
  await new Promise<void>((resolve, reject) => server.listen(sockPath, resolve).once('error', reject));
  const qmp = await QmpClient.connect(qmpPath, 5000);
  try {
    await chown(sockPath, owner.uid, owner.gid);
    // The default bandwidth limit (128 MiB/s) would stretch the pause; the stream only goes to a local file.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 8 * 2 ** 30 });
    // The end of the migration comes as a MIGRATION event (completed, failed or cancelled), not from polling.
    // x-ignore-shared: the RAM (a shared memory backend) is not streamed; it is copied out below.
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }, { capability: 'x-ignore-shared', state: true }] });
    const ended = qmp.waitEvent('MIGRATION', 60_000, (d) => ['completed', 'failed', 'cancelled'].includes((d as { status?: string }).status ?? ''));
    ended.catch(() => {});
    await qmp.execute('migrate', { uri: `unix:${sockPath}` });
    const { status } = (await ended) as { status: string };
    if (status !== 'completed') {
      const m = await qmp.execute<{ 'error-desc'?: string }>('query-migrate').catch(() => ({ 'error-desc': undefined }));
      throw new RuntimeError(`saving the guest's state failed: ${m['error-desc'] ?? status}`);
    }
    // The bound's timer is cleared once the stream is in: left pending, it held `qnet up` 10 s past its end.
    let bound: NodeJS.Timeout | undefined;
    try {
      await Promise.race([streamed, new Promise((_, reject) => (bound = setTimeout(() => reject(new RuntimeError('the saved state did not arrive')), 10000)))]);
    } finally {
      clearTimeout(bound);
    }
    // Paused since the stream ended: its RAM is what the device state goes with.
    const ramBytes = await copyGuestRam(pid, ramTmp);
    // An image node's disk as it is now (QEMU flushed and let go of it at the end of the stream): the layer the
    // restored nodes' overlays go on; the page cache in the saved RAM matches it.
    const diskBytes = disk ? await copySparse(disk.overlay, diskTmp) : 0;
    if (disk) {
      await writeFile(baseRecordOf(dest), JSON.stringify({ base: disk.base, identity: disk.identity }) + '\n', { mode: 0o600 });
      await rename(diskTmp, layerOf(dest));
    }
    await rename(ramTmp, ramOf(dest));
    await rename(tmp, dest);
    await pruneSnapshots(dest);
    return out.bytesWritten + ramBytes + diskBytes;
  } catch (e) {
    await rm(tmp, { force: true });
    await rm(ramTmp, { force: true });
    await rm(diskTmp, { force: true });
    throw e;
  } finally {
    server.close();
    await rm(sockPath, { force: true });
    // A migration leaves the source paused whether it completed or failed: carry on either way.
    await qmp.execute('cont').catch(() => {});
    qmp.close();
  }
}

/** Copies a paused guest's RAM (QEMU's memfd memory backend) to `file`, leaving holes for zero pages; its bytes. */
async function copyGuestRam(pid: number, file: string): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`);
  let memfd: string | undefined;
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith('/memfd:memory-backend-memfd')) memfd = `/proc/${pid}/fd/${fd}`;
  }
  if (!memfd) throw new RuntimeError(`QEMU (pid ${pid}) has no memfd memory backend to save`);
  return copySparse(memfd, file);
}

/** Copies `from` to `to` (mode 0600), skipping blocks of zeros (holes); resolves with the bytes written. */
export async function copySparse(from: string, to: string): Promise<number> {
  const src = await open(from, 'r');
  const dst = await open(to, 'w', 0o600);
  try {
    const size = (await src.stat()).size;
    await dst.truncate(size);
    const buf = Buffer.alloc(2 ** 20);
    // Zero chunks found by a native compare (memcmp): a byte-by-byte JS scan of a 512 MiB Debian template took 1.3-2.1 s
    // here, the copy itself (dd conv=sparse) 0.14 s.
    const zero = Buffer.alloc(buf.length);
    let written = 0;
    for (let off = 0; off < size; off += buf.length) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - off), off);
      if (!bytesRead) break;
      const chunk = buf.subarray(0, bytesRead);
      if (!chunk.equals(zero.subarray(0, bytesRead))) {
        await dst.write(chunk, 0, bytesRead, off);
        written += bytesRead;
      }
    }
    return written;
  } finally {
    await src.close();
    await dst.close();
  }
}

/** Marks a saved state as just used (the cache keeps the most recently used ones). */
export async function touchSnapshot(file: string): Promise<void> {
  const now = new Date();
  await utimes(file, now, now).catch(() => {});
}

/** Removes a saved state (and its RAM template) that could not be restored (a QEMU or kernel update the key missed). */
export async function dropSnapshot(file: string): Promise<void> {
  await rm(file, { force: true });
  await rm(ramOf(file), { force: true });
  await rm(layerOf(file), { force: true });
  await rm(baseRecordOf(file), { force: true });
}

// Keeps the SNAPSHOTS_KEPT most recently used states.
async function pruneSnapshots(keep: string): Promise<void> {
  const dir = path.dirname(keep);
  const names = await readdir(dir).catch(() => [] as string[]);
  const files = await Promise.all(
    names.map(async (n) => ({ file: path.join(dir, n), st: await stat(path.join(dir, n)).catch(() => null) })),
  );
  const states = files.filter((f) => f.file.endsWith('.state') && f.st).sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs);
  for (const f of states.slice(SNAPSHOTS_KEPT)) if (f.file !== keep) await dropSnapshot(f.file);
}
