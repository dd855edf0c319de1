// Image validation: each crafted image that names another file is refused, with the node's path and the file; not
// disk images (text, directories, missing files) are refused; damaged images (corrupt to qemu-img check, or cut
// short) are refused with qemu-img's first error; real images of each format pass with their format and size.
// The images are made here with the real qemu-img, in a temporary directory.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { UserError } from '../../src/errors.js';
import { checkIso, checkRefusal, inspectImage, inspectLabImages, keptDiskRefusal, mapRefusal, rawTruncation, refusalOf, baseIdentity } from '../../src/guest/image-check.js';
import { RealRunner } from '../../src/host/run.js';
import { parseTopology } from '../../src/topology/load.js';

const run = new RealRunner();
let dir: string;
const img = (name: string) => path.join(dir, name);
function qemuImg(...args: string[]): void {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', cwd: dir });
  assert.equal(r.status, 0, r.stderr);
}
function sh(argv: string[], input?: string): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: dir, ...(input !== undefined ? { input } : {}) });
  assert.equal(r.status, 0, r.stderr);
}
// The first `bytes` of an image, as a download or copy cut short leaves it.
function cut(from: string, to: string, bytes: number): void {
  const fd = openSync(img(to), 'w');
  writeSync(fd, readFileSync(img(from)).subarray(0, bytes));
  closeSync(fd);
}

