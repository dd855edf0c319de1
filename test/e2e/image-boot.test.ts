// End-to-end, with no OS to boot (each guest fails within seconds): a disk image cut short is refused by validate
// and up with qemu-img's first error and nothing made; a node that cannot boot fails `up` at once with the line
// that says so, instead of waiting out its timeout, and is rolled back: a blank disk (SeaBIOS's "No bootable
// device."; OVMF's UEFI shell), and a panic, twice: a boot sector that stands in for a kernel, printing a Linux panic line on the
// serial port (as a kernel with console=ttyS0 does), and one that says nothing and only writes the pvpanic port
// (as Linux's pvpanic driver does). Every test leaves the host as it found it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { labName, qnet, QNET, sh, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

// Each `up` below waits by qnet's default for image nodes (600 s); its guest shows its failure within seconds (OVMF
// in about 10 s under TCG). A test still running after half that default has waited out the timeout, or is kept
// from exiting by a wait left running: the bound fails it (before this change each failed at 600 s).
const BOUND = { timeout: 300_000 };

// The `up`s still running (each interrupted when its test is cut off by BOUND, so that it rolls back).
const running: Array<Promise<unknown>> = [];

/** `qnet up FILE`, interrupted (SIGTERM: up rolls back) when `signal` aborts. */
function up(file: string, signal: AbortSignal): Promise<{ code: number; stderr: string }> {
  const child = spawn(process.execPath, [QNET, 'up', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  signal.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
  const done = new Promise<{ code: number; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stderr })));
  running.push(done);
  return done;
}

/**
 * A 1 MiB raw disk whose boot sector (16-bit code at 0x7c00) writes `text` to COM1 (0x3f8), then, with
 * `pvpanic`, 1 (PANICKED) to QEMU's pvpanic port (0x505), then halts.
 */
function bootSector(file: string, text: string, pvpanic: boolean): void {
  const msg = Buffer.from(text, 'latin1');
  const code = Buffer.from([
    0x31, 0xc0, // xor ax, ax
    0x8e, 0xd8, // mov ds, ax
    0xfc, // cld
    0xbe, 0x1d, 0x7c, // mov si, 0x7c1d (the text, after this code)
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xac, // next: lodsb
    0x84, 0xc0, // test al, al
    0x74, 0x03, // jz done
    0xee, // out dx, al
    0xeb, 0xf8, // jmp next
    0xba, 0x05, 0x05, // done: mov dx, 0x505
    0xb0, pvpanic ? 0x01 : 0x00, // mov al, 1 (or 0: nothing)
    0xee, // out dx, al
    0xfa, // cli
    0xf4, // halt: hlt
    0xeb, 0xfd, // jmp halt
  ]);
  assert.equal(code.length, 0x1d);
  const sector = Buffer.alloc(512);
  code.copy(sector, 0);
  msg.copy(sector, code.length);
  sector[code.length + msg.length] = 0;
  sector.writeUInt16LE(0xaa55, 510);
  const fd = openSync(file, 'w');
  writeSync(fd, sector, 0, 512, 0);
  writeSync(fd, Buffer.alloc(1), 0, 1, 2 ** 20 - 1);
  closeSync(fd);
}

describe('a disk image cut short is refused before anything is made', () => {
  const lab = labName('imgcut');
  let before0: HostSnapshot;
  let file: string;
  before(async () => {
    before0 = await snapshot();
    file = writeTopology({ name: lab, nodes: { a: { image: 't.qcow2', config: 'none', ready: 'agent' } } });
    const dir = path.dirname(file);
    // The reproduction: a qcow2 cut after its header, which qemu-img info reads without complaint.
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', path.join(dir, 'ok.qcow2'), '64M']);
    sh(['sh', '-c', `head -c 300 '${path.join(dir, 'ok.qcow2')}' > '${path.join(dir, 't.qcow2')}'`]);
    assert.equal(sh(['qemu-img', 'info', path.join(dir, 't.qcow2')]).code, 0);
  });
  after(async () => {
    await Promise.all(running);
    assert.deepEqual(await snapshot(), before0);
  });

  const first = /nodes\.a\.image: .*t\.qcow2: qemu-img check finds it corrupt \(3 errors; the first: counting reference for region exceeding the end of the file by one cluster or more: offset 0x30000 size 0x8\)/;
  test('validate: exit 2 with qemu-img check\'s first error', async () => {
    const r = await qnet(['validate', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, first);
  });
  test('up: exit 2 with the same, and nothing on the host', BOUND, async (t) => {
    const r = await up(file, t.signal);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, first);
    assert.deepEqual(await snapshot(), before0);
  });
});

describe('a guest that cannot boot fails up at once, with the line that says so, and is rolled back', () => {
  let before0: HostSnapshot;
  before(async () => {
    before0 = await snapshot();
  });
  after(async () => {
    await Promise.all(running);
    assert.deepEqual(await snapshot(), before0);
  });

  // Brings up one node on `image` (made in the topology's directory by `make`); returns what up said.
  async function upOf(signal: AbortSignal, tag: string, image: string, make: (file: string) => void, extra: Record<string, unknown> = {}) {
    const lab = labName(tag);
    const file = writeTopology({ name: lab, nodes: { a: { image, config: 'none', ready: 'agent', memory: 256, ...extra } } });
    make(path.join(path.dirname(file), image));
    const r = await up(file, signal);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /rolled back \d+ steps?; nothing of the lab is left/);
    assert.deepEqual(await snapshot(), before0);
    return r.stderr;
  }

  test('a blank disk: SeaBIOS says "No bootable device." on its debug console (nothing on the serial port)', BOUND, async (t) => {
    const err = await upOf(t.signal, 'noboot', 'blank.qcow2', (f) => sh(['qemu-img', 'create', '-q', '-f', 'qcow2', f, '64M']));
    assert.match(err, /a: the guest cannot boot: its firmware's debug console says "No bootable device\."/);
    assert.match(err, /a was waiting for the QEMU guest agent to answer/);
  });

  test('a blank disk with firmware: uefi: OVMF fails every option and stops in its UEFI shell (on the serial console)', BOUND, async (t) => {
    const err = await upOf(t.signal, 'noboot-uefi', 'blank.qcow2', (f) => sh(['qemu-img', 'create', '-q', '-f', 'qcow2', f, '64M']), { firmware: 'uefi' });
    assert.match(err, /a: the guest cannot boot: its serial console says "BdsDxe: failed to load Boot0001 .*: Not Found; then OVMF started its UEFI shell, which stopped at its prompt"/);
  });

  test('a kernel panic on the serial console: the panic line', BOUND, async (t) => {
    const line = 'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)';
    const err = await upOf(t.signal, 'panicline', 'panic.raw', (f) => bootSector(f, `[    1.234567] ${line}\r\n`, false));
    assert.match(err, new RegExp(`a: the guest cannot boot: its serial console says "${line.replace(/[()]/g, '\\$&')}"`));
  });

  test('a panic reported by the pvpanic device only (nothing on the console)', BOUND, async (t) => {
    const err = await upOf(t.signal, 'pvpanic', 'pvpanic.raw', (f) => bootSector(f, '', true));
    assert.match(err, /a: the guest's kernel panicked \(its pvpanic device said so: QMP event GUEST_PANICKED/);
  });
});
