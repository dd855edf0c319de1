// Kernel module dependency resolution from modules.dep text.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadOrder, moduleNameOf, parseModulesDep } from '../../src/guest/modules.js';

const DEP = `kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz:
kernel/drivers/net/ethernet/realtek/8139too.ko.zst: kernel/drivers/net/mii.ko.zst
kernel/drivers/net/mii.ko.zst:
kernel/drivers/net/vmxnet3/vmxnet3.ko:
kernel/drivers/block/virtio-blk.ko.gz: kernel/drivers/virtio/virtio-ring.ko.gz
kernel/drivers/virtio/virtio-ring.ko.gz:
kernel/fs/a.ko: kernel/fs/b.ko kernel/fs/c.ko
kernel/fs/b.ko: kernel/fs/d.ko
kernel/fs/c.ko: kernel/fs/d.ko
kernel/fs/d.ko:
kernel/loop/x.ko: kernel/loop/y.ko
kernel/loop/y.ko: kernel/loop/z.ko
kernel/loop/z.ko: kernel/loop/x.ko
kernel/self/selfish.ko: kernel/self/selfish.ko
kernel/broken/needs-missing.ko: kernel/broken/not-there.ko

this line has no colon and is ignored
`;

describe('moduleNameOf', () => {
  test('strips directory and compressed .ko suffixes, folds hyphens', () => {
    assert.equal(moduleNameOf('kernel/drivers/net/virtio_net.ko.xz'), 'virtio_net');
    assert.equal(moduleNameOf('kernel/drivers/net/mii.ko.zst'), 'mii');
    assert.equal(moduleNameOf('kernel/drivers/block/virtio-blk.ko.gz'), 'virtio_blk');
    assert.equal(moduleNameOf('vmxnet3.ko'), 'vmxnet3');
    assert.equal(moduleNameOf('virtio-net'), 'virtio_net');
  });
});

describe('parseModulesDep', () => {
  const deps = parseModulesDep(DEP);

  test('maps every module line to its file and direct dependencies', () => {
    assert.deepEqual(deps.get('virtio_net'), {
      file: 'kernel/drivers/net/virtio_net.ko.xz',
      deps: ['net_failover', 'failover'],
    });
    assert.deepEqual(deps.get('failover'), { file: 'kernel/net/core/failover.ko.xz', deps: [] });
    assert.deepEqual(deps.get('virtio_blk'), { file: 'kernel/drivers/block/virtio-blk.ko.gz', deps: ['virtio_ring'] });
  });

  test('ignores lines without a colon and blank lines', () => {
    assert.equal(deps.size, 18);
    assert.ok(![...deps.keys()].some((k) => k.includes(' ') || k === ''));
  });

  test('tolerates CRLF line endings and extra whitespace', () => {
    const d = parseModulesDep('a/x.ko:  a/y.ko   a/z.ko \r\na/y.ko:\r\na/z.ko:\r\n');
    assert.deepEqual(d.get('x')?.deps, ['y', 'z']);
    assert.equal(d.get('y')?.file, 'a/y.ko');
  });
});

describe('loadOrder', () => {
  const deps = parseModulesDep(DEP);

  test('dependencies come first', () => {
    assert.deepEqual(loadOrder(deps, 'virtio_net'), ['failover', 'net_failover', 'virtio_net']);
    assert.deepEqual(loadOrder(deps, '8139too'), ['mii', '8139too']);
    assert.deepEqual(loadOrder(deps, 'e1000'), ['e1000']);
  });

  test('a shared dependency appears once (diamond)', () => {
    const order = loadOrder(deps, 'a');
    assert.deepEqual(order, ['d', 'b', 'c', 'a']);
    assert.equal(new Set(order).size, order.length);
  });

  test('every module comes after all of its dependencies', () => {
    for (const name of ['virtio_net', 'a', '8139too', 'virtio_blk']) {
      const order = loadOrder(deps, name);
      assert.equal(new Set(order).size, order.length, `${name}: no duplicates`);
      assert.equal(order.at(-1), name);
      order.forEach((m, i) => {
        for (const d of deps.get(m)!.deps) assert.ok(order.indexOf(d) >= 0 && order.indexOf(d) < i, `${d} before ${m}`);
      });
    }
  });

  test('names with hyphens are folded to underscores', () => {
    assert.deepEqual(loadOrder(deps, 'virtio-blk'), ['virtio_ring', 'virtio_blk']);
    assert.deepEqual(loadOrder(deps, 'virtio-net'), ['failover', 'net_failover', 'virtio_net']);
  });

  test('a dependency cycle is an error naming the chain', () => {
    assert.throws(() => loadOrder(deps, 'x'), /module dependency cycle: x -> y -> z -> x/);
    assert.throws(() => loadOrder(deps, 'selfish'), /cycle: selfish -> selfish/);
  });

  test('an unknown module is an error', () => {
    assert.throws(() => loadOrder(deps, 'ne2k_pci'), /kernel module ne2k_pci is not in this kernel's modules\.dep/);
    assert.throws(() => loadOrder(deps, 'needs-missing'), /kernel module not_there is not/);
    assert.throws(() => loadOrder(new Map(), 'e1000'), /not in this kernel's modules\.dep/);
  });
});
