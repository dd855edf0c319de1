// Which nodes use qnet's resume hook and what their saved states are keyed by: the mark of the images that carry
// it, the names the guest side knows it by, the shape of a node, the message at its snapshot point. Pure and small
// (the planner, the renderers and `status` load it; the hook's own text is in resume.ts).
import { createHash } from 'node:crypto';
import type { ResolvedNode } from '../topology/model.js';

/** Bump when the hook changes: images carry it in their mark, saved states are keyed by it. */
export const RESUME_VERSION = 1;
/** The GPT name of the BIOS boot partition of images that carry the hook (read by the image check). */
export const RESUME_MARK = `qnet-resume-${RESUME_VERSION}`;
/** The fw_cfg item with the node's configuration for the hook. */
export const RESUME_FW_CFG = 'opt/org.qnet/resume';
/** The SMBIOS system serial that tells the image's generator qnet starts it for the hook. */
export const RESUME_SERIAL = 'qnet-resume';

/** The disk layer saved with a hook node's state (`X.state` -> `X.disk`: the saver's overlay at the snapshot point). */
export function layerOf(state: string): string {
  return state.replace(/\.state$/, '.disk');
}

/** Whether a node uses the hook: its image carries it, and nothing in the node needs cloud-init or a boot of its own. */
export function usesResumeHook(node: ResolvedNode): boolean {
  const img = node.image;
  return (
    !!img &&
    img.resume === RESUME_VERSION &&
    img.config === 'cloud-init' &&
    !img.userData &&
    !img.persist &&
    !img.cdrom &&
    img.firmware === 'bios' &&
    img.ready.kind === 'agent' &&
    // User-mode and socket NICs keep connection state of their own in QEMU: such a node always boots.
    node.nics.every((n) => n.kind === 'bridge')
  );
}

/** The shape of a hook node: what its saved state depends on besides QEMU's version (the same shape, the same state). */
export function resumeShape(node: ResolvedNode): string {
  const img = node.image!;
  return createHash('sha256')
    .update(
      JSON.stringify({
        RESUME_VERSION,
        base: img.identity,
        format: img.format,
        size: img.diskSize ?? img.virtualSize,
        bus: img.bus,
        machine: img.machine,
        vnc: !!img.vnc,
        memory: node.memory,
        cpus: node.cpus,
        nics: node.nics.map((n) => [n.kind, n.model]),
      }),
    )
    .digest('hex')
    .slice(0, 20);
}

/** What the hook is told at its snapshot point: "resume EPOCH", the node's configuration, "end" (the control channel adds the last newline). */
export function renderHookResumeMessage(config: string, epoch: number): string {
  return `resume ${epoch}\n${config.endsWith('\n') ? config : `${config}\n`}end`;
}
