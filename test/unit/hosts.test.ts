// Labs over several hosts, the pure part: the agent protocol (requests and answers parsed and checked, bad ones
// refused with what is wrong), each host's part of a lab (its nodes only, the gateway flag, the other hosts' tunnel
// ends), how qnet is run on a host (ssh with BatchMode, the override per host), and the plan of a host's part (no NB
// batch; host sides and uplink only on the gateway; binding waited for on the local OVS).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { encode, parseEvent, parseRequest, ProtocolError, splitParts, type AgentRequest, type HostPart } from '../../src/hosts/protocol.js';
import { agentArgv, remoteQnet } from '../../src/hosts/host.js';
import { forwardArgv } from '../../src/cli/hosts-front.js';
import { parseTopology } from '../../src/topology/load.js';
import { onOvn } from '../../src/fabric/ovn/plan.js';
import { formatPlan, planUp, type PlanContext } from '../../src/plan/plan.js';
import { ROOT } from './golden.js';

const seed = readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8');
const TWO = parseTopology(
  seed
    .replace('nodes:\n  deb1:\n', 'hosts:\n  a: { ssh: root@192.0.2.10 }\n  b: { ssh: root@192.0.2.11:2222 }\novn: { central: a }\nnodes:\n  deb1:\n    host: a\n')
    .replace('  deb3:\n', '  deb3:\n    host: b\n'),
  's.yaml',
);
const placement = { deb1: 'a', deb2: 'a', deb3: 'b' };
const chassis = { a: 'a', b: 'b' };

