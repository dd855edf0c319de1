// The User-Mode Linux test host: runs a shell script (an e2e test file, typically) inside Debian's
// `user-mode-linux` kernel, a distribution kernel run as an ordinary process, for what this machine's kernel lacks
// (netem, the bridge's VLAN filtering, 802.1Q, Open vSwitch). Test-only; nothing of qnet depends on it.
//
// The host's root is read through hostfs, read-only; init.sh puts an overlay with a tmpfs upper layer over it and
// fresh tmpfs on /run, /tmp and /var/lib/qnet, so qnet inside reads the host's guest image and saved states from
// /var/cache/qnet and everything it writes stays in the UML's memory. The only writable host path is a directory
// of this run (qnet-e2e-uml-PID-*, in the temp directory): the job goes in, its output, exit status, the kernel's
// release and the boot times come back. UML runs as PID 1 of a PID namespace of its own (unshare --kill-child)
// whose parent dies with ours (setpriv --pdeathsig): killing the test, the harness or UML leaves no UML process;
// its pid and mconsole files go to the run's directory (uml_dir), which is removed, and a run whose test process
// was killed leaves a directory that the next run removes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const INIT = path.join(ROOT, 'test', 'uml', 'init.sh');
export const UML = 'linux.uml';
const DIR_PREFIX = 'qnet-e2e-uml-';

/**
 * Modules loaded before the job (the kernel would load most on demand too): what qnet's labs use (taps, veths,
 * bridges, VLANs, traffic control for impairments and links, nftables: its bridge family for guards; this kernel
 * has no ip or inet family, so nat networks cannot run in it) and Open vSwitch.
 */
export const MODULES = [
  'tun', 'veth', 'bridge', '8021q', 'ifb', 'sch_netem', 'sch_tbf', 'sch_ingress', 'cls_u32', 'act_mirred',
  'nf_tables', 'openvswitch', 'vxlan', 'geneve',
];

export interface UmlResult {
  /** The job's exit status inside UML; null when none came back (UML died or was killed first). */
  status: number | null;
  /** The job's stdout and stderr. */
  stdout: string;
  stderr: string;
  /** `uname -r` inside. */
  kernel: string;
  /** Seconds of UML uptime when init reached the job's root, and when the modules were loaded. */
  bootS: number;
  modulesS: number;
  /** Milliseconds from starting UML to its exit, as the host saw it. */
  wallMs: number;
  /** Set when the harness killed UML at its time bound. */
  timedOut: boolean;
  /** The UML console (kernel messages), its last 8 KiB, for diagnosis. */
  console: string;
}

export interface UmlOptions {
  /** The job's time bound inside UML, in seconds (timeout(1), then SIGKILL 10 s later); the host kills UML 60 s after. */
  timeoutS?: number;
  /** UML's memory (mem=). Guests run inside it, so it needs their memory and more. */
  mem?: string;
  /** The job's working directory (a host path, read through the overlay). */
  cwd?: string;
  /** Extra environment of the job. */
  env?: Record<string, string>;
  modules?: string[];
  /** Called with the run's directory once UML is started (tests kill it from there). */
  onStart?: (dir: string, pid: number) => void;
}

/** True when Debian's user-mode-linux is installed. */
export function umlInstalled(): boolean {
  return spawnSync(UML, ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Directories of earlier runs whose test process is gone (it was killed): removed. Returns what was removed. */
export function removeStale(): string[] {
  const gone: string[] = [];
  for (const n of readdirSync(tmpdir())) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && existsSync(`/proc/${pid}`)) continue;
    if (pid === process.pid && running.has(path.join(tmpdir(), n))) continue;
    rmSync(path.join(tmpdir(), n), { recursive: true, force: true });
    gone.push(n);
  }
  return gone;
}

