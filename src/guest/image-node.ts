// Image nodes: the user's own disk image, never written (each node runs on a qcow2 overlay of its own), configured
// by a cloud-init NoCloud seed or not at all, ready by the signal that fits the guest, stopped by the ACPI power
// button. Pure: the steps and QEMU's arguments; lab/ carries them out.
import path from 'node:path';
import { labDir, labStateDir, nodeDir } from '../dirs.js';
import type { GuestSnapshot, PassedFile, PlanContext, Step } from '../plan/steps.js';
import { ENV_KIND, ENV_LAB, ENV_NODE, ENV_SERVICE } from '../render/markers.js';
import { commonArgs, machineWithMemory, memoryArgs, nicArgs, nodeFiles, TEMPLATE_FD, withIncoming, wrapGuestCommand, type GuestMemory, type NodeFiles } from '../render/qemu.js';
import type { ImageSpec, ResolvedLab, ResolvedNode } from '../topology/model.js';
import { labRoute } from '../topology/reach.js';
import { formatSize } from '../topology/size.js';
import { CONTROL_PORT as IMAGE_CONTROL_PORT } from './init-script.js';
import { keptPaths } from './kept.js';
import type { GuestKind, ReadyWait } from './kinds.js';
import type { BootWatch } from './boot-failure.js';
import { layerOf, renderHookResumeMessage, RESUME_FW_CFG, RESUME_SERIAL, usesResumeHook } from './resume-mark.js';

/** The agent's well-known port name: Debian's qemu-guest-agent starts by itself (udev) when it appears. */
export const AGENT_PORT = 'org.qemu.guest_agent.0';

/** TCG translation cache of an image node, MiB (see renderImageQemuArgs: a real OS runs far more distinct code than the built-in guest). */
export const IMAGE_TB_MIB = 128;

/** The files of an image node: its run directory's, and its disk (in the run directory, or kept with persist). */
export interface ImageNodeFiles extends NodeFiles {
  overlay: string;
  /** A restored node's overlay: on the disk layer saved with the state of its shape (the base under it). */
  restored: string;
  vars: string;
  seedDir: string;
  seedIso: string;
  vnc: string;
  vncLog: string;
  hostKey: string;
  /** The firmware's debug console (see BootWatch). */
  firmwareLog: string;
  /** The monitor for events (see BootWatch). */
  events: string;
}

/** Where an image node's files are. */
export function imageNodeFiles(lab: string, node: ResolvedNode): ImageNodeFiles {
  const dir = nodeDir(lab, node.name);
  const kept = node.image?.persist ? keptPaths(lab, node.name) : undefined;
  return {
    ...nodeFiles(dir),
    overlay: kept?.disk ?? path.join(dir, 'disk.qcow2'),
    restored: path.join(dir, 'restored.qcow2'),
    vars: kept?.vars ?? path.join(dir, 'OVMF_VARS.fd'),
    seedDir: path.join(dir, 'seed'),
    seedIso: path.join(dir, 'seed.iso'),
    vnc: path.join(dir, 'vnc.sock'),
    vncLog: path.join(dir, 'vnc-forward.log'),
    hostKey: kept?.hostKey ?? path.join(dir, 'ssh_host_ed25519_key'),
    firmwareLog: path.join(dir, 'firmware.log'),
    events: path.join(dir, 'events.sock'),
  };
}

/** The name of a node's VNC forward among the lab's helper processes (it goes and comes with its node). */
export function vncService(node: string): string {
  return `vnc:${node}`;
}

/** The lab's SSH key (kept with the disks when a node persists, so that a kept guest still accepts it). */
export function labKeyFiles(lab: ResolvedLab): { dir: string; key: string; knownHosts: string; runDir: string } {
  const kept = lab.nodes.some((n) => n.image?.persist);
  const dir = kept ? path.join(labStateDir(lab.name), 'ssh') : path.join(labDir(lab.name), 'ssh');
  const runDir = path.join(labDir(lab.name), 'ssh');
  return { dir, key: path.join(dir, 'id_ed25519'), knownHosts: path.join(runDir, 'known_hosts'), runDir };
}

