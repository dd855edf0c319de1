// `qnet export`: writes a lab out as plain shell scripts, or the host side of its bridged networks as ifupdown or
// systemd-networkd configuration (side effects: files in the chosen directory only).
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
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
  o: { runner: CommandRunner; format: string; dir: string; accel?: Accel; lan?: Record<string, LanUplink> },
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
  // QEMU runs as the unprivileged user: it must be able to reach the directory its sockets go in.
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const st = await stat(d).catch(() => null);
    if (st && (st.mode & 0o001) === 0)
      throw new UserError(`--out: ${d} is not searchable by others, so the guests (user ${guestUser()}) could not reach ${dir}; choose another directory or chmod o+x ${d}`);
    if (d === path.dirname(d)) break;
  }
  const files = renderShellExport(lab, { image, accel: o.accel ?? 'tcg', user: guestUser(), dir });
  return { files: await writeFiles(dir, files), notes: [] };
}
