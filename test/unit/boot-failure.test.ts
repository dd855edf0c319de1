// The lines by which a guest that cannot boot is told from one still booting: the firmware's last word (SeaBIOS,
// OVMF) and a Linux panic; and the lines of firmware that boots on after them, which must not count.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootFailureLine } from '../../src/guest/boot-failure.js';

test("SeaBIOS's last word, from its debug console", () => {
  const log = 'SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from Hard Disk...\nBoot failed: not a bootable disk\n\nNo bootable device.\n';
  assert.equal(bootFailureLine(log), 'No bootable device.');
  assert.equal(bootFailureLine('No bootable device.  Retrying in 60 seconds.\n'), 'No bootable device.  Retrying in 60 seconds.');
});

test("OVMF's last word", () => {
  assert.equal(bootFailureLine('BdsDxe: failed to load Boot0001 "UEFI QEMU HARDDISK" from PciRoot(0x0): Not Found\nBdsDxe: No bootable option or device was found.\r\n'), 'BdsDxe: No bootable option or device was found.');
});

test("Debian's OVMF: its UEFI shell at its prompt after every other option failed (what it printed, on the serial console)", () => {
  const log = [
    '\x1b[2J\x1b[01;01HBdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Not Found',
    'BdsDxe: loading Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)',
    'BdsDxe: starting Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)',
    'UEFI Interactive Shell v2.2',
    'EDK II',
    'Press ESC in 1 seconds to skip startup.nsh or any other key to continue.',
    'Shell> ',
  ].join('\n');
  assert.equal(bootFailureLine(log), 'BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x1,0x0): Not Found; then OVMF started its UEFI shell, which stopped at its prompt');
  // Counting down: a startup.nsh may still boot something.
  assert.equal(bootFailureLine(log.slice(0, log.indexOf('Shell> '))), null);
});

test('a Linux panic, with its reason', () => {
  const log = '[    2.123456] VFS: Cannot open root device "vda1" or unknown-block(0,0): error -6\n[    2.130000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n[    2.140000] CPU: 0 PID: 1 Comm: swapper/0\n';
  assert.equal(bootFailureLine(log), 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)');
});

test('the first of several is the one', () => {
  assert.equal(bootFailureLine('Kernel panic - not syncing: Attempted to kill init!\nNo bootable device.\n'), 'Kernel panic - not syncing: Attempted to kill init!');
});

test('a firmware that fails one device and boots the next has not failed', () => {
  assert.equal(bootFailureLine('Booting from Hard Disk...\nBoot failed: not a bootable disk\n\nBooting from DVD/CD...\nISOLINUX 6.04\n'), null);
  assert.equal(bootFailureLine('BdsDxe: failed to load Boot0001 "UEFI QEMU HARDDISK" from PciRoot(0x0): Not Found\nBdsDxe: loading Boot0002 "UEFI QEMU DVD-ROM"\n'), null);
  assert.equal(bootFailureLine('[    0.000000] Linux version 6.1.0-28-amd64\nDebian GNU/Linux 12 deb1 ttyS0\n\ndeb1 login: '), null);
});