/** True when the lab has image nodes configured by cloud-init (they need the lab's SSH key). */
export function needsLabKey(lab: ResolvedLab): boolean {
  return lab.nodes.some((n) => n.image?.config === 'cloud-init');
}

/** The step that makes the lab's SSH key (none when it exists: a kept lab's, or one an earlier step made). */
export function labKeySteps(lab: ResolvedLab, ctx: PlanContext): Step[] {
  if (!needsLabKey(lab)) return [];
  const k = labKeyFiles(lab);
  const steps: Step[] = [{ title: 'prepare the lab SSH key directory', do: { kind: 'mkdir', path: k.runDir, mode: 0o700 } }];
  if (k.dir !== k.runDir) steps.push(...keptLabDirSteps(lab), { title: 'prepare the kept SSH key directory', do: { kind: 'mkdir', path: k.dir, mode: 0o700 } });
  if (!ctx.labKey)
    steps.push({
      title: `make the lab SSH key ${k.key} (ed25519, root logs in with it: \`qnet ssh\`)`,
      do: { kind: 'exec', argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `qnet lab ${lab.name}`, '-f', k.key] },
      ...(k.dir !== k.runDir ? { undo: { kind: 'rmtree' as const, path: k.dir } } : {}),
    });
  return steps;
}

/** The lab's directory of kept disks: made when a node persists, removed by a rollback if nothing else is in it. */
export function keptLabDirSteps(lab: ResolvedLab): Step[] {
  return [{ title: `prepare ${labStateDir(lab.name)} (kept disks)`, do: { kind: 'mkdir', path: labStateDir(lab.name), mode: 0o700 }, undo: { kind: 'rmdir-empty', path: labStateDir(lab.name) } }];
}

/** The image node kind. */
export const imageKind: GuestKind = {
  name: 'image',
  steps: imageSteps,
  ready: imageReady,
  bootWatch: (lab: string, node: ResolvedNode): BootWatch => {
    const f = imageNodeFiles(lab, node);
    return { firmwareLog: f.firmwareLog, events: f.events };
  },
  // A real OS gets the power button and time to flush its disk (`down --grace`, 30 s by default) before QEMU quits.
  stop: { acpi: true },
  resumeMessage: renderHookResumeMessage,
  execHint: (lab, node) =>
    `${lab}/${node.name} has no guest agent answering after 30 s (install qemu-guest-agent in its image${node.image?.config === 'none' ? '' : ', or add it with cloudInit.userData.packages'}); ` +
    (node.image?.config === 'cloud-init' ? `\`qnet ssh ${lab} ${node.name} -- CMD\` runs commands over SSH with the lab key` : `with config: none qnet gives the guest no SSH key: use \`qnet console ${lab} ${node.name}\`, or config: cloud-init`),
};

function imageReady(lab: ResolvedLab, node: ResolvedNode): ReadyWait {
  const img = node.image!;
  const r = img.ready;
  switch (r.kind) {
    case 'agent':
      // A default readiness takes a guest without an agent as it is (with a note); one asked for requires it.
      // A node that uses the resume hook runs no cloud-init: the hook's READY is what says it is configured.
      if (img.config !== 'cloud-init') return { kind: 'agent' };
      return { kind: usesResumeHook(node) ? 'hook' : 'cloud-init', agent: img.readyDefault ? 'if-present' : 'require' };
    case 'lease': {
      const nets = new Map(lab.networks.map((n) => [n.name, n]));
      return { kind: 'lease', leases: node.nics.filter((c) => c.kind === 'bridge' && nets.get(c.network)?.dhcp).map((c) => ({ network: c.network, mac: c.mac })) };
    }
    case 'console':
      return { kind: 'console', pattern: r.pattern };
    case 'tcp':
      return { kind: 'tcp', route: labRoute(lab, node, r.port)! };
    case 'none':
      return { kind: 'none' };
  }
}

