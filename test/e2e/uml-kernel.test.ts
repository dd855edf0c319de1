// End-to-end: the kernel features this machine may lack (netem for delay, jitter, loss, duplicate and corrupt; the
// bridge's VLAN filtering and 802.1Q for VLAN-aware networks), proven on a kernel that has them. The tests of
// test/uml/ run here when this kernel has the features, else inside the User-Mode Linux test host (Debian's
// user-mode-linux, a distribution kernel as a process: test/uml/harness.ts), all in one boot; each of their
// tests is one test here, named with the kernel it ran on. Inside UML, OVN too (test/uml/ovn.test.ts: `qnet host
// setup` on a distribution kernel's datapath probe, netem on an OVN NIC); run directly, that one is left out, as it
// would set OVN up in this machine's own namespace (the ovn-* e2e files test OVN in simulated hosts). Then the harness itself: nothing of it is left on the
// host, not when it ends, not when UML is killed, not when the test process running it is killed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bridgeVlanFiltering, netemUsable } from '../../src/host/kernel.js';
import { RealRunner } from '../../src/host/run.js';
import { shellQuote } from '../../src/render/shell.js';
import { parseTap, removeStale, runInUml, testCommand, umlInstalled, umlProcesses, type TapTest } from '../uml/harness.js';
import { ROOT, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const runner = new RealRunner();
const here = { netem: await netemUsable(runner), vlans: await bridgeVlanFiltering(runner) };
const direct = here.netem && here.vlans;
const FILES = ['doctor', 'impair', 'vlans', ...(direct ? [] : ['ovn'])].map((f) => path.join(ROOT, 'dist', 'test', 'uml', `${f}.test.js`));
const lacking = [here.netem ? '' : 'netem', here.vlans ? '' : 'bridge VLAN filtering'].filter(Boolean).join(' and ');

// What the harness could leave on the host: its directories, UML processes, UML's ~/.uml, and writes to qnet's
// cache (every file's size and time), besides what a lab could leave (helpers' snapshot).
const umlLeft = () => ({
  dirs: readdirSync(tmpdir()).filter((n) => n.startsWith('qnet-e2e-uml-')),
  procs: spawnSync('pgrep', ['-f', 'uml_dir=/'], { encoding: 'utf8' }).stdout.trim(),
  dotUml: existsSync('/root/.uml') ? readdirSync('/root/.uml') : [],
});
const cacheFiles = () => spawnSync('find', ['/var/cache/qnet', '-printf', '%p %s %T@\n'], { encoding: 'utf8' }).stdout.split('\n').sort().join('\n');

interface Outcome {
  where: string;
  kernel: string;
  tests: TapTest[];
  status: number | null;
  figures: string;
  output: string;
  before: HostSnapshot;
  cache: string;
}

// Inside UML, the guest image and saved states are read from the host's cache and what UML writes is lost with it:
// a shape first booted inside boots again in every run (one CPU, TCG: minutes for the VLAN lab's four). So the host
// makes them first, as a user's first `up` would: the image, and a lab (on a plain bridge, which this kernel has)
// of the two shapes the UML labs use, a guest of one NIC and a router with VLAN sub-interfaces. Where they were
// made already (earlier tests of npm test), this is a restore of two guests.
async function warmHostCache(): Promise<string> {
  const t0 = Date.now();
  const b = await qnet(['image', 'build']);
  assert.equal(b.code, 0, `qnet image build: ${b.stderr}`);
  const lab = labName('umw');
  const file = writeTopology({
    name: lab,
    networks: { lan: { subnet: '10.96.0.0/24', address: '10.96.0.1' } },
    nodes: {
      r: { router: {}, nics: [{ network: 'lan', vlans: [{ id: 10, ip: '10.96.10.1/24' }] }] },
      h: { nics: [{ network: 'lan', ip: '10.96.0.2' }] },
    },
  });
  try {
    const u = await qnet(['up', file]);
    assert.equal(u.code, 0, `up of the warm-up lab: ${u.stderr}`);
  } finally {
    await qnet(['down', lab]);
  }
  return `host cache made ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

let outcome: Outcome | undefined;
let warm = '';
if (direct || umlInstalled()) {
  if (!direct) warm = await warmHostCache();
  const before = await snapshot();
  const cache = cacheFiles();
  const t0 = Date.now();
  if (direct) {
    const argv = testCommand(FILES);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: ROOT, timeout: 900_000 });
    outcome = { where: 'this host', kernel: release(), tests: parseTap(r.stdout).tests, status: r.status, figures: `${((Date.now() - t0) / 1000).toFixed(1)} s`, output: r.stdout + r.stderr, before, cache };
  } else {
    const r = await runInUml(testCommand(FILES).map(shellQuote).join(' '), { timeoutS: 900 });
    outcome = {
      where: `User-Mode Linux (this host lacks ${lacking})`,
      kernel: r.kernel,
      tests: parseTap(r.stdout).tests,
      status: r.status,
      figures: `UML booted in ${r.bootS.toFixed(1)} s, modules loaded by ${r.modulesS.toFixed(1)} s, ${(r.wallMs / 1000).toFixed(1)} s in all${r.timedOut ? ', killed at its time bound' : ''}`,
      output: `${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}\nconsole:\n${r.console.slice(-2000)}`,
      before,
      cache,
    };
  }
}

describe(outcome ? `netem, VLAN filtering, 802.1Q${direct ? '' : ' and OVN'} on kernel ${outcome.kernel}, in ${outcome.where}` : 'netem, VLAN filtering and 802.1Q', () => {
  test('the tests ran to the end and came back; nothing is left on the host', async (t) => {
    assert.ok(outcome, `this host lacks ${lacking}, and user-mode-linux is not installed to test them on a kernel that has them (npm test installs it: bash scripts/setup.sh --test)`);
    t.diagnostic(`${outcome.where}, kernel ${outcome.kernel}: ${warm ? `${warm}; ` : ''}${outcome.figures}; ${outcome.tests.filter((x) => x.ok).length} passed, ${outcome.tests.filter((x) => !x.ok).length} failed`);
    assert.ok(outcome.kernel, 'the kernel said its release');
    assert.notEqual(outcome.status, null, `no exit status came back:\n${outcome.output}`);
    assert.ok(outcome.tests.length >= 10, `only ${outcome.tests.length} tests came back:\n${outcome.output}`);
    assert.equal(outcome.tests.filter((x) => !x.ok).length === 0, outcome.status === 0, `the status (${outcome.status}) says what the tests say`);
    assert.deepEqual(await snapshot(), outcome.before);
    assert.deepEqual(umlLeft(), { dirs: [], procs: '', dotUml: [] });
    assert.equal(cacheFiles(), outcome.cache, "nothing was written to the host's /var/cache/qnet");
  });
  for (const r of outcome?.tests ?? [])
    test(r.names.join(' > '), { skip: r.skip }, (t) => {
      t.diagnostic(`${(r.durationMs / 1000).toFixed(1)} s on kernel ${outcome!.kernel}`);
      for (const n of r.notes) t.diagnostic(n);
      assert.ok(r.ok, r.failure);
    });
});

describe('the UML harness leaves nothing behind when killed', { skip: !umlInstalled() && 'user-mode-linux is not installed' }, () => {
  test('UML killed while the job runs: no status comes back, no UML process or directory is left', async () => {
    removeStale();
    let dir = '';
    const r = await runInUml('echo started > /run/qnet-uml/started; sleep 300', {
      timeoutS: 400,
      modules: ['tun'],
      onStart: (d) => {
        dir = d;
        // Once the job runs, kill UML's own process (the oldest of this run's linux.uml processes).
        const iv = setInterval(() => {
          if (!existsSync(path.join(d, 'started'))) return;
          clearInterval(iv);
          spawnSync('pkill', ['-KILL', '-o', '-f', `^linux\\.uml .*uml_dir=${d}( |$)`]);
        }, 200);
      },
    });
    assert.equal(r.status, null);
    assert.equal(r.timedOut, false);
    assert.deepEqual(umlProcesses(dir), []);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(umlLeft(), { dirs: [], procs: '', dotUml: [] });
  });

  test('the test process killed (SIGKILL) while UML runs: UML dies with it, and the next run removes its directory', async () => {
    removeStale();
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'test', 'uml', 'run.js'), 'echo started > /run/qnet-uml/started; sleep 300'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const gone = new Promise<void>((r) => child.once('close', () => r()));
    let dir = '';
    for (let i = 0; i < 600 && !(dir && existsSync(path.join(dir, 'started'))); i++) {
      dir = /uml: started \(pid \d+, (\S+)\)/.exec(err)?.[1] ?? '';
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(dir && existsSync(path.join(dir, 'started')), `the job did not start: ${err}`);
    assert.ok(umlProcesses(dir).length > 0);
    child.kill('SIGKILL');
    await gone;
    for (let i = 0; i < 100 && umlProcesses(dir).length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(umlProcesses(dir), [], 'UML died with the process that started it');
    assert.ok(existsSync(dir), 'its directory was left (nothing ran to remove it)');
    assert.deepEqual(removeStale(), [path.basename(dir)]);
    assert.deepEqual(umlLeft(), { dirs: [], procs: '', dotUml: [] });
  });
});
