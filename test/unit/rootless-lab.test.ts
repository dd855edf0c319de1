// Rootless, second stage: what a user's lab plans differently (pure) and how its holder is told from a reused pid.
// The plan of a nat lab with a forward, rootless, is a golden file; root's plan of the same lab must not change.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { refuseAsUser } from '../../src/cli/rootless.js';
import { isSameHolder, joinArgv, recordOf } from '../../src/lab/rootless/holder.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { wrapGuestCommand } from '../../src/render/qemu.js';
import { chooseUserNat, renderPastaArgv, renderRootlessUplinkRuleset, renderSlirpForwards } from '../../src/render/uplink-rootless.js';
import { parseTopology } from '../../src/topology/load.js';
import { golden, ROOT } from './golden.js';

process.env.QNET_RUN_DIR = '/run/user/1000/qnet/nat/lab';
const lab = parseTopology(readFileSync(path.join(ROOT, 'examples', 'nat-dhcp.yaml'), 'utf8'), 'nat-dhcp.yaml');
// nat-dhcp.yaml forwards host port 8080 to win:80 (172.16.1.2).
const withForward = lab;
const up = { net: ((100 << 24) | (64 << 16) | (3 << 8) | 4) >>> 0 };
const ROOTLESS: PlanContext = { image: { kernel: '/k', initrd: '/i', cmdline: 'console=ttyS0' }, accel: 'tcg', user: 'root', userIds: { uid: 0, gid: 0 }, guestIds: { uid: 0, gid: 0 }, uplink: up, rootless: true };

