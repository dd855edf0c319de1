// How qnet run by an ordinary user reaches its labs (the `holder` kind of lab/space.ts): each lab has a holder
// (lab/rootless/holder.ts), and a command on the lab runs
// qnet itself again inside the holder's user and mount namespaces, where it is uid 0 over the lab alone and finds the
// lab's namespace by name as root's qnet does. So the code that makes and works a lab is the same for root and for a
// user; what differs lives here (where a lab is, how a command gets to it) and in the plan's rootless choices (the
// uplink through pasta, QEMU without capabilities). Root never comes here: for root, a lab is a named namespace of
// the host and commands run where they are.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot, runRoot, stateRoot } from '../dirs.js';
import { RuntimeError, UserError } from '../errors.js';
import { isLabName, LAB_NAME_RULE } from '../topology/names.js';
import { ENV_HOLDER, joinArgv, labHome, ownMarkedProcesses, removeRemains, startHolder } from '../lab/rootless/holder.js';
import { holderSpace } from '../lab/space.js';

/** Set in the environment of a qnet run inside a lab's holder: the lab's name. */
export const ENV_ROOTLESS_LAB = 'QNET_ROOTLESS_LAB';

// Commands whose first argument names a running lab.
const ON_LAB = new Set(['leases', 'exec', 'ssh', 'console', 'link', 'capture', 'impair', 'stop', 'start', 'restart']);
// Commands whose first argument is a lab name or a topology file (a file: run here, nothing is touched).
const ON_TARGET = new Set(['check', 'graph', 'export']);
// Options that take a value, so that the positional arguments are found (up, down, demo).
const VALUED = new Set(['--accel', '--timeout', '--parallel', '--grace', '--image']);

function positionals(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUED.has(a)) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The environment of qnet inside a lab's holder: it is uid 0 there, so its directories are given (the user's). */
function innerEnv(lab: string, home: string): NodeJS.ProcessEnv {
  const sbin = ['/usr/sbin', '/sbin'].filter((d) => !(process.env.PATH ?? '').split(':').includes(d));
  return {
    ...process.env,
    [ENV_ROOTLESS_LAB]: lab,
    QNET_RUN_DIR: path.join(home, 'lab'),
    QNET_STATE_DIR: stateRoot(),
    QNET_CACHE_DIR: cacheRoot(),
    // uid 0 inside is the user: the guests and dnsmasq run as it (QEMU with no capabilities left, see render/qemu.ts).
    QNET_USER: 'root',
    PATH: [process.env.PATH ?? '/usr/bin:/bin', ...sbin].join(':'),
  };
}

/**
 * Runs qnet with `args` inside the lab's holder; its exit code (and its standard output, with `capture`). Ctrl-C
 * reaches both (one process group): the inner qnet handles it, this one waits for it.
 */
export function runInside(entry: string[], lab: string, args: string[], capture = false): Promise<{ code: number; stdout: string }> {
  const argv = [...entry, process.execPath, process.argv[1]!, ...args];
  const env = innerEnv(lab, labHome(runRoot(), lab));
  return new Promise((resolve, reject) => {
    const ignore = () => {};
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'], env });
    let stdout = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const done = () => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
    };
    child.once('error', (e) => (done(), reject(new RuntimeError(`cannot enter lab ${lab}'s namespaces (${argv[0]}): ${e.message}`))));
    child.once('close', (code, signal) => (done(), resolve({ code: code ?? (signal ? 128 + 1 : 1), stdout })));
  });
}

function noLab(lab: string): UserError {
  return new UserError(`no lab ${lab} of yours on this host (\`qnet status\` lists your labs; a user sees only the labs they made)`);
}