// Where CD-ROMs go on each chipset: q35's AHCI ports (ide.N), or pc's secondary IDE channel.
function cdSlot(machine: ImageSpec['machine'], i: number): string {
  return machine === 'q35' ? `bus=ide.${i + 1}` : `bus=ide.1,unit=${i}`;
}

/** The disk's controller and device on its bus (sata on pc needs an AHCI controller; q35 has one built in). */
function diskDevice(img: ImageSpec): string[] {
  switch (img.bus) {
    case 'virtio':
      return ['-device', 'virtio-blk-pci,drive=disk,bootindex=1'];
    case 'scsi':
      return ['-device', 'virtio-scsi-pci,id=scsi0', '-device', 'scsi-hd,drive=disk,bus=scsi0.0,bootindex=1'];
    case 'sata':
      return img.machine === 'q35' ? ['-device', 'ide-hd,drive=disk,bus=ide.0,bootindex=1'] : ['-device', 'ahci,id=ahci0', '-device', 'ide-hd,drive=disk,bus=ahci0.0,bootindex=1'];
    case 'ide':
      // q35 has no parallel IDE: its ICH9 controller (AHCI) is where IDE disks go, as on real q35 boards.
      return ['-device', `ide-hd,drive=disk,bus=ide.0${img.machine === 'pc' ? ',unit=0' : ''},bootindex=1`];
  }
}

/** A -blockdev of a file handed over as descriptor set `set` (never probed: the format is always given). */
function blockdev(name: string, driver: string, set: number, opts: { readOnly?: boolean; backing?: string | null; discard?: boolean } = {}): string {
  const file: Record<string, unknown> = { driver: 'file', filename: `/dev/fdset/${set}`, ...(opts.readOnly ? { 'read-only': true } : {}), ...(opts.discard ? { discard: 'unmap' } : {}) };
  const node: Record<string, unknown> = { 'node-name': name, driver, ...(opts.readOnly ? { 'read-only': true } : {}) };
  if (opts.backing !== undefined) node.backing = opts.backing;
  if (opts.discard) Object.assign(node, { discard: 'unmap', 'detect-zeroes': 'unmap' });
  node.file = file;
  return JSON.stringify(node);
}

/**
 * QEMU's arguments for an image node and the files it is handed as descriptors (fd 4 on: fd 3 is a saved state's).
 * The base is opened read-only by qnet and given to QEMU with "backing": null (formats that can have one), so QEMU
 * can neither write it nor follow a backing file named in it; the overlay names the base, but QEMU uses the node
 * given here.
 */