async function refused(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(inspectImage(run, file, 'nodes.a.image'), (e: unknown) => {
    assert.ok(e instanceof UserError, `a UserError (exit 2), got ${String(e)}`);
    assert.match(e.message, /^nodes\.a\.image: /);
    assert.ok(e.message.includes(file), `the message names the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'qnet-imgcheck-'));
  writeFileSync(img('secret.txt'), 'root:x:0:0\n');
  qemuImg('create', '-q', '-f', 'qcow2', 'plain.qcow2', '64M');
  qemuImg('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', img('secret.txt'), 'backing.qcow2', '64M');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${img('data.raw')}`, 'datafile.qcow2', '64M');
  qemuImg('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', 'flat.vmdk', '16M');
  qemuImg('create', '-q', '-f', 'vmdk', 'sparse.vmdk', '16M');
  qemuImg('create', '-q', '-f', 'vdi', 'disk.vdi', '16M');
  qemuImg('create', '-q', '-f', 'vhdx', 'disk.vhdx', '16M');
  qemuImg('create', '-q', '-f', 'qed', 'disk.qed', '16M');
  writeFileSync(img('notes.txt'), 'this is a text file, not a disk\n'.repeat(100));
  // 512 bytes of text: a whole number of sectors, but no partition table, boot sector or filesystem.
  writeFileSync(img('sector.txt'), 'x'.repeat(512));
  mkdirSync(img('adir'));
  // A blank raw disk (to install onto), and one with an MBR boot signature.
  const blank = openSync(img('blank.raw'), 'w');
  ftruncateSync(blank, 8 * 2 ** 20);
  closeSync(blank);
  const mbr = openSync(img('mbr.raw'), 'w');
  ftruncateSync(mbr, 8 * 2 ** 20);
  writeSync(mbr, Buffer.from([0x55, 0xaa]), 0, 2, 510);
  writeSync(mbr, Buffer.from('not zero'), 0, 8, 0);
  closeSync(mbr);
  // Images with data, then cut short (the issue's reproduction: a qcow2 cut after its header passed, and up then
  // waited for a guest that could never boot), each of a format qemu-img checks, and raw disks cut short.
  for (const f of ['qcow2', 'vmdk', 'vdi']) {
    qemuImg('create', '-q', '-f', f, `data.${f}`, '64M');
    assert.equal(spawnSync('qemu-io', ['-f', f, '-c', 'write -P 0xab 0 8M', '-c', 'write -P 0xcd 32M 4M', img(`data.${f}`)]).status, 0);
    cut(`data.${f}`, `half.${f}`, Math.floor(statSync(img(`data.${f}`)).size / 2 / 512) * 512);
  }
  cut('plain.qcow2', 'header.qcow2', 300);
  for (const [name, table] of [['mbr', ',32M,L\n,,L\n'], ['gpt', 'label: gpt\n,32M,L\n,,L\n']] as const) {
    const fd = openSync(img(`${name}-whole.raw`), 'w');
    ftruncateSync(fd, 64 * 2 ** 20);
    closeSync(fd);
    sh(['sfdisk', '--quiet', img(`${name}-whole.raw`)], table);
    cut(`${name}-whole.raw`, `${name}-cut.raw`, 16 * 2 ** 20);
  }
  // An ISO made by the real xorriso, and a file that is not one.
  mkdirSync(img('isodir'));
  writeFileSync(img('isodir/readme'), 'hello\n');
  assert.equal(spawnSync('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'TEST', '-o', img('cd.iso'), img('isodir')]).status, 0);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('images qnet accepts', () => {
  test('qcow2, vmdk (one file), vdi, vhdx and raw disks, with their format and virtual size', async () => {
    assert.deepEqual(await inspectImage(run, img('plain.qcow2'), 'x'), { format: 'qcow2', virtualSize: 64 * 2 ** 20, actualSize: (await inspectImage(run, img('plain.qcow2'), 'x')).actualSize });
    assert.equal((await inspectImage(run, img('sparse.vmdk'), 'x')).format, 'vmdk');
    assert.equal((await inspectImage(run, img('disk.vdi'), 'x')).format, 'vdi');
    assert.equal((await inspectImage(run, img('disk.vhdx'), 'x')).format, 'vhdx');
    assert.deepEqual(await inspectImage(run, img('blank.raw'), 'x').then((f) => [f.format, f.virtualSize]), ['raw', 8 * 2 ** 20]);
    assert.equal((await inspectImage(run, img('mbr.raw'), 'x')).format, 'raw');
  });
  test('images with data that qemu-img check finds whole, and whole partitioned raw disks', async () => {
    for (const f of ['data.qcow2', 'data.vmdk', 'data.vdi', 'mbr-whole.raw', 'gpt-whole.raw']) assert.ok((await inspectImage(run, img(f), 'x')).virtualSize > 0, f);
  });
});

describe('damaged images qnet refuses (exit 2, with qemu-img\'s first error)', () => {
  test('a qcow2 cut short after its header (qemu-img info reads it; check finds 3 errors)', () =>
    refused(img('header.qcow2'), /qemu-img check finds it corrupt \(3 errors; the first: counting reference for region exceeding the end of the file by one cluster or more: offset 0x30000 size 0x8\); an incomplete download or copy is the usual cause: get the image again/));
  test('a qcow2 with data, cut in half', () => refused(img('half.qcow2'), /qemu-img check finds it corrupt \(\d+ errors; the first: counting reference for region exceeding the end of the file/));
  test('a vmdk cut in half (check cannot finish)', () => refused(img('half.vmdk'), /qemu-img check cannot finish reading it \(exit 1: cluster offset for sector \d+ points after EOF\)/));
  test('a vdi cut in half (check passes it; its block map points past the end)', () => refused(img('half.vdi'), /it is cut short: its tables put guest bytes \d+-\d+ at \d+-\d+ of the file, which ends at \d+/));
  test('a raw disk whose MBR partitions end past the file', () => refused(img('mbr-cut.raw'), /cut short: its partition table \(MBR\) says the disk has at least 131072 sectors \(64 MiB\), the file holds 32768 \(16 MiB\)/));
  test('a raw disk whose GPT ends past the file', () => refused(img('gpt-cut.raw'), /cut short: its GPT says the disk has at least 131072 sectors \(64 MiB\), the file holds 32768 \(16 MiB\)/));
  test('a vmdk cut before its first table: qemu-img info\'s first line, not its last', () => {
    cut('data.vmdk', 'tiny.vmdk', 1024);
    return refused(img('tiny.vmdk'), /qemu-img cannot read it: Could not open .*tiny\.vmdk': File truncated, expecting at least \d+ bytes$/);
  });

  test('the pure reading of qemu-img check: clean, leaks only, no checks for the format, corrupt, unfinished', () => {
    assert.equal(checkRefusal({ code: 0, stdout: '{"check-errors": 0}', stderr: '' }), null);
    // Leaked clusters waste space; the data is whole.
    assert.equal(checkRefusal({ code: 3, stdout: '{"leaks": 4, "check-errors": 0}', stderr: 'Leaked cluster 5 refcount=1 reference=0\n' }), null);
    assert.equal(checkRefusal({ code: 63, stdout: '', stderr: 'qemu-img: This image format does not support checks\n' }), null);
    assert.equal(
      checkRefusal({ code: 2, stdout: '{"corruptions": 1, "leaks": 2}', stderr: 'Leaked cluster 5 refcount=1 reference=0\nERROR cluster 0 refcount=0 reference=1\n' }),
      'qemu-img check finds it corrupt (1 error; the first: cluster 0 refcount=0 reference=1); an incomplete download or copy is the usual cause: get the image again (`qemu-img check -r all` repairs a copy, losing what is damaged)',
    );
    assert.match(checkRefusal({ code: 2, stdout: 'garbage', stderr: '' })!, /^qemu-img check finds it corrupt \(errors\)/);
    assert.match(checkRefusal({ code: 1, stdout: '', stderr: '\nqemu-img: Check failed: Invalid argument\n' })!, /^qemu-img check cannot finish reading it \(exit 1: Check failed: Invalid argument\)/);
    assert.match(refusalOf({ format: 'qcow2', 'virtual-size': 1, 'format-specific': { data: { corrupt: true } } }, '/x')!, /marked it corrupt/);
  });

  test('the pure reading of a map: data past the end of the file', () => {
    const map = [{ start: 0, length: 4096, data: true, offset: 1024 }, { start: 4096, length: 8192, data: false }, { start: 12288, length: 4096, data: true, offset: 5120 }];
    assert.equal(mapRefusal(map, 9216), null);
    assert.match(mapRefusal(map, 9215)!, /guest bytes 12288-16383 at 5120-9215 of the file, which ends at 9215/);
  });

  test('the pure reading of a raw disk\'s partition table against its size', () => {
    const mbr = Buffer.alloc(1024);
    mbr.writeUInt16LE(0xaa55, 510);
    mbr[446 + 4] = 0x83;
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(2048, 446 + 12);
    assert.equal(rawTruncation(mbr, 4096 * 512, 'dos'), null);
    assert.match(rawTruncation(mbr, 4095 * 512, 'dos')!, /MBR\) says the disk has at least 4096 sectors/);
    // Not a partition table to blkid (a filesystem's boot sector ends in 55 aa too): its bytes are not read as one.
    assert.equal(rawTruncation(mbr, 4095 * 512, undefined), null);
    const gpt = Buffer.alloc(1024);
    gpt.write('EFI PART', 512, 'latin1');
    gpt.writeBigUInt64LE(8191n, 512 + 32);
    gpt.writeBigUInt64LE(8158n, 512 + 48);
    assert.equal(rawTruncation(gpt, 8192 * 512), null);
    assert.match(rawTruncation(gpt, 8191 * 512)!, /GPT says the disk has at least 8192 sectors/);
  });
});

describe('images qnet refuses (exit 2, the path named, before anything is made)', () => {
  test('a qcow2 with a backing file (it would read a host file into the guest)', () => refused(img('backing.qcow2'), /names a backing file \(.*secret\.txt\)/));
  test('a qcow2 with an external data file', () => refused(img('datafile.qcow2'), /external data file/));
  test('a vmdk whose extent is another file', () => refused(img('flat.vmdk'), /vmdk whose data is in another file \(.*flat-flat\.vmdk\)/));
  test('a format qnet does not boot (qed)', () => refused(img('disk.qed'), /reads it as "qed"/));
  test('a text file', () => refused(img('notes.txt'), /not a disk image/));
  test('a text file of exactly one sector', () => refused(img('sector.txt'), /no partition table, boot sector or filesystem/));
  test('a directory', () => refused(img('adir'), /is a directory/));
  test('a missing file', () => refused(img('nope.qcow2'), /no such file/));
  test('the pure rule names each reference', () => {
    assert.match(refusalOf({ format: 'qcow2', 'virtual-size': 1, 'backing-filename': '/etc/shadow' }, '/x')!, /backing file \(\/etc\/shadow\)/);
    assert.match(refusalOf({ format: 'qcow2', 'virtual-size': 1, 'format-specific': { data: { 'data-file': '/dev/sda' } } }, '/x')!, /external data file/);
    assert.match(refusalOf({ format: 'vmdk', 'virtual-size': 1, 'format-specific': { data: { extents: [{ filename: '/x' }, { filename: '../etc/passwd' }] } } }, '/x')!, /another file/);
    assert.equal(refusalOf({ format: 'vmdk', 'virtual-size': 1, 'format-specific': { data: { extents: [{ filename: 'x' }] } } }, '/x'), null);
    assert.match(refusalOf({ format: 'luks', 'virtual-size': 1 }, '/x')!, /"luks"/);
  });
});

describe('ISOs, firmware, sizes and kept disks', () => {
  test('cdrom: an ISO passes; a qcow2 named as cdrom is refused', async () => {
    await checkIso(img('cd.iso'), 'nodes.a.cdrom');
    await assert.rejects(checkIso(img('plain.qcow2'), 'nodes.a.cdrom'), /nodes\.a\.cdrom: .*plain\.qcow2: not an ISO 9660 image/);
    await assert.rejects(checkIso(img('none.iso'), 'nodes.a.cdrom'), /no such file/);
  });

  const lab = (node: string) => parseTopology(`name: chk\nnodes:\n  a: {${node}}\n`, path.join(dir, 'lab.yaml'), { baseDir: dir });

  test('every problem of a lab is listed at once, with its path', async () => {
    await assert.rejects(inspectLabImages(run, lab('image: backing.qcow2, cdrom: plain.qcow2'), 'lab.yaml'), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.deepEqual(e.issues.map((i) => i.path).sort(), ['nodes.a.cdrom', 'nodes.a.image']);
      return true;
    });
  });

  test('disk.size smaller than the image is refused', async () => {
    await assert.rejects(inspectLabImages(run, lab('image: plain.qcow2, disk: {size: 32M}'), 'lab.yaml'), /nodes\.a\.disk\.size: 32 MiB is smaller than the image \(64 MiB\)/);
    const ok = await inspectLabImages(run, lab('image: plain.qcow2, disk: {size: 1G}'), 'lab.yaml');
    assert.equal(ok.nodes[0]!.image!.diskSize, 2 ** 30);
    assert.equal(ok.nodes[0]!.image!.format, 'qcow2');
    assert.equal(ok.nodes[0]!.image!.virtualSize, 64 * 2 ** 20);
  });

  test('firmware: uefi without OVMF says which package to install', async () => {
    const was = process.env.QNET_OVMF_DIR;
    process.env.QNET_OVMF_DIR = img('no-ovmf');
    try {
      await assert.rejects(inspectLabImages(run, lab('image: plain.qcow2, firmware: uefi'), 'lab.yaml'), /nodes\.a\.firmware: .*install Debian's ovmf package \(apt-get install ovmf\)/);
    } finally {
      if (was === undefined) delete process.env.QNET_OVMF_DIR;
      else process.env.QNET_OVMF_DIR = was;
    }
  });

  test('a kept disk with no record of its base is refused (qnet cannot tell it fits)', async () => {
    const was = process.env.QNET_STATE_DIR;
    process.env.QNET_STATE_DIR = img('state');
    try {
      mkdirSync(img('state/chk/a'), { recursive: true });
      writeFileSync(img('state/chk/a/disk.qcow2'), '');
      await assert.rejects(inspectLabImages(run, lab('image: mbr.raw, persist: true'), 'lab.yaml'), /nodes\.a\.image: the kept disk .*has no record of the base it was made on .*--purge/);
    } finally {
      if (was === undefined) delete process.env.QNET_STATE_DIR;
      else process.env.QNET_STATE_DIR = was;
    }
  });

  test('a kept disk whose base changed is refused with the reason; an unchanged base is accepted', async () => {
    const was = await baseIdentity(img('plain.qcow2'), 'qcow2');
    assert.equal(keptDiskRefusal(was, await baseIdentity(img('plain.qcow2'), 'qcow2')), null);
    utimesSync(img('plain.qcow2'), new Date(), new Date(Date.now() + 5000));
    assert.match(keptDiskRefusal(was, await baseIdentity(img('plain.qcow2'), 'qcow2'))!, /changed since .*reads garbage/);
    assert.match(keptDiskRefusal(was, { ...was, path: '/other.qcow2' })!, /made on .*plain\.qcow2, and the node's image is now \/other\.qcow2/);
  });
});
