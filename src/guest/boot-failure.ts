// A guest that cannot boot says so, and then waits forever: its firmware found nothing to boot (SeaBIOS, OVMF), or
// its kernel panicked. These are the lines that say it, so that `up` fails at once with the line instead of waiting
// out its timeout. Pure.

/** Where an image node's boot failures show, besides its serial console (lab/ready.ts watches them). */
export interface BootWatch {
  /** The firmware's debug console (isa-debugcon on port 0x402): SeaBIOS prints everything there, serial or not. */
  firmwareLog: string;
  /** A second QMP monitor, for events only (GUEST_PANICKED from the pvpanic device), so that nothing else waits. */
  events: string;
}

// Each a final word: a line that some firmware prints and then boots on anyway is not one (SeaBIOS says "Boot
// failed: not a bootable disk" for the disk and then boots the CD-ROM; OVMF says "BdsDxe: failed to load Boot0001"
// and tries the next option).
const FAILURES: RegExp[] = [
  // SeaBIOS, with every boot device tried ("No bootable device.  Retrying in 60 seconds." with a reboot-timeout).
  /No bootable device\..*/,
  // OVMF's boot manager, with every boot option tried, in a build without the UEFI shell.
  /BdsDxe: No bootable option or device was found\..*/,
  // Linux, whatever the cause (no root filesystem, init died, an oops in an interrupt): the kernel stops there.
  /Kernel panic - not syncing:.*/,
];

// Debian's OVMF has the UEFI shell as its last boot option: with nothing else to boot it starts it, counts 5 s down
// (a startup.nsh on a disk would run then, and boot something) and shows its prompt. On the serial console:
//   BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Not Found
//   BdsDxe: starting Boot0002 "EFI Internal Shell" from Fv(...)/FvFile(...)
//   UEFI Interactive Shell v2.2 ... Shell>
const UEFI_SHELL = /BdsDxe: starting Boot[0-9A-F]+ "EFI Internal Shell".*[\s\S]*?Shell> /;

/** The line of `text` that says the guest cannot boot (its first), or null. */
export function bootFailureLine(text: string): string | null {
  let first: { at: number; line: string } | null = null;
  for (const re of FAILURES) {
    const m = re.exec(text);
    if (m && (!first || m.index < first.at)) first = { at: m.index, line: m[0].trim() };
  }
  const shell = UEFI_SHELL.exec(text);
  if (shell && (!first || shell.index < first.at)) {
    // What OVMF could not boot says more than the shell's prompt: the last option it failed to load.
    const failed = [...text.slice(0, shell.index).matchAll(/BdsDxe: failed to load .*/g)].pop()?.[0].trim();
    first = { at: shell.index, line: `${failed ?? 'BdsDxe: nothing to boot'}; then OVMF started its UEFI shell, which stopped at its prompt` };
  }
  return first?.line ?? null;
}
