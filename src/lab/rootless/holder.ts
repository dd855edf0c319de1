// The holder of a rootless lab: a process (`sleep`) in a user, mount and network namespace of the user's own, made
// by `unshare`. The lab's network namespace is the holder's, bound to /run/netns/qnet-LAB on a tmpfs of the holder's
// mount namespace (the host's /run/netns is not touched, nor seen), so inside it `ip -n`, `ip netns exec` and
// `nsenter --net=/run/netns/…` work as they do for root. Its pid is written atomically to
// $XDG_RUNTIME_DIR/qnet/LAB/holder.json with its start time and namespace inodes: a pid reused by another process
// after the holder died never matches them, so it is never taken for the lab.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RuntimeError } from '../../errors.js';
import { isAlive, waitGone } from '../../qemu/process.js';
import { ENV_LAB } from '../../render/markers.js';
import { NETNS_PREFIX } from '../../topology/model.js';
import { isLabName } from '../../topology/names.js';

/** The environment variable that marks a holder (its value: the lab), so an orphan (no pid file yet) is found. */
export const ENV_HOLDER = 'QNET_HOLDER';

/** What holder.json records: enough to tell the holder from any later process that got its pid. */
export interface HolderRecord {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks since boot at which the process started. */
  start: string;
  /** `user:[inode]`, `mnt:[inode]`, `net:[inode]` as /proc/PID/ns/* read. */
  userns: string;
  mntns: string;
  netns: string;
  /** The lab namespace's name inside the holder's mount namespace. */
  name: string;
}

// The holder's own start-up, before it sleeps: a private /run/netns with the lab namespace bound in it. Where the
// host has no /run/netns (nobody ever ran `ip netns add` there), a tmpfs on /run of the holder's mount namespace
// stands in, with the user's runtime directory bound back (opened as fd 3 before /run is covered).
const HOLDER_SCRIPT = [
  'set -e',
  'if [ -d /run/netns ]; then mount -t tmpfs -o mode=0755,size=64k qnet-netns /run/netns',
  'else exec 3<"$XDG_RUNTIME_DIR"; mount -t tmpfs -o mode=0755,size=1m qnet-run /run; mkdir -p /run/netns "$XDG_RUNTIME_DIR"; mount --bind /proc/self/fd/3 "$XDG_RUNTIME_DIR"; exec 3<&-; fi',
  'touch "/run/netns/$1"',
  'mount --bind /proc/self/ns/net "/run/netns/$1"',
  'echo ready',
  'exec sleep infinity </dev/null >/dev/null 2>&1',
].join('\n');

/**
 * The unshare options that map the user's subordinate ids (/etc/subuid, /etc/subgid) as uids and gids 1 and up in
 * the holder, when the user has both and newuidmap/newgidmap exist; none otherwise (only uid 0, the user, is mapped).
 * With them setgroups is allowed inside, which tcpdump needs (it changes its groups as it drops root); everything
 * else works with the user alone.
 */
export function subordinateIds(): string[] {
  const me = os.userInfo();
  const range = (file: string) => {
    try {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const [who, start, count] = line.trim().split(':');
        if ((who === me.username || who === String(me.uid)) && Number(count) > 0) return `${start},1,${count}`;
      }
    } catch {
      // no such file: no subordinate ids
    }
    return null;
  };
  const users = range('/etc/subuid');
  const groups = range('/etc/subgid');
  const tools = ['/usr/bin/newuidmap', '/usr/bin/newgidmap'].every((f) => existsSync(f));
  return users && groups && tools ? [`--map-users=${users}`, `--map-groups=${groups}`] : [];
}

/** The directory of a user's lab: holder.json, and the run directory the lab's commands use inside (`lab/`). */
export function labHome(runRoot: string, lab: string): string {
  return path.join(runRoot, lab);
}

/** Where holder.json lives. */
export function holderFile(home: string): string {
  return path.join(home, 'holder.json');
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function nsOf(pid: number, ns: 'user' | 'mnt' | 'net'): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return null;
  }
}

/** The record of a live process, as holder.json would keep it; null when it is gone. */
export function recordOf(pid: number, name: string): HolderRecord | null {
  const start = startTime(pid);
  const userns = nsOf(pid, 'user');
  const mntns = nsOf(pid, 'mnt');
  const netns = nsOf(pid, 'net');
  if (!start || !userns || !mntns || !netns) return null;
  return { pid, start, userns, mntns, netns, name };
}

/** True when the process with the record's pid is the very holder the record was written for (not a reuse). */
export function isSameHolder(rec: HolderRecord): boolean {
  const now = recordOf(rec.pid, rec.name);
  return !!now && now.start === rec.start && now.userns === rec.userns && now.mntns === rec.mntns && now.netns === rec.netns;
}

/** The lab's holder as holder.json says, if that process still is it; null otherwise (gone, reused, no file). */
export async function readHolder(home: string): Promise<HolderRecord | null> {
  try {
    const rec = JSON.parse(await readFile(holderFile(home), 'utf8')) as HolderRecord;
    return isSameHolder(rec) ? rec : null;
  } catch {
    return null;
  }
}