/** UML processes of a run (found by its directory on their command line). */
export function umlProcesses(dir: string): number[] {
  const r = spawnSync('pgrep', ['-f', `uml_dir=${dir}( |$)`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

// Runs in progress, killed with their PID namespace if this process exits first.
const running = new Map<string, number>();
process.once('exit', () => {
  for (const [dir, pid] of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');

/** Boots UML, runs `script` (sh) inside as root, and returns what came back; the run's directory is removed. */
export async function runInUml(script: string, opts: UmlOptions = {}): Promise<UmlResult> {
  removeStale();
  const dir = mkdtempSync(path.join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const timeoutS = opts.timeoutS ?? 600;
  const env = { HOME: '/root', LANG: 'C.UTF-8', ...opts.env };
  writeFileSync(
    path.join(dir, 'job.sh'),
    Object.entries(env)
      .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'\n`)
      .join('') + script,
  );
  writeFileSync(path.join(dir, 'modules'), (opts.modules ?? MODULES).join('\n') + '\n');
  const argv = [
    '--pdeathsig', 'KILL', '--',
    'unshare', '--pid', '--fork', '--kill-child', '--',
    UML, `mem=${opts.mem ?? '3G'}`, 'root=/dev/root', 'rootfstype=hostfs', 'rootflags=/', 'ro', `init=${INIT}`,
    'con=null', 'con0=null,fd:1', 'ssl=null', 'quiet', `uml_dir=${dir}`, 'umid=qnet-test',
    // Unknown name=value parameters reach init as its environment.
    `QNET_UML_OUT=${dir}`, `QNET_UML_CWD=${opts.cwd ?? ROOT}`, `QNET_UML_TIMEOUT=${timeoutS}`,
  ];
  const t0 = Date.now();
  // Its memory file (in /dev/shm or the temp directory) is unlinked by UML as soon as it is made.
  const child = spawn('setpriv', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.set(dir, child.pid!);
  opts.onStart?.(dir, child.pid!);
  let con = '';
  const keep = (d: Buffer) => (con = (con + d.toString()).slice(-8192));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let timedOut = false;
  const bound = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, (timeoutS + 60) * 1000);
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  clearTimeout(bound);
  running.delete(dir);
  const wallMs = Date.now() - t0;
  const statusText = read(path.join(dir, 'status')).trim();
  const boot = read(path.join(dir, 'boot'));
  const res: UmlResult = {
    status: statusText === '' ? null : Number(statusText),
    stdout: read(path.join(dir, 'stdout')),
    stderr: read(path.join(dir, 'stderr')),
    kernel: read(path.join(dir, 'kernel')).trim(),
    bootS: Number(/^booted ([\d.]+)/m.exec(boot)?.[1] ?? NaN),
    modulesS: Number(/^modules ([\d.]+)/m.exec(boot)?.[1] ?? NaN),
    wallMs,
    timedOut,
    console: con,
  };
  rmSync(dir, { recursive: true, force: true });
  return res;
}

/** Node's test runner on `files` (compiled), with TAP on stdout: the job for runInUml, or for this host directly. */
export function testCommand(files: string[]): string[] {
  return [process.execPath, '--test', '--test-reporter=tap', '--test-concurrency=1', ...files];
}

/** One test of a TAP stream: its path of names (describe > test), pass or fail, its diagnostics and failure. */
export interface TapTest {
  names: string[];
  ok: boolean;
  skip: boolean;
  /** What the test said (t.diagnostic). */
  notes: string[];
  /** The YAML block of a failure: error, expected, actual, location. */
  failure: string;
  durationMs: number;
}

/**
 * Parses Node's TAP reporter output into its tests. Suites are left out (their tests say it all) unless one failed
 * by itself (a hook that threw); the file level (a path, when several files run) is left out of the names.
 */
export function parseTap(text: string): { tests: TapTest[]; summary: Record<string, number> } {
  const lines = text.split('\n');
  const tests: TapTest[] = [];
  const stack: string[] = [];
  const last: Array<TapTest | undefined> = [];
  const summary: Record<string, number> = {};
  const unescape = (n: string) => n.replace(/\\#/g, '#');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const indent = /^ */.exec(line)![0].length;
    const depth = Math.floor(indent / 4);
    const sub = /^\s*# Subtest: (.*)$/.exec(line);
    if (sub) {
      stack.length = depth;
      stack[depth] = unescape(sub[1]!);
      last.length = depth;
      continue;
    }
    const res = /^\s*(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$/.exec(line);
    if (res) {
      const yaml: string[] = [];
      if (lines[i + 1]?.trim() === '---')
        for (i += 2; i < lines.length && lines[i]!.trim() !== '...'; i++) yaml.push(lines[i]!.slice(indent + 2));
      const y = yaml.join('\n');
      const isSuite = /^type: 'suite'/m.test(y);
      const own = !/^failureType: '(subtestsFailed|cancelledByParent)'/m.test(y);
      const names = [...stack.slice(0, depth), unescape(res[2]!)].filter((n) => !/^\/.*\.js$/.test(n));
      const t: TapTest = {
        names,
        ok: res[1] === 'ok',
        skip: res[3] === 'SKIP',
        notes: [],
        failure: res[1] === 'ok' ? '' : yaml.filter((l) => !/^(duration_ms|type):/.test(l)).join('\n'),
        durationMs: Number(/^duration_ms: ([\d.]+)/m.exec(y)?.[1] ?? 0),
      };
      if (!isSuite || (!t.ok && own)) tests.push(t);
      last[depth] = t;
      stack.length = depth;
      continue;
    }
    const s = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/.exec(line);
    if (s) {
      summary[s[1]!] = Number(s[2]);
      continue;
    }
    const note = /^\s*# (.*)$/.exec(line);
    if (note && last[depth]) last[depth]!.notes.push(note[1]!);
  }
  return { tests, summary };
}
