// Pure rendering of the command line that starts one guest: the privilege-dropping wrapper and QEMU's argv.
import { CONTROL_PORT, FW_CFG_NAME, FW_CFG_NFT } from '../guest/init-script.js';
import { USER_NET, type ResolvedNode } from '../topology/model.js';
import { NIC_MODELS } from '../topology/nic-models.js';
import { guestModules } from './guest-config.js';

export type Accel = 'kvm' | 'tcg';

/** Files of one guest inside its run directory. */
export interface NodeFiles {
  dir: string;
  qmp: string;
  console: string;
  consoleLog: string;
  control: string;
  config: string;
  nft: string;
  agent: string;
  log: string;
}

/** The file layout of a node's run directory. */
export function nodeFiles(dir: string): NodeFiles {
  return {
    dir,
    qmp: `${dir}/qmp.sock`,
    console: `${dir}/console.sock`,
    consoleLog: `${dir}/console.log`,
    control: `${dir}/control.sock`,
    config: `${dir}/guest.conf`,
    nft: `${dir}/router.nft`,
    agent: `${dir}/agent.sock`,
    log: `${dir}/qemu.log`,
  };
}

export interface GuestImage {
  kernel: string;
  initrd: string;
  cmdline: string;
}

/**
 * How a built-in guest's RAM is backed. `plain`: anonymous memory, returned to the host by free page reporting.
 * `template-source`: a shared memfd, so that at its snapshot point the guest's RAM can be copied out as the template
 * of its shape. `template`: a private (copy-on-write) mapping of that template, handed over as descriptor 4 by
 * qnet, so that every guest restored from it shares the pages none of them has written (PSS 125 -> about 27 MiB).
 * Both template kinds turn free page reporting off: on QEMU 7.2 a discard of file-backed RAM punches a hole in the
 * file, which would corrupt the template under every sibling (and is refused by the sealed template anyway).
 */
export type GuestMemory = 'plain' | 'template-source' | 'template';

/** The id of the memory backend of a templated guest: part of the saved state, so the same on both sides. */
const RAM_ID = 'ram';
/** The descriptor a restored guest finds its template on (fd 3 is the saved device state). */
export const TEMPLATE_FD = 4;

export interface QemuOptions {
  memory?: GuestMemory;
  node: ResolvedNode;
  files: NodeFiles;
  image: GuestImage;
  accel: Accel;
  binary?: string;
}

/** The memory backend of a guest whose RAM is a template's source or a copy-on-write mapping of one (none when plain). */
export function memoryArgs(node: ResolvedNode, memory: GuestMemory): string[] {
  if (memory === 'template-source') return ['-object', `memory-backend-memfd,id=${RAM_ID},size=${node.memory}M,share=on`];
  if (memory === 'template') return ['-object', `memory-backend-file,id=${RAM_ID},size=${node.memory}M,mem-path=/proc/self/fd/${TEMPLATE_FD},share=off`];
  return [];
}

/** The -machine value of a guest with this memory (a templated guest's RAM is the backend named RAM_ID). */
export function machineWithMemory(machine: string, memory: GuestMemory): string {
  return memory === 'plain' ? machine : `${machine},memory-backend=${RAM_ID}`;
}