/** The holder of a lab that must be running: exit 2 when there is no such lab of this user, 1 when only remains are. */
async function holderOf(lab: string): Promise<string[]> {
  if (!isLabName(lab)) throw new UserError(`'${lab}' is not a lab name (${LAB_NAME_RULE})`);
  const home = labHome(runRoot(), lab);
  const entry = await holderSpace.entry(lab);
  if (entry) return entry;
  if (existsSync(home) || ownMarkedProcesses(lab).length)
    throw new RuntimeError(`lab ${lab} is not running: its holder (the process that keeps its namespaces) is gone; \`qnet down ${lab}\` removes what is left`);
  throw noLab(lab);
}

/** Whether the lab inside its holder has been made (its run directory exists): up got past its first step. */
function madeInside(lab: string): boolean {
  return existsSync(path.join(labHome(runRoot(), lab), 'lab', lab));
}

/** `qnet up` (and `demo`) by a user: the holder first (a new one, or the running lab's), then `up` inside it. */
async function upRootless(command: 'up' | 'demo', args: string[]): Promise<number> {
  let name = 'demo';
  if (command === 'up') {
    const file = positionals(args.slice(1))[0];
    // No file: the CLI inside says so (exit 2) as it would for root; nothing is made.
    if (!file) return -1;
    const { loadTopology } = await import('../topology/load.js');
    const { refuseRootless } = await import('../topology/rootless.js');
    const lab = await loadTopology(file);
    const start = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')).trim());
    refuseRootless(lab, { rootless: true, uid: process.geteuid?.() ?? 0, unprivilegedPortStart: Number.isInteger(start) ? start : 1024 }, file);
    name = lab.name;
  }
  const home = labHome(runRoot(), name);
  let entry = await holderSpace.entry(name);
  const fresh = !entry;
  if (!entry) {
    if (existsSync(home) || ownMarkedProcesses(name).length)
      throw new RuntimeError(`lab ${name} has remains of an earlier run (its holder is gone); \`qnet down ${name}\` removes them, then run this again`);
    entry = joinArgv(await startHolder(home, name, process.env));
    await mkdir(path.join(home, 'lab'), { mode: 0o700 });
  }
  const dryRun = args.includes('--dry-run');
  let code: number;
  try {
    code = (await runInside(entry, name, args)).code;
  } catch (e) {
    if (fresh) await removeRemains(home, name);
    throw e;
  }
  // A lab that did not come up (it rolled back), a dry run, or a demo (it takes its lab down): nothing may stay.
  const keep = command === 'up' && !dryRun && existsSync(path.join(home, 'lab', name, 'state.json'));
  if (fresh && !keep) await removeRemains(home, name);
  return code;
}

/** `qnet down` by a user: inside the holder as root's down, then the holder, what is left of the lab, and its directory. */
async function downRootless(args: string[]): Promise<number> {
  const { green } = await import('./term.js');
  const rest = args.slice(1);
  const target = positionals(rest)[0];
  let labs: string[];
  if (rest.includes('--all')) labs = await holderSpace.labs();
  else if (!target) throw new UserError('down: name a lab or a topology file, or use --all');
  else if (isLabName(target) && !existsSync(target)) labs = [target];
  else if (existsSync(target)) labs = [(await (await import('../topology/load.js')).loadTopology(target)).name];
  else throw new UserError(`'${target}' is neither a topology file nor a lab name (${LAB_NAME_RULE})`);
  if (rest.includes('--all') && !labs.length) process.stderr.write('no labs of yours on this host\n');
  const passOn = rest.filter((a, i) => a === '--purge' || a === '--grace' || rest[i - 1] === '--grace');
  let code = 0;
  for (const lab of labs) {
    const home = labHome(runRoot(), lab);
    const entry = await holderSpace.entry(lab);
    const t = Date.now();
    let inner = 0;
    if (entry && madeInside(lab)) inner = (await runInside(entry, lab, ['down', lab, ...passOn])).code;
    const removed = await removeRemains(home, lab);
    if (removed.length) process.stderr.write(`${green('✓')} lab ${lab}: removed ${removed.join(', ')} in ${Date.now() - t} ms\n`);
    else if (!entry && inner === 0 && !rest.includes('--all')) {
      // Nothing of it here: taken down before (said, exit 0), or never a lab of this user's (exit 2).
      const at = await (await import('../lab/tombstones.js')).takenDownAt(lab);
      if (!at) throw noLab(lab);
      process.stderr.write(`lab ${lab} is already down (taken down at ${at.slice(0, 19).replace('T', ' ')} UTC): nothing to remove\n`);
    }
    if (inner !== 0) code = inner;
  }
  return code;
}

