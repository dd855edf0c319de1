// The built-in guest: a Debian kernel and qnet's busybox initramfs, configured through fw_cfg at boot, ready when
// it says READY on its control port, started from a saved state of its shape where there is one. Pure.
import { nodeDir } from '../dirs.js';
import type { GuestSnapshot, PlanContext, Step } from '../plan/steps.js';
import { renderGuestConfig, renderRouterRuleset } from '../render/guest-config.js';
import { ENV_KIND, ENV_LAB, ENV_NODE } from '../render/markers.js';
import { nodeFiles, renderGuestCommand, withIncoming, type GuestMemory } from '../render/qemu.js';
import type { ResolvedLab, ResolvedNode } from '../topology/model.js';
import { renderResumeMessage } from './init-script.js';
import type { GuestKind } from './kinds.js';

/** The built-in guest kind. */
export const builtinKind: GuestKind = {
  name: 'builtin',
  steps: builtinSteps,
  ready: () => ({ kind: 'control' }),
  // Nothing to flush (no disk): quit at once.
  stop: { acpi: false },
  execHint: (lab, node) => `the guest agent of ${lab}/${node.name} did not answer (is it up? \`qnet status ${lab}\`)`,
  resumeMessage: renderResumeMessage,
};

/** Prepare and start one built-in node: its boot configuration (and router ruleset), then QEMU. */
function builtinSteps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext, snapshot?: GuestSnapshot): Step[] {
  const steps: Step[] = [];
  const files = nodeFiles(nodeDir(lab.name, node.name));
  steps.push({ title: `prepare ${node.name}`, do: { kind: 'mkdir', path: files.dir, mode: 0o700, owner: ctx.guestIds } });
  steps.push({
    title: `write ${node.name} boot configuration`,
    do: { kind: 'write', path: files.config, content: renderGuestConfig(lab, node, { snapshot: snapshot?.mode === 'save' }), mode: 0o644 },
  });
  if (node.router)
    steps.push({
      title: `write ${node.name} router ruleset`,
      do: { kind: 'write', path: files.nft, content: renderRouterRuleset(lab, node), mode: 0o644 },
    });
  const command = (memory: GuestMemory) =>
    renderGuestCommand({
      node,
      files,
      image: ctx.image,
      accel: ctx.accel,
      memory,
      netns: lab.netns,
      user: String(ctx.guestIds.uid),
      group: String(ctx.guestIds.gid),
      ...(ctx.rootless ? { rootless: true } : {}),
      ...(ctx.qemuBinary ? { binary: ctx.qemuBinary } : {}),
    });
  // A saver's RAM is a shared memfd (copied out as the template at its snapshot point); a restored guest maps the
  // template privately; it boots with plain memory if the saved state turns out unusable.
  const argv = command(snapshot?.mode === 'save' ? 'template-source' : 'plain');
  if (snapshot?.mode === 'restore') snapshot = { ...snapshot, argv: withIncoming(command('template')) };
  steps.push({
    title: `${snapshot?.mode === 'restore' ? 'restore' : 'start'} ${node.name} (${ctx.accel}, ${node.memory} MiB, ${node.cpus} CPU${node.cpus > 1 ? 's' : ''}${snapshot ? `; ${snapshot.mode === 'save' ? 'saved at its snapshot point' : 'from the saved state of its shape'}` : ''})`,
    do: { kind: 'start-guest', node: node.name, argv, env: { [ENV_LAB]: lab.name, [ENV_NODE]: node.name, [ENV_KIND]: 'builtin' }, ...(snapshot ? { snapshot } : {}) },
    undo: { kind: 'stop-guest', node: node.name },
  });
  return steps;
}
