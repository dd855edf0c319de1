// `qnet export`: writes a lab out as plain shell scripts, or the host side of its bridged networks as ifupdown or
// systemd-networkd configuration (side effects: files in the chosen directory only; it reads the host's addresses
// and routes to choose a lab's uplink, and builds the built-in guest if the cache has none).
import { constants } from 'node:fs';
import { chmod, copyFile, link, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { ensureImage } from '../guest/image.js';
import type { CommandRunner } from '../host/run.js';
import { renderShellExport } from '../render/export-sh.js';
import type { Accel } from '../render/qemu.js';
import { onLan, type ResolvedLab } from '../topology/model.js';
import { exportableBridged, renderIfupdown, renderNetworkd } from '../render/export-host.js';
import type { LanUplink } from '../render/lan.js';
import { inspectLanUplinks } from './lan.js';
import { guestUser } from '../dirs.js';
import { labIds } from '../host/users.js';
import { forwardingLedger } from '../host/forwarding.js';
import { needsUplink } from '../render/uplink.js';
import { chooseUplink } from './up.js';
import type { LabState } from './state.js';

export const EXPORT_FORMATS = ['sh', 'ifupdown', 'networkd'] as const;

/** Writes files below `dir` (made if needed); returns their paths. */
async function writeFiles(dir: string, files: Record<string, string>): Promise<string[]> {
  const written: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content);
    await chmod(p, name.endsWith('.sh') ? 0o755 : 0o644);
    written.push(p);
  }
  return written;
}

/**
 * Writes the export of `lab` into `dir`; returns the files written and notes on what it leaves out. `lan` is the
 * uplinks as `up` found them (a running lab); without it they are read from the host now.
 */
export async function exportLab(
  lab: ResolvedLab,
  o: { runner: CommandRunner; format: string; dir: string; accel?: Accel; lan?: Record<string, LanUplink>; state?: LabState },
): Promise<{ files: string[]; notes: string[] }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format))
    throw new UserError(`--format: "${o.format}" is not one of ${EXPORT_FORMATS.join(', ')}`);
  if (o.format === 'ifupdown' || o.format === 'networkd') {
    if (!lab.networks.some((n) => n.mode === 'bridged'))
      throw new UserError(`--format ${o.format} writes the host side of bridged networks, and lab ${lab.name} has none (use --format sh for the whole lab)`);
    const lan = o.lan ?? (await inspectLanUplinks(lab, o.runner, () => {}));
    const { nets, notes } = exportableBridged(lab, lan);
    if (!nets.length) throw new UserError(`lab ${lab.name}: nothing to export: ${notes.join('; ')}`);
    const files = o.format === 'ifupdown' ? { interfaces: renderIfupdown(lab, nets) } : renderNetworkd(lab, nets);
    return { files: await writeFiles(path.resolve(o.dir), files), notes };
  }
  const lanNet = lab.networks.find(onLan);
  if (lanNet)
    throw new UserError(
      `networks.${lanNet.name}: --format sh covers labs on the host's own bridges and namespaces; a ${lanNet.mode} network's host side (uplink ${lanNet.uplink}) is not in it (--format ifupdown or networkd writes a bridged one's)`,
    );
  const imageNode = lab.nodes.find((n) => n.image);
  if (imageNode)
    throw new UserError(
      `nodes.${imageNode.name}: --format sh writes labs of built-in guests; image nodes (overlays, cloud-init seeds, descriptors handed to QEMU) are not exported yet: \`qnet up --dry-run\` prints every command qnet runs for them`,
    );
  const image = await ensureImage(o.runner);
  const dir = path.resolve(o.dir);
  // QEMU runs as the lab's own unprivileged uid, dnsmasq as qnet's user: they must reach the files below `dir`.
  const { uid } = labIds(lab.name);
  for (let d = dir; ; d = path.dirname(d)) {
    const st = await stat(d).catch(() => null);
    if (st && (st.mode & 0o001) === 0)
      throw new UserError(`--out: ${d} is not searchable by others, so the guests (the lab's uid ${uid}) could not reach ${dir}; choose another directory or chmod o+x ${d}`);
    if (d === path.dirname(d)) break;
  }
  // The uplink /30 is chosen as `up` chooses it, free on this host now; ifup.sh checks it again where it runs.
  const uplink = needsUplink(lab) ? await chooseUplink(o.runner, lab, { subnets: false }) : undefined;
  const out = renderShellExport(lab, { image, accel: o.accel ?? 'tcg', ids: labIds(lab.name), dnsUser: guestUser(), dir, ledger: forwardingLedger(), ...(uplink ? { uplink } : {}) });
  const written = await writeFiles(dir, out.files);
  for (const [rel, from] of Object.entries(out.copies)) written.push(await copyIn(from, path.join(dir, rel)));
  return { files: written, notes: runtimeNotes(o.state) };
}

/**
 * Puts a file of qnet's cache into the export: a hard link where both are on one file system (the cache replaces
 * its files by renaming new ones in, never by writing them in place, so the export keeps what it has), else a copy
 * (a reflink where the file system can).
 */
async function copyIn(from: string, to: string): Promise<string> {
  await mkdir(path.dirname(to), { recursive: true });
  await rm(to, { force: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to, constants.COPYFILE_FICLONE);
    await chmod(to, 0o644);
  }
  return to;
}

/** What a running lab has that its topology does not say, and the export leaves out: links pulled, impairments changed. */
export function runtimeNotes(state: LabState | undefined): string[] {
  const notes: string[] = [];
  const down = Object.entries(state?.links ?? {}).filter(([, nics]) => nics.length);
  if (down.length) notes.push(`the running lab's links pulled by \`qnet link\` (${down.map(([n]) => n).join(', ')}) are not in the export: its guests start with every link up, as the topology says`);
  const impaired = Object.keys(state?.impair ?? {});
  if (impaired.length) notes.push(`impairments changed by \`qnet impair\` on ${impaired.join(', ')} are not in the export: it has the topology's`);
  return notes;
}