/** `qnet status` by a user: each of the user's labs as seen from inside its holder. */
async function statusRootless(args: string[]): Promise<number> {
  const rest = args.slice(1);
  const lab = positionals(rest)[0];
  const json = rest.includes('--json');
  if (lab) return (await runInside(await holderOf(lab), lab, args)).code;
  const out: unknown[] = [];
  let code = 0;
  const labs = await holderSpace.labs();
  for (const name of labs) {
    const entry = await holderSpace.entry(name);
    if (!entry || !madeInside(name)) {
      const note = { lab: name, status: 'leftover', leftovers: ['its holder is gone or never finished'], nodes: [], networks: [], services: [] };
      if (json) out.push(note);
      else process.stdout.write(`lab ${name}: leftover (its holder is gone or up was interrupted); \`qnet down ${name}\` removes it\n`);
      continue;
    }
    const r = await runInside(entry, name, ['status', name, ...rest], json);
    if (json) out.push(JSON.parse(r.stdout || 'null'));
    if (r.code) code = r.code;
  }
  if (json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else if (!labs.length) process.stdout.write('no labs\n');
  return code;
}

/**
 * The commands that reach a user's labs, run for a user (not root): the exit code, or undefined for a command that
 * runs as it is (validate, doctor, schema, a topology file's graph...). Whatever else is asked, a user reaches only
 * the labs under their own runtime directory: other users' holders and files are neither listed nor readable.
 */
export async function rootlessFront(argv: string[]): Promise<number | undefined> {
  const command = argv[0] ?? '';
  if (argv.includes('--help') || argv.includes('-h')) return undefined;
  if (command === 'up' || command === 'demo') {
    const c = await upRootless(command, argv);
    return c === -1 ? undefined : c;
  }
  if (command === 'down') return downRootless(argv);
  if (command === 'status') return statusRootless(argv);
  const first = argv[1];
  if (ON_LAB.has(command) && first && !first.startsWith('-')) return (await runInside(await holderOf(first), first, argv)).code;
  if (ON_TARGET.has(command) && first && !first.startsWith('-') && isLabName(first) && !existsSync(first))
    return (await runInside(await holderOf(first), first, argv)).code;
  const refusal = refuseAsUser(argv);
  if (refusal) throw new UserError(refusal);
  return undefined;
}

/**
 * Why a command is refused to an ordinary user, and what to do instead (null: not refused). Refused before anything
 * happens, exit 2.
 */
export function refuseAsUser(argv: string[]): string | null {
  const [command, sub] = positionals(argv);
  if (command === 'web')
    return (
      'qnet web is not offered to an ordinary user yet: one web process serves every lab from the host\'s own namespaces, ' +
      "where a user's labs each live in their own holder's user and network namespaces. On your labs use `qnet status`, " +
      '`qnet graph LAB`, `qnet exec`, `qnet console` and `qnet capture`; `sudo qnet web` serves root\'s labs'
    );
  if (command === 'image' && sub === 'create')
    return (
      'qnet image create needs root: it partitions a raw disk through a loop device and mounts it to install Debian and GRUB ' +
      '(losetup, mount), which an ordinary user cannot do. An administrator runs it once, e.g. ' +
      '`sudo qnet image create debian --out /srv/qnet/debian.qcow2 && sudo chmod a+r /srv/qnet/debian.qcow2`, and your labs use ' +
      "that file as a node's image (nodes: { a: { image: /srv/qnet/debian.qcow2 } }): guests run on overlays in your own " +
      'directories and the file is never changed'
    );
  return null;
}

export { ENV_HOLDER };