/** What every guest's QEMU has, whatever its kind: machine and accelerator, CPUs, memory, the sandbox, QMP, serial. */
export function commonArgs(o: { node: ResolvedNode; files: NodeFiles; accel: Accel; machine?: string; reboot?: boolean; display?: boolean; tbSize?: number }): string[] {
  const { node, files } = o;
  return [
    '-name', `${node.name},debug-threads=off`,
    '-machine', o.machine ?? 'q35',
    // TCG's translation cache: 32 MiB instead of QEMU 7.2's default of 1 GiB, which a guest fills as it runs code
    // it has not run before (a boot alone leaves about 60 MiB): a bound on each guest's memory, 32 MiB less RSS.
    '-accel', o.accel === 'tcg' ? `tcg,tb-size=${o.tbSize ?? 32}` : o.accel,
    // Under TCG without ERMS: the guest kernel then copies and clears memory with rep movsq/stosq instead of
    // rep movsb/stosb, and TCG emulates rep string instructions element by element (guest-to-guest TCP 2.2x).
    '-cpu', o.accel === 'kvm' ? 'host' : 'max,erms=off',
    '-smp', String(node.cpus),
    '-m', String(node.memory),
    '-nodefaults', '-no-user-config',
    ...(o.display ? [] : ['-display', 'none']),
    // The built-in guest has nothing to reboot into; a real OS reboots as it would on hardware.
    ...(o.reboot ? [] : ['-no-reboot']),
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    '-chardev', `socket,id=qmp,path=${files.qmp},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
    '-chardev', `socket,id=console,path=${files.console},server=on,wait=off,logfile=${files.consoleLog},logappend=on`,
    '-serial', 'chardev:console',
  ];
}

/** The node's NICs: a netdev (tap, user-mode or socket) and the device of its model with its MAC, each. */
export function nicArgs(node: ResolvedNode): string[] {
  const args: string[] = [];
  for (const nic of node.nics) {
    const id = `net${nic.index}`;
    if (nic.kind === 'user') {
      const fwd = nic.hostfwd.map((f) => `,hostfwd=${f.proto}:127.0.0.1:${f.host}-:${f.guest}`).join('');
      args.push('-netdev', `user,id=${id},net=${USER_NET.subnet}${fwd}`);
    } else if (nic.kind === 'socket') {
      args.push('-netdev', `socket,id=${id},udp=127.0.0.1:${nic.socket!.peer},localaddr=127.0.0.1:${nic.socket!.local}`);
    } else args.push('-netdev', `tap,id=${id},ifname=${nic.tap},script=no,downscript=no${nic.vnetHdr === false ? ',vnet_hdr=off' : ''}`);
    // romfile= : no PXE option ROM (the built-in guest's kernel is loaded directly; image nodes boot from disk).
    args.push('-device', `${NIC_MODELS[nic.model].device},netdev=${id},mac=${nic.mac},romfile=`);
  }
  return args;
}

/** QEMU's own argv for a built-in node (without the wrapper). */
export function renderQemuArgs(o: QemuOptions): string[] {
  const { node, files, image } = o;
  const memory = o.memory ?? 'plain';
  const args = [
    // A restored guest only resumes and idles: 24 MiB of translation cache instead of 32 (its own private memory is
    // then mostly that cache). Not 16: a restored guest translates ~30,000 blocks (~16 MiB of cache) by READY, so
    // 16 MiB flushed everything right after and it translated it all again (0.1 s of CPU a guest, measured with
    // `info jit`); 24 MiB costs 2 MiB more private memory per idle guest (35 -> 37 MiB) and never flushed there.
    ...commonArgs({ ...o, machine: machineWithMemory('q35', memory), ...(memory === 'template' ? { tbSize: 24 } : {}) }),
    ...memoryArgs(node, memory),
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', image.cmdline,
    // Two ports (the agent's console and the control port) instead of the default 31: 6 virtqueues instead
    // of 64, and as many fewer eventfds polled by QEMU's main loop on every wakeup. Raise it with a new port.
    '-device', 'virtio-serial-pci,id=vser0,max_ports=2',
    '-chardev', `socket,id=control,path=${files.control},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=control,name=${CONTROL_PORT}`,
    // The guest agent on a console port (hvc0 in the guest), not a named port: with no host connected, a
    // named port reads as hung up and qemu-ga looks again every 100 ms (most of an idle guest's CPU under
    // TCG); a console is a tty, where it sleeps until a byte arrives. What it writes meanwhile is dropped.
    '-chardev', `socket,id=agent,path=${files.agent},server=on,wait=off`,
    '-device', 'virtconsole,bus=vser0.0,chardev=agent',
    '-fw_cfg', `name=${FW_CFG_NAME},file=${files.config}`,
    // Free page reporting only (the balloon is never inflated): memory the guest frees goes back to the host.
    '-device', `virtio-balloon-pci,free-page-reporting=${memory === 'plain' ? 'on' : 'off'}`,
    // A VM generation ID: QEMU gives each run a new one, and a guest restored from a snapshot sees it change and
    // reseeds its kernel's random generator at once (copies of one saved state must not share their randomness).
    '-device', 'vmgenid,guid=auto',
  ];
  if (node.router) args.push('-fw_cfg', `name=${FW_CFG_NFT},file=${files.nft}`);
  args.push(...nicArgs(node));
  return args;
}

// Runs in a private mount namespace: gives QEMU a /dev/net/tun (and with KVM a /dev/kvm) of its own, owned by
// the unprivileged user, so the host's device nodes keep their permissions. Arguments arrive as "$@": no user
// text is ever parsed by sh.
const DEV_SETUP =
  'umask 077 && mount -t tmpfs -o mode=755,size=16k qnet-dev /dev/net && mknod -m 600 /dev/net/tun c 10 200 && ' +
  'chown "$1" /dev/net/tun && if [ "$2" = kvm ]; then mknod -m 600 /dev/net/kvm c 10 232 && chown "$1" /dev/net/kvm && ' +
  'mount --bind /dev/net/kvm /dev/kvm; fi && shift 2 && exec "$@"';

/** How a guest's QEMU is started: in which namespace, as which ids, with which accelerator and binary. */
export interface Wrapper {
  netns?: string;
  user: string;
  group?: string;
  accel: Accel;
  binary?: string;
  /** In a user's lab holder: /dev/net/tun is the host's (mode 0666), no device can be made, ids are the user's. */
  rootless?: boolean;
}

/**
 * The full argv: enter the lab namespace (when given), private /dev nodes, drop to `user`, then QEMU with `args`.
 * One process throughout (every stage execs the next), so the spawned pid is QEMU's, and descriptors given to the
 * first stage reach QEMU.
 */
export function wrapGuestCommand(w: Wrapper, args: string[]): string[] {
  const group = w.group ?? w.user;
  // Rootless: uid 0 of the holder's user namespace (the user) with every capability dropped (bounding set emptied,
  // so exec gives none back) and its groups kept (/dev/kvm through the kvm group; setgroups is denied there anyway).
  // The tap is owned by that uid, so QEMU opens it without CAP_NET_ADMIN.
  if (w.rootless)
    return [
      ...(w.netns ? ['nsenter', `--net=/run/netns/${w.netns}`, '--'] : []),
      'setpriv', `--reuid=${w.user}`, `--regid=${group}`, '--keep-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
      w.binary ?? 'qemu-system-x86_64',
      ...args,
    ];
  return [
    ...(w.netns ? ['nsenter', `--net=/run/netns/${w.netns}`, '--'] : []),
    'unshare', '--mount', '--propagation', 'private', '--',
    'sh', '-c', DEV_SETUP, 'qnet-guest', `${w.user}:${group}`, w.accel,
    'setpriv', `--reuid=${w.user}`, `--regid=${group}`, '--clear-groups', '--no-new-privs', '--',
    w.binary ?? 'qemu-system-x86_64',
    ...args,
  ];
}

/** The full argv of a built-in guest (see wrapGuestCommand). */
export function renderGuestCommand(o: QemuOptions & { netns?: string; user: string; group?: string; rootless?: boolean }): string[] {
  return wrapGuestCommand(o, renderQemuArgs(o));
}

/**
 * What a saved guest state depends on: the node's QEMU command line with its own names, paths, MACs and taps
 * replaced, so that nodes with equal shapes can start from one snapshot. Undefined for a node that cannot be
 * restored from another's state (user-mode and socket NICs keep connection state of their own in QEMU).
 */
export function snapshotShape(node: ResolvedNode, image: GuestImage, accel: Accel): string | undefined {
  // Image nodes run the user's own OS, which has no snapshot point of qnet's: they always boot.
  if (node.image || node.nics.some((n) => n.kind !== 'bridge')) return undefined;
  const canonical: ResolvedNode = { ...node, name: 'node', nics: node.nics.map((n) => ({ ...n, mac: '52:54:00:00:00:00', tap: 'tap' })) };
  // The devices, and the drivers the guest loaded before its snapshot point (a VLAN node has 8021q).
  return JSON.stringify({ argv: renderQemuArgs({ node: canonical, files: nodeFiles('/node'), image, accel, memory: 'template-source' }), modules: guestModules(node) });
}

/**
 * The argv of a guest that starts from a saved state instead of booting: it waits for the state (`-incoming
 * defer`), which qnet then loads from descriptor 3 with RAM left out (x-ignore-shared: RAM is the template's).
 */
export function withIncoming(argv: string[]): string[] {
  return [...argv, '-incoming', 'defer'];
}