/**
 * Starts a lab's holder and writes holder.json (a temporary file renamed over it: never half written). The holder
 * is detached (its own session): a Ctrl-C of `up` does not take it, `down` does.
 */
export async function startHolder(home: string, lab: string, env: NodeJS.ProcessEnv): Promise<HolderRecord> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const name = `${NETNS_PREFIX}${lab}`;
  const sub = subordinateIds();
  const child = spawn('unshare', ['--user', '--map-root-user', ...sub, '--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', HOLDER_SCRIPT, 'qnet-holder', name], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, [ENV_HOLDER]: lab },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    child.stdout.on('data', () => out.includes('ready') && (clearTimeout(timer), resolve(true)));
    child.once('error', (e) => ((err += e.message), clearTimeout(timer), resolve(false)));
    child.once('exit', () => (clearTimeout(timer), resolve(out.includes('ready'))));
  });
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  const rec = ok && child.pid ? recordOf(child.pid, name) : null;
  if (!rec) {
    if (child.pid) await killPid(child.pid);
    throw new RuntimeError(
      `cannot make lab ${lab}'s user namespace (unshare --user --map-root-user --net --mount): ${err.trim() || 'no answer within 10 s'}. \`qnet doctor\` says what this host lacks for rootless labs`,
    );
  }
  const tmp = `${holderFile(home)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(rec) + '\n', { mode: 0o600 });
  await rename(tmp, holderFile(home));
  return rec;
}

/**
 * The argv prefix that runs a command inside a lab's holder: its user and mount namespaces (not its network
 * namespace: the command stays in the host's, and enters the lab's by name as root's commands do). The command is
 * uid 0 there, with every capability over the lab's namespaces and none over the host's. `--pdeathsig`: the command
 * dies with the qnet that started it (a SIGKILL of `qnet up` stops the `up` inside too).
 */
export function joinArgv(rec: HolderRecord): string[] {
  return ['nsenter', `--target=${rec.pid}`, '--user', '--mount', '--preserve-credentials', `--wd=${process.cwd()}`, '--', 'setpriv', '--pdeathsig', 'KILL', '--'];
}

/** A process of this user that carries a lab's marker (a holder, or QEMU, dnsmasq or pasta started inside). */
export interface MarkedOwn {
  pid: number;
  lab: string;
  holder: boolean;
}

/**
 * This user's processes that belong to some lab (or to `lab`), read from their environments: holders (ENV_HOLDER)
 * and what ran inside them (ENV_LAB). Only the user's own processes are readable, so other users' are never seen.
 */
export function ownMarkedProcesses(lab?: string): MarkedOwn[] {
  const out: MarkedOwn[] = [];
  const uid = process.geteuid?.() ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let env: string;
    try {
      if (readFileSync(`/proc/${entry}/status`, 'utf8').match(/^Uid:\s+\d+\s+(\d+)/m)?.[1] !== String(uid)) continue;
      env = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue;
    }
    const vars = env.split('\0');
    const h = vars.find((v) => v.startsWith(`${ENV_HOLDER}=`))?.slice(ENV_HOLDER.length + 1);
    const l = vars.find((v) => v.startsWith(`${ENV_LAB}=`))?.slice(ENV_LAB.length + 1);
    const which = h ?? l;
    if (which && (!lab || which === lab)) out.push({ pid: Number(entry), lab: which, holder: h !== undefined });
  }
  return out;
}

/** The labs of this user: a directory under their runtime root, or a marked process of theirs (an orphan). */
export function ownLabs(runRoot: string): string[] {
  const names = new Set<string>();
  try {
    for (const e of readdirSync(runRoot, { withFileTypes: true })) if (e.isDirectory() && isLabName(e.name)) names.add(e.name);
  } catch {
    // no runtime root yet
  }
  for (const p of ownMarkedProcesses()) names.add(p.lab);
  return [...names].sort();
}

/** SIGTERM, then SIGKILL after 3 s; resolves when the process is gone. */
export async function killPid(pid: number): Promise<void> {
  if (!(await isAlive(pid))) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(pid, 3000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitGone(pid, 3000);
}

/**
 * Removes what is left of a user's lab outside its namespaces: every marked process of the lab (guests, services,
 * the holder last, whose end frees the namespaces) and its directory. What it removed, for the message.
 */
export async function removeRemains(home: string, lab: string): Promise<string[]> {
  const removed: string[] = [];
  const procs = ownMarkedProcesses(lab);
  const others = procs.filter((p) => !p.holder);
  await Promise.all(others.map((p) => killPid(p.pid)));
  if (others.length) removed.push(`${others.length} process${others.length > 1 ? 'es' : ''} left in the lab`);
  const holders = procs.filter((p) => p.holder);
  await Promise.all(holders.map((p) => killPid(p.pid)));
  if (holders.length) removed.push(`holder (pid ${holders.map((h) => h.pid).join(', ')}) and its namespaces`);
  const there = await readdirOrNull(home);
  if (there) {
    await rm(home, { recursive: true, force: true });
    removed.push(`run directory ${home}`);
  }
  return removed;
}

async function readdirOrNull(dir: string): Promise<string[] | null> {
  try {
    return readdirSync(dir);
  } catch {
    return null;
  }
}
