// `qnet export`: writes a lab out as plain shell scripts (side effects: files in the chosen directory only).
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { ensureImage } from '../guest/image.js';
import type { CommandRunner } from '../host/run.js';
import { renderShellExport } from '../render/export-sh.js';
import type { Accel } from '../render/qemu.js';
import type { ResolvedLab } from '../topology/model.js';
import { guestUser } from './paths.js';

export const EXPORT_FORMATS = ['sh'] as const;

/** Writes the export of `lab` into `dir`; returns the files written. */
export async function exportLab(lab: ResolvedLab, o: { runner: CommandRunner; format: string; dir: string; accel?: Accel }): Promise<string[]> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format))
    throw new UserError(`--format: "${o.format}" is not one of ${EXPORT_FORMATS.join(', ')}`);
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