export function renderImageQemuArgs(
  lab: ResolvedLab,
  node: ResolvedNode,
  files: ImageNodeFiles,
  ctx: Pick<PlanContext, 'accel' | 'ovmf'>,
  o: { memory?: GuestMemory; layer?: string } = {},
): { args: string[]; fds: PassedFile[] } {
  const img = node.image!;
  if (!img.format) throw new Error(`image of ${node.name} not inspected (no format)`);
  const memory = o.memory ?? 'plain';
  const hook = usesResumeHook(node);
  const fds: PassedFile[] = [];
  // The files come after the RAM template's descriptor when there is one.
  const first = memory === 'template' ? TEMPLATE_FD + 1 : 4;
  const pass = (file: string, write: boolean, label: string) => {
    fds.push({ path: file, write });
    return { set: fds.length, add: ['-add-fd', `fd=${first - 1 + fds.length},set=${fds.length},opaque=${label}`] };
  };
  const uefi = img.firmware === 'uefi';
  const machine = machineWithMemory(`${img.machine}${uefi ? ',pflash0=fw-code,pflash1=fw-vars' : ''}`, memory);
  // A translation cache of 128 MiB, not the built-in guest's 32: a restored Debian guest runs far more distinct code
  // (systemd, networkd, the agent) and flushed a 32 MiB cache 6 times in its first 10 s (HMP `info jit`), translating
  // it all again each time. 10 restored Debian nodes up: 16.7 and 17.1 s (QEMU CPU 31 s) against 22.7-25.0 s (43-46 s)
  // with 32, taken in turn by hand on 2026-12-06.
  const args = [...commonArgs({ node, files, accel: ctx.accel, machine, reboot: true, display: !!img.vnc, tbSize: IMAGE_TB_MIB }), ...memoryArgs(node, memory)];
  const base = pass(img.path, false, 'base');
  // Only formats that can name a backing file take "backing" (QEMU refuses the option on raw, vdi and vhdx: a raw
  // base failed to start before this).
  const canBack = img.format === 'qcow2' || img.format === 'vmdk';
  args.push(...base.add, '-blockdev', blockdev('base', img.format, base.set, { readOnly: true, ...(canBack ? { backing: null } : {}) }));
  if (o.layer) {
    // Restored: the disk as its shape's saver had it at the snapshot point (read-only), under this node's overlay.
    const layer = pass(o.layer, false, 'layer');
    const overlay = pass(files.restored, true, 'disk');
    args.push(...layer.add, ...overlay.add);
    args.push('-blockdev', blockdev('layer', 'qcow2', layer.set, { readOnly: true, backing: 'base' }));
    args.push('-blockdev', blockdev('disk', 'qcow2', overlay.set, { backing: 'layer', discard: true }));
  } else {
    const overlay = pass(files.overlay, true, 'disk');
    args.push(...overlay.add, '-blockdev', blockdev('disk', 'qcow2', overlay.set, { backing: 'base', discard: true }));
  }
  args.push(...diskDevice(img));
  let cd = 0;
  if (hook) {
    // qnet's resume hook (images qnet made): no cloud-init in this boot; the node's configuration on fw_cfg.
    args.push('-smbios', `type=1,serial=${RESUME_SERIAL}`, '-fw_cfg', `name=${RESUME_FW_CFG},file=${files.config}`);
  } else if (img.config === 'cloud-init') {
    const seed = pass(files.seedIso, false, 'seed');
    args.push(...seed.add, '-blockdev', blockdev('seed', 'raw', seed.set, { readOnly: true }), '-device', `ide-cd,drive=seed,${cdSlot(img.machine, cd++)}`);
  }
  if (img.cdrom) {
    const iso = pass(img.cdrom, false, 'cdrom');
    args.push(...iso.add, '-blockdev', blockdev('cdrom', 'raw', iso.set, { readOnly: true }), '-device', `ide-cd,drive=cdrom,${cdSlot(img.machine, cd++)},bootindex=2`);
  }
  if (uefi) {
    if (!ctx.ovmf) throw new Error('renderImageQemuArgs: firmware uefi needs ctx.ovmf');
    const code = pass(ctx.ovmf.code, false, 'fw-code');
    const vars = pass(files.vars, true, 'fw-vars');
    args.push(...code.add, ...vars.add, '-blockdev', blockdev('fw-code', 'raw', code.set, { readOnly: true }), '-blockdev', blockdev('fw-vars', 'raw', vars.set));
  }
  args.push(
    // Named ports only (port 0 is kept for a console): 3 ports, for the control port and the agent's.
    '-device', 'virtio-serial-pci,id=vser0,max_ports=3',
    '-chardev', `socket,id=control,path=${files.control},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=control,name=${IMAGE_CONTROL_PORT}`,
    '-chardev', `socket,id=agent,path=${files.agent},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT}`,
    // Free page reporting punches holes in file-backed RAM: off when the RAM is (or maps) a template.
    '-device', `virtio-balloon-pci,free-page-reporting=${memory === 'plain' ? 'on' : 'off'}`,
    '-device', 'vmgenid,guid=auto',
    // How a guest that cannot boot is told from one still booting (lab/ready.ts): the firmware's debug console, where
    // SeaBIOS prints "No bootable device." (on the serial port it prints nothing, on a screen only if there is one);
    // and pvpanic, which a Linux kernel with its driver loaded (Debian: pvpanic-mmio, a module) writes on a panic,
    // which QEMU reports as GUEST_PANICKED on a monitor of its own. panic=none: QEMU only reports it, the guest
    // goes on as it would without the device (it halts, or reboots as its kernel's panic= says).
    '-chardev', `file,id=firmware,path=${files.firmwareLog}`,
    '-device', 'isa-debugcon,iobase=0x402,chardev=firmware',
    '-device', 'pvpanic',
    '-action', 'panic=none',
    '-chardev', `socket,id=events,path=${files.events},server=on,wait=off`,
    '-mon', 'chardev=events,mode=control',
  );
  // A screen for guests driven through it (Windows): standard VGA, a tablet for an absolute pointer, VNC on a Unix
  // socket only root can open (a TCP port, when asked for, is a forwarder on the host's loopback).
  if (img.vnc) args.push('-device', 'VGA', '-usb', '-device', 'usb-tablet', '-vnc', `unix:${files.vnc}`);
  args.push(...nicArgs(node));
  return { args, fds };
}