describe('agent protocol', () => {
  test('requests round-trip through a line', () => {
    for (const r of [
      { op: 'observe' },
      { op: 'down-part', lab: 'seed' },
      { op: 'status', lab: 'seed' },
      { op: 'nb', lab: 'seed', commands: [['ls-add', 'x']] },
      { op: 'exec', lab: 'seed', node: 'deb3', argv: ['ping', '-c', '1', '192.168.1.2'], timeoutMs: 5000 },
      { op: 'run', lab: 'seed', where: 'lab', argv: ['busybox', 'sh', '-c', 'true'], timeoutMs: 5000 },
      { op: 'listen', lab: 'seed', where: 'host', addrs: ['100.64.0.1:7', '192.168.1.100:9000'] },
    ] satisfies AgentRequest[]) {
      const line = encode(r);
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line');
      assert.deepEqual(parseRequest(line.trim()), r);
    }
    const [part] = splitParts(TWO, placement, chassis, {});
    assert.deepEqual(parseRequest(encode({ op: 'up-part', lab: part!.lab, part: part!.part, readyTimeoutMs: 1000 })), { op: 'up-part', lab: part!.lab, part: part!.part, readyTimeoutMs: 1000 });
  });
  test('bad requests are refused with what is wrong', () => {
    const bad: Array<[string, RegExp]> = [
      ['not json', /request: not JSON/],
      ['[1]', /expected a JSON object/],
      ['{"op":"format-disk"}', /request\.op: expected observe, up-part, .* got "format-disk"/],
      ['{"op":"status","lab":"../etc"}', /request\.lab: expected a lab name, got "\.\.\/etc"/],
      ['{"op":"exec","lab":"s","node":"a","argv":[]}', /request\.argv: expected a command/],
      ['{"op":"nb","lab":"s","commands":[["ls-add",1]]}', /request\.commands: expected a non-empty list/],
      ['{"op":"run","lab":"s","where":"guest","argv":["true"]}', /request\.where: expected lab or host, got "guest"/],
      ['{"op":"listen","lab":"s","where":"lab","addrs":["0.0.0.0:22; rm -rf /"]}', /request\.addrs: expected a list of IPv4:PORT/],
      ['{"op":"up-part","lab":{"name":"s","nodes":[],"networks":[]},"part":{"host":"a","chassis":{},"placement":{},"gateway":"yes","tunnels":[]}}', /request\.part\.gateway: expected true or false/],
    ];
    for (const [line, why] of bad) assert.throws(() => parseRequest(line), (e: Error) => e instanceof ProtocolError && why.test(e.message), line);
    // A part that would start another host's node is refused.
    const [a] = splitParts(TWO, placement, chassis, {});
    const wrong = { op: 'up-part', lab: { ...a!.lab, nodes: TWO.nodes }, part: a!.part };
    assert.throws(() => parseRequest(JSON.stringify(wrong)), /every node of host a's part must be placed on it/);
  });
  test('answers: steps, notes, one result or error; anything else refused', () => {
    assert.deepEqual(parseEvent('{"event":"step","title":"t","ms":3,"ok":true}'), { event: 'step', title: 't', ms: 3, ok: true });
    assert.deepEqual(parseEvent('{"event":"error","message":"m","exitCode":2}'), { event: 'error', message: 'm', exitCode: 2 });
    assert.deepEqual(parseEvent('{"event":"result","result":{"x":1}}'), { event: 'result', result: { x: 1 } });
    assert.throws(() => parseEvent('{"event":"step","title":"t"}'), /a step needs title, ms and ok/);
    assert.throws(() => parseEvent('Welcome to host b!'), /answer: not JSON/);
  });
});

describe('host parts', () => {
  const tunnels = { a: { ip: '192.0.2.10', mac: '02:00:00:00:00:0a' }, b: { ip: '192.0.2.11', mac: '02:00:00:00:00:0b' } };
  const parts = splitParts(TWO, placement, chassis, tunnels);
  test('each host gets its nodes, the whole lab\'s networks, the gateway flag and the other hosts\' tunnel ends', () => {
    assert.deepEqual(parts.map((p) => [p.part.host, p.lab.nodes.map((n) => n.name), p.lab.networks.length, p.part.gateway, p.part.tunnels]), [
      ['a', ['deb1', 'deb2'], 1, true, [tunnels.b]],
      ['b', ['deb3'], 1, false, [tunnels.a]],
    ]);
    assert.deepEqual(parts[1]!.part.placement, placement, 'every host knows the whole placement');
  });
  const ctx = (part: HostPart): PlanContext => ({
    image: { kernel: '/k', initrd: '/i', key: 'x' },
    accel: 'tcg',
    user: 'qnet',
    userIds: { uid: 1, gid: 1 },
    guestIds: { uid: 2, gid: 2 },
    ovn: { chassis, placement, datapath: 'netdev', nb: [], part: { host: part.host, gateway: part.gateway } },
  }) as unknown as PlanContext;
  test('a host\'s plan: no northbound batch (the driver\'s), host sides on the gateway only, binding waited for on the local OVS', () => {
    const [a, b] = parts.map((p) => formatPlan(planUp(onOvn(p.lab, 'netdev'), ctx(p.part))));
    for (const plan of [a!, b!]) {
      assert.doesNotMatch(plan, /northbound DB/);
      assert.doesNotMatch(plan, /ovn-nbctl/);
    }
    assert.match(a!, /host side of lan/);
    assert.doesNotMatch(b!, /host side/);
    assert.match(b!, /start deb3|deb3/);
    assert.doesNotMatch(b!, /deb1|deb2/);
  });
});

describe('reaching a host', () => {
  test('ssh with BatchMode and the port, then qnet there (on PATH, or as QNET_HOST_QNET[_NAME] says)', () => {
    const b = TWO.hosts!.find((h) => h.name === 'b')!;
    assert.deepEqual(agentArgv(b, {}), ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3', '-p', '2222', 'root@192.0.2.11', '--', 'qnet', 'agent']);
    const env = { QNET_SSH_OPTIONS: '-i /k -F /c', QNET_HOST_QNET: 'node /opt/qnet/bin/qnet.js', QNET_HOST_QNET_B: '/usr/local/bin/qnet' };
    assert.deepEqual(agentArgv(b, env).slice(9), ['-i', '/k', '-F', '/c', '-p', '2222', 'root@192.0.2.11', '--', '/usr/local/bin/qnet', 'agent']);
    assert.deepEqual(remoteQnet('a', env), ['node', '/opt/qnet/bin/qnet.js']);
    assert.deepEqual(agentArgv({ name: 'l', ssh: { kind: 'local' } }, {}, ['node', 'q.js']), ['node', 'q.js', 'agent']);
    assert.throws(() => remoteQnet('a', { QNET_HOST_QNET: '  ' }), /QNET_HOST_QNET: empty/);
  });
  test("a per-node command forwarded to the node's host: every word quoted for the remote shell, a terminal only when asked", () => {
    const b = TWO.hosts!.find((h) => h.name === 'b')!;
    const argv = forwardArgv(b, ['capture', 'seed', 'deb3', '--filter', 'icmp and host 1.2.3.4', '-w', '-'], false, {});
    assert.deepEqual(argv.slice(0, 6), ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-T']);
    assert.deepEqual(argv.slice(argv.indexOf('--') + 1), ['qnet', 'capture', 'seed', 'deb3', '--filter', "'icmp and host 1.2.3.4'", '-w', '-']);
    // A word the remote shell would read as syntax stays one word.
    const hostile = forwardArgv(b, ['impair', 'seed', 'deb3', '--rate', '1mbit; touch /tmp/x'], true, {});
    assert.ok(hostile.includes('-t'));
    assert.equal(hostile[hostile.length - 1], "'1mbit; touch /tmp/x'");
    assert.deepEqual(forwardArgv({ name: 'l', ssh: { kind: 'local' } }, ['link', 'seed', 'deb3', 'down'], false, {}, ['node', 'q.js']), ['node', 'q.js', 'link', 'seed', 'deb3', 'down']);
  });
});
