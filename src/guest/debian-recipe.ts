// What `qnet image create debian` puts in a Debian disk image, as pure data and text: the packages, the partition
// table, the boot loader's configuration and the settings that make a lab guest boot fast. The builder
// (debian-image.ts) carries it out.
import { hookFiles, RESUME_MARK } from './resume.js';

/** Bump when the recipe changes in a way its other inputs (packages, size, versions) do not show. */
// 3: qnet's resume hook (saved states of Debian nodes), marked on the BIOS boot partition's GPT name.
export const RECIPE_VERSION = 3;

/** The Debian release the image is made of. */
export const SUITE = 'bookworm';

/**
 * What every image has: systemd, the stock kernel (linux-image-amd64: the cloud kernel has no e1000, the seeds'
 * NIC), GRUB for BIOS, cloud-init with netplan and systemd-networkd/resolved as Debian's own cloud images, the
 * QEMU guest agent, sshd, and the network tools a lab uses. Recommends are not installed: apparmor,
 * systemd-timesyncd and unattended-upgrades stay out. `npm run bench` boots each put back, one first boot each
 * under TCG: apparmor +3.4 s and +0.1 s in two runs, timesyncd with unattended-upgrades +2.8 s and +4.3 s, while
 * two first boots of this very image differed by up to 10 s: small costs; the image is also smaller for it.
 */
export const BASE_PACKAGES = [
  'systemd-sysv', 'udev', 'dbus', 'linux-image-amd64', 'grub-pc', 'initramfs-tools',
  'cloud-init', 'netplan.io', 'systemd-resolved', 'cloud-guest-utils', 'e2fsprogs',
  'qemu-guest-agent', 'openssh-server', 'sudo', 'procps', 'kmod', 'less',
  'iproute2', 'iptables', 'iputils-ping', 'curl', 'netcat-openbsd', 'ca-certificates',
] as const;

/**
 * Units masked in the image: timers and jobs a throwaway lab guest has no use for, each of which runs at boot or
 * wakes an idle guest later (all of them together, with getty@tty1 then among them: +1.5 s, +0.5 s and +0.2 s of a
 * first boot in three `npm run bench` runs). README.md lists them (a unit test holds the two the same).
 */
export const MASKED_UNITS = [
  'e2scrub_reap.service', 'e2scrub_all.timer', 'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer',
  'man-db.timer', 'fstrim.timer',
] as const;

/**
 * The login prompt on the screen (`display: vnc`): Debian's getty on tty1, started once the node has its name and
 * addresses: after cloud-init's network stage (which sets the hostname) or after the resume hook (a restored
 * node's identity), so a restored node shows its own hostname, not the saved guest's. Not after cloud-final or
 * qnet's readiness unit: cloud-final is ordered after multi-user.target, which comes after getty.target and so
 * after this getty, and that ordering cycle made systemd drop a job of the boot (npm test: a node came up with no
 * address). Units that are not part of a boot (cloud-init is masked in the hook's) order nothing.
 */
export const GETTY_TTY1_DROPIN = `# qnet: the screen's login prompt comes once the node has its name and addresses.
[Unit]
After=cloud-init.service qnet-resume.service
`;

/** Debian package names: what apt accepts, nothing a shell or mmdebstrap's comma list would split. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{0,99}$/;

/**
 * The partitions of the disk: a 3 MiB BIOS boot partition (GRUB's core image on GPT) and the root filesystem. The
 * BIOS boot partition is named after the resume hook the image carries (qnet reads it back from any copy).
 */
export const PARTITIONS = { biosStart: 2048, biosSectors: 6144, rootStart: 8192 } as const;

/** sfdisk's input for the disk: GPT, BIOS boot partition, then the root filesystem to the end of the disk. */
export function renderPartitionTable(): string {
  return [
    'label: gpt',
    `start=${PARTITIONS.biosStart}, size=${PARTITIONS.biosSectors}, type=21686148-6449-6E6F-744E-656564454649, name=${RESUME_MARK}`,
    `start=${PARTITIONS.rootStart}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root`,
    '',
  ].join('\n');
}

/** The kernel command line: serial console last, so that /dev/console (systemd's output, the login) is ttyS0. */
export function kernelCmdline(rootUuid: string): string {
  return `root=UUID=${rootUuid} ro console=tty0 console=ttyS0,115200n8`;
}

/**
 * grub.cfg, written by hand: grub-mkconfig in a build without udev names the loop device as root. No menu wait,
 * the serial line as well as the screen. /vmlinuz and /initrd.img follow the kernel package on upgrades.
 */
export function renderGrubCfg(rootUuid: string): string {
  return [
    'set timeout=0',
    'set default=0',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    "menuentry 'Debian GNU/Linux' {",
    `  search --no-floppy --fs-uuid --set=root ${rootUuid}`,
    `  linux /vmlinuz ${kernelCmdline(rootUuid)}`,
    '  initrd /initrd.img',
    '}',
    '',
  ].join('\n');
}

/** /etc/default/grub, so that `update-grub` in the guest (a kernel upgrade) keeps the serial console and no wait. */
export function renderDefaultGrub(): string {
  return [
    'GRUB_DEFAULT=0',
    'GRUB_TIMEOUT=0',
    'GRUB_DISTRIBUTOR=Debian',
    'GRUB_CMDLINE_LINUX_DEFAULT=""',
    'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"',
    'GRUB_TERMINAL="console serial"',
    'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"',
    'GRUB_DISABLE_OS_PROBER=true',
    '',
  ].join('\n');
}

/** /etc/fstab: the root by UUID. */
export function renderFstab(rootUuid: string): string {
  return `UUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`;
}

/**
 * cloud-init's settings in the image: look for a NoCloud seed only (probing for a dozen clouds costs seconds and
 * finds nothing here), else carry on with no datasource, which brings the first NIC up by DHCP (an image booted
 * with `config: none` still joins its network).
 */
export const CLOUD_CFG = `# qnet: NoCloud seeds only (qnet writes one); without a seed, no datasource (the first NIC asks DHCP).
datasource_list: [ NoCloud, None ]
`;

/** The files the recipe writes into the image, by path (relative to its root). */
export function recipeFiles(rootUuid: string): Array<{ path: string; content: string; mode: number }> {
  return [
    // qnet's resume hook: inert unless qnet starts the guest for it (resume.ts).
    ...hookFiles(),
    { path: 'etc/fstab', content: renderFstab(rootUuid), mode: 0o644 },
    { path: 'boot/grub/grub.cfg', content: renderGrubCfg(rootUuid), mode: 0o644 },
    { path: 'etc/default/grub', content: renderDefaultGrub(), mode: 0o644 },
    // cloud-init's locale module fails without a locale (update-locale exits 255): C.UTF-8 is always there.
    { path: 'etc/default/locale', content: 'LANG=C.UTF-8\n', mode: 0o644 },
    { path: 'etc/hostname', content: 'debian\n', mode: 0o644 },
    { path: 'etc/cloud/cloud.cfg.d/90_qnet.cfg', content: CLOUD_CFG, mode: 0o644 },
    { path: 'etc/systemd/system/getty@tty1.service.d/90-qnet.conf', content: GETTY_TTY1_DROPIN, mode: 0o644 },
    // Each guest makes its own machine-id at first boot (an empty file means "not set yet").
    { path: 'etc/machine-id', content: '', mode: 0o444 },
  ];
}

/** The package list of an image: the base and the user's extras, without duplicates, sorted (part of its cache key). */
export function packageList(extra: string[]): string[] {
  return [...new Set([...BASE_PACKAGES, ...extra])].sort();
}