/** Prepare and start one image node: run directory, kept directory, host key, overlay, firmware variables, seed, QEMU. */
function imageSteps(lab: ResolvedLab, node: ResolvedNode, ctx: PlanContext, snapshot?: GuestSnapshot): Step[] {
  const img = node.image!;
  const files = imageNodeFiles(lab.name, node);
  const kept = img.persist ? ctx.kept?.[node.name] : undefined;
  const keptDir = img.persist ? keptPaths(lab.name, node.name) : undefined;
  const steps: Step[] = [{ title: `prepare ${node.name}`, do: { kind: 'mkdir', path: files.dir, mode: 0o700, owner: ctx.guestIds } }];
  if (keptDir && !kept?.disk)
    // A new kept directory goes again if the up fails; one from an earlier up is the user's and stays.
    steps.push(...keptLabDirSteps(lab), { title: `prepare ${node.name}'s kept disk directory ${keptDir.dir}`, do: { kind: 'mkdir', path: keptDir.dir, mode: 0o700 }, undo: { kind: 'rmtree', path: keptDir.dir } });
  if (img.config === 'cloud-init' && !(kept?.hostKey && kept.disk))
    steps.push({
      title: `make ${node.name}'s SSH host key (qnet knows it, so \`qnet ssh\` checks it)`,
      do: { kind: 'exec', argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${node.name}.${lab.name}`, '-f', files.hostKey] },
    });
  const size = img.diskSize ?? img.virtualSize!;
  if (kept?.disk) {
    if (kept.size !== undefined && img.diskSize !== undefined && img.diskSize > kept.size)
      steps.push({ title: `grow ${node.name}'s kept disk to ${formatSize(img.diskSize)}`, do: { kind: 'exec', argv: ['qemu-img', 'resize', '-f', 'qcow2', files.overlay, String(img.diskSize)] } });
  } else {
    // The base is recorded first: a kept disk without a record is never qnet's own (a killed up leaves the record).
    if (keptDir && kept)
      steps.push({ title: `record the base of ${node.name}'s kept disk`, do: { kind: 'write', path: keptDir.base, content: JSON.stringify(kept.base, null, 2) + '\n', mode: 0o600 } });
    steps.push({
      title: `create ${node.name}'s overlay on ${img.path} (${img.format}, ${formatSize(size)}; the base is never written)`,
      // -u: qemu-img does not open the base (its size was read when it was checked); the format is given, never probed.
      do: { kind: 'exec', argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', img.format!, '-b', img.path, '-u', files.overlay, String(size)] },
    });
  }
  if (img.firmware === 'uefi' && !kept?.vars) {
    if (!ctx.ovmf) throw new Error('planUp: firmware uefi needs ctx.ovmf');
    steps.push({ title: `copy the UEFI variables store for ${node.name}`, do: { kind: 'copy', from: ctx.ovmf.vars, to: files.vars, mode: 0o600 } });
  }
  const hook = usesResumeHook(node);
  if (snapshot?.mode === 'restore')
    steps.push({
      title: `create ${node.name}'s overlay on the disk saved with the state of its shape`,
      do: { kind: 'exec', argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', layerOf(snapshot.path), '-u', files.restored, String(size)] },
    });
  const k = labKeyFiles(lab);
  if (hook)
    steps.push({
      title: `write ${node.name}'s configuration for qnet's resume hook (its image has it: no cloud-init in this boot)`,
      do: { kind: 'resume-config', node: node.name, file: files.config, labKey: `${k.key}.pub`, hostKey: files.hostKey, knownHosts: k.knownHosts, snapshot: snapshot?.mode === 'save', owner: ctx.guestIds },
    });
  else if (img.config === 'cloud-init')
    steps.push({
      title: `write ${node.name}'s cloud-init seed (NoCloud ISO: meta-data, user-data, network-config)`,
      do: { kind: 'seed', node: node.name, dir: files.seedDir, iso: files.seedIso, labKey: `${k.key}.pub`, hostKey: files.hostKey, knownHosts: k.knownHosts },
    });
  const wrap = (args: string[]) => wrapGuestCommand({ netns: lab.netns, user: String(ctx.guestIds.uid), group: String(ctx.guestIds.gid), accel: ctx.accel, ...(ctx.rootless ? { rootless: true } : {}), ...(ctx.qemuBinary ? { binary: ctx.qemuBinary } : {}) }, args);
  // A saver's RAM is a shared memfd (copied out as its shape's template at the snapshot point, with its disk); a
  // restored node maps the template privately, on the saved disk; it boots as a plain node if the state is unusable.
  const { args, fds } = renderImageQemuArgs(lab, node, files, ctx, { memory: snapshot?.mode === 'save' ? 'template-source' : 'plain' });
  if (snapshot?.mode === 'save') snapshot = { ...snapshot, disk: { overlay: files.overlay, base: img.path, identity: img.identity } };
  if (snapshot?.mode === 'restore') {
    const r = renderImageQemuArgs(lab, node, files, ctx, { memory: 'template', layer: layerOf(snapshot.path) });
    snapshot = { ...snapshot, argv: withIncoming(wrap(r.args)), fds: r.fds };
  }
  steps.push({
    title: `${snapshot?.mode === 'restore' ? 'restore' : 'start'} ${node.name} (${ctx.accel}, ${node.memory} MiB, ${node.cpus} CPU${node.cpus > 1 ? 's' : ''}; ${path.basename(img.path)} on ${img.bus}, ${img.machine}, ${img.firmware}${snapshot ? `; ${snapshot.mode === 'save' ? 'saved at its snapshot point' : 'from the saved state of its shape'}` : ''})`,
    do: { kind: 'start-guest', node: node.name, argv: wrap(args), env: { [ENV_LAB]: lab.name, [ENV_NODE]: node.name, [ENV_KIND]: 'image' }, fds, ...(snapshot ? { snapshot } : {}) },
    undo: { kind: 'stop-guest', node: node.name },
  });
  if (img.vnc?.port !== undefined) {
    const service = vncService(node.name);
    steps.push({
      title: `forward 127.0.0.1:${img.vnc.port} on the host to ${node.name}'s screen (VNC)`,
      do: {
        kind: 'start-service',
        service,
        // As the lab's own ids: it may open the lab's VNC socket and a port above 1024, nothing else.
        argv: [
          // Rootless: the user's own ids, groups kept (a user namespace may forbid setgroups), no capability left.
          ...(ctx.rootless
            ? ['setpriv', '--reuid=0', '--regid=0', '--keep-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']
            : ['setpriv', `--reuid=${ctx.guestIds.uid}`, `--regid=${ctx.guestIds.gid}`, '--clear-groups', '--no-new-privs', '--']),
          'socat', '-d', '-d', '-lf', files.vncLog, `TCP-LISTEN:${img.vnc.port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${files.vnc}`,
        ],
        env: { [ENV_LAB]: lab.name, [ENV_SERVICE]: service },
        log: files.vncLog,
        readyText: 'listening on',
      },
      undo: { kind: 'stop-service', service },
      hint: `is port ${img.vnc.port} in use on 127.0.0.1? Choose another display.vnc port for nodes.${node.name}`,
    });
  }
  return steps;
}