describe('a rootless lab\'s plan', () => {
  const steps = planUp(withForward, ROOTLESS);
  const text = formatPlan(steps);
  test('golden: no ip netns add (the holder made it), pasta instead of the host veth, no host table or route', () => {
    golden('rootless-nat-plan.txt', text + '\n');
    assert.doesNotMatch(text, /ip netns add/);
    assert.doesNotMatch(text, /\$ ip -batch -$/m, 'no link or route made in the host namespace');
    assert.doesNotMatch(text, /\$ nft -f -$/m, 'no nft table of the host');
    assert.doesNotMatch(text, /forwarding on the host/);
    assert.match(text, /\$ pasta --foreground --ipv4-only --config-net --ns-ifname uplink --address 100\.64\.3\.6 --netmask 30 --gateway 100\.64\.3\.5 --no-map-gw --tcp-ports 8080 --udp-ports none/);
  });
  test('root\'s plan of the same lab is as before: ip netns add, the veth, the host table', () => {
    const root = formatPlan(planUp(withForward, { ...ROOTLESS, rootless: undefined, user: 'qnet', userIds: { uid: 995, gid: 995 }, guestIds: { uid: 1900001000, gid: 1900001000 } }));
    assert.match(root, /ip netns add qnet-/);
    assert.match(root, /create the uplink: veth qn/);
    assert.doesNotMatch(root, /pasta/);
  });
  test('the lab table: masquerade out of the tap, each forward from the tap and from loopback', () => {
    assert.equal(
      renderRootlessUplinkRuleset(withForward),
      [
        'table ip qnet-uplink {',
        `  comment "qnet:lab=${lab.name}"`,
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    ip saddr { ${lab.networks.filter((n) => n.mode === 'nat').map((n) => `${n.subnet!.ip >>> 24}.${(n.subnet!.ip >>> 16) & 255}.${(n.subnet!.ip >>> 8) & 255}.0/${n.subnet!.prefix}`).join(', ')} } oifname "uplink" masquerade`,
        '    ip saddr 127.0.0.0/8 oifname != "lo" masquerade',
        '  }',
        '  chain prerouting {',
        '    type nat hook prerouting priority dstnat; policy accept;',
        '    iifname "uplink" tcp dport 8080 dnat to 172.16.1.2:80',
        '  }',
        '  chain output {',
        '    type nat hook output priority -100; policy accept;',
        '    ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.16.1.2:80',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  });
  test('pasta without forwards forwards nothing', () => {
    const argv = renderPastaArgv({ ...lab, forwards: [] }, up, '/l');
    assert.deepEqual(argv.slice(argv.indexOf('--tcp-ports'), argv.indexOf('--log-file')), ['--tcp-ports', 'none', '--udp-ports', 'none', '--tcp-ns', 'none', '--udp-ns', 'none']);
  });
  test('pasta, or slirp4netns where pasta is missing, saying why; neither: what to install', () => {
    assert.equal(chooseUserNat({ pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns' }).tool, 'pasta');
    assert.equal(chooseUserNat({ pasta: '/usr/bin/pasta' }).tool, 'pasta');
    const slirp = chooseUserNat({ slirp4netns: '/usr/bin/slirp4netns' });
    assert.equal(slirp.tool, 'slirp4netns');
    assert.match(slirp.why, /pasta is not installed .*apt-get install passt/);
    assert.throws(() => chooseUserNat({}), /needs pasta or slirp4netns, and neither is on PATH: an administrator runs `apt-get install passt`/);
  });
  test('slirp4netns\'s plan: its tap in the lab, the host\'s loopback out of reach, the forwards through its API, the same NAT table', () => {
    const s = formatPlan(planUp(withForward, { ...ROOTLESS, userNat: chooseUserNat({ slirp4netns: '/usr/bin/slirp4netns' }) }));
    assert.doesNotMatch(s, /\$ pasta/);
    assert.match(s, /start slirp4netns: tap uplink in the lab \(100\.64\.3\.100, network 100\.64\.3\.0\/24\).*slirp4netns because pasta is not installed/);
    assert.match(s, /slirp4netns --configure --mtu=65520 --disable-host-loopback --cidr=100\.64\.3\.0\/24 --api-socket=\S+slirp4netns\.sock --netns-type=path \/run\/netns\/qnet-\S+ uplink/);
    assert.deepEqual(renderSlirpForwards(withForward, up).map((r) => JSON.parse(r)), [
      { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '0.0.0.0', host_port: 8080, guest_addr: '100.64.3.100', guest_port: 8080 } },
    ]);
    assert.match(s, /add the forwards to slirp4netns, listening on the host \(tcp 8080\)/);
    assert.match(s, /load the lab's NAT table ip qnet-uplink/);
    assert.deepEqual(renderSlirpForwards({ ...lab, forwards: [] }, up), []);
  });
  test('QEMU rootless: as the user (uid 0 inside) with no capabilities, groups kept, no device made', () => {
    assert.deepEqual(wrapGuestCommand({ netns: 'qnet-x', user: '0', group: '0', accel: 'tcg', rootless: true }, ['-m', '128']), [
      'nsenter', '--net=/run/netns/qnet-x', '--',
      'setpriv', '--reuid=0', '--regid=0', '--keep-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
      'qemu-system-x86_64', '-m', '128',
    ]);
    assert.match(wrapGuestCommand({ netns: 'qnet-x', user: '5', accel: 'tcg' }, []).join(' '), /mknod -m 600 \/dev\/net\/tun/, 'as root: unchanged');
  });
});

describe('a lab\'s holder', () => {
  test('recorded by pid, start time and namespaces; the same pid with another start time is not it', () => {
    const rec = recordOf(process.pid, 'qnet-x')!;
    assert.match(rec.userns, /^user:\[\d+\]$/);
    assert.ok(isSameHolder(rec));
    assert.equal(isSameHolder({ ...rec, start: String(Number(rec.start) + 1) }), false);
    assert.equal(isSameHolder({ ...rec, userns: 'user:[1]' }), false);
    assert.equal(recordOf(2 ** 22 + 1, 'qnet-x'), null);
  });
  test('commands join its user and mount namespaces only, and die with the qnet that started them', () => {
    const argv = joinArgv({ pid: 42, start: '1', userns: '', mntns: '', netns: '', name: 'qnet-x' });
    assert.deepEqual(argv.slice(0, 5), ['nsenter', '--target=42', '--user', '--mount', '--preserve-credentials']);
    assert.deepEqual(argv.slice(-4), ['setpriv', '--pdeathsig', 'KILL', '--']);
  });
});

describe('lab spaces', () => {
  test('root\'s labs are the host\'s (nothing to enter); a user\'s each its holder\'s (none running: null)', async () => {
    const { hostSpace, holderSpace, labSpace } = await import('../../src/lab/space.js');
    assert.equal(labSpace().kind, process.geteuid?.() === 0 ? 'host' : 'holder');
    assert.deepEqual(await hostSpace.entry('any'), []);
    const saved = process.env.QNET_RUN_DIR;
    process.env.QNET_RUN_DIR = '/nonexistent/qnet-run';
    try {
      assert.equal(await holderSpace.entry('nolab'), null);
    } finally {
      process.env.QNET_RUN_DIR = saved;
    }
  });
});

describe('commands refused to an ordinary user (exit 2), each saying why and what to do instead', () => {
  test('web: why (one process over the host\'s namespaces), what instead', () => {
    assert.match(refuseAsUser(['web'])!, /not offered to an ordinary user yet: .*holder's user and network namespaces.*`qnet status`.*`sudo qnet web`/);
    assert.match(refuseAsUser(['web', '--port', '8080'])!, /not offered/);
  });
  test('image create: why (loop device and mount), what an administrator runs, how a lab then uses the file', () => {
    const why = refuseAsUser(['image', 'create', 'debian', '--out', '/tmp/d.qcow2'])!;
    assert.match(why, /needs root: .*loop device and mounts it .*\(losetup, mount\)/);
    assert.match(why, /`sudo qnet image create debian --out \S+ && sudo chmod a\+r \S+`/);
    assert.match(why, /nodes: \{ a: \{ image: /);
  });
  test('everything else passes', () => {
    for (const argv of [['image', 'build'], ['status'], ['check', 'lab'], ['graph', 'x.yaml'], []]) assert.equal(refuseAsUser(argv), null, argv.join(' '));
  });
});
