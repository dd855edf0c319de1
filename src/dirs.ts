// Where qnet keeps its files: per-lab run directories, kept disks and the cache (each overridable for tests).
// Functions of the environment, so every layer may use them (the planner names files it does not touch). As root
// they are the system's directories; for an ordinary user (a rootless lab) they follow the XDG base directories.
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RuntimeError } from './errors.js';

/** What the directories depend on: who runs qnet, its environment, its home (given, so tests can be anyone). */
export interface DirsInput {
  uid: number;
  env: Record<string, string | undefined>;
  home: string;
  /** The owner of a directory, or null when there is none (only asked for a non-root user's XDG_RUNTIME_DIR). */
  ownerOf: (dir: string) => number | null;
}

/** The three roots qnet's files live under. */
export type DirKind = 'run' | 'state' | 'cache';

const SYSTEM: Record<DirKind, string> = { run: '/run/qnet', state: '/var/lib/qnet', cache: '/var/cache/qnet' };
const OVERRIDE: Record<DirKind, string> = { run: 'QNET_RUN_DIR', state: 'QNET_STATE_DIR', cache: 'QNET_CACHE_DIR' };

/**
 * The root of one kind of qnet's files for these inputs. QNET_*_DIR wins for anyone; root gets the system's
 * directories; an ordinary user gets $XDG_RUNTIME_DIR/qnet, $XDG_STATE_HOME/qnet (~/.local/state/qnet) and
 * $XDG_CACHE_HOME/qnet (~/.cache/qnet). A user without a usable XDG_RUNTIME_DIR is refused (exit 1): run
 * directories hold sockets and pids that must not outlive the login, nor be readable by anyone else.
 */
export function resolveDir(kind: DirKind, input: DirsInput): string {
  const set = input.env[OVERRIDE[kind]];
  if (set !== undefined) return set;
  if (input.uid === 0) return SYSTEM[kind];
  // The XDG spec: a relative path in these variables is invalid and is ignored.
  const xdg = (name: string) => {
    const v = input.env[name];
    return v && path.isAbsolute(v) ? v : undefined;
  };
  if (kind === 'state') return path.join(xdg('XDG_STATE_HOME') ?? path.join(input.home, '.local', 'state'), 'qnet');
  if (kind === 'cache') return path.join(xdg('XDG_CACHE_HOME') ?? path.join(input.home, '.cache'), 'qnet');
  const runtime = xdg('XDG_RUNTIME_DIR');
  const owner = runtime ? input.ownerOf(runtime) : null;
  if (runtime && owner === input.uid) return path.join(runtime, 'qnet');
  const what = !runtime
    ? `XDG_RUNTIME_DIR is ${input.env.XDG_RUNTIME_DIR ? `"${input.env.XDG_RUNTIME_DIR}", not an absolute path` : 'not set'}`
    : `XDG_RUNTIME_DIR ${runtime} ${owner === null ? 'does not exist' : `is owned by uid ${owner}, not by you (uid ${input.uid})`}`;
  const dir = `/run/user/${input.uid}`;
  throw new RuntimeError(
    `${what}: qnet run by an ordinary user keeps its labs' sockets and pids in $XDG_RUNTIME_DIR/qnet. ` +
      `Log in through a session that makes it (pam_systemd makes ${dir}), or have root run \`install -d -m 0700 -o ${input.uid} ${dir}\` and \`export XDG_RUNTIME_DIR=${dir}\`; or run qnet as root (sudo)`,
  );
}

function ownerOf(dir: string): number | null {
  try {
    return statSync(dir).uid;
  } catch {
    return null;
  }
}

/** The inputs of this process: its effective uid, environment and home. */
export function processDirsInput(): DirsInput {
  return { uid: process.geteuid?.() ?? 0, env: process.env, home: os.homedir(), ownerOf };
}

/**
 * True for qnet run again inside a user's lab holder (cli/rootless.ts): uid 0 over that lab's namespaces
 * only, so the lab is planned rootless (its uplink through pasta, QEMU with no capabilities, every id the user's).
 */
export function insideHolder(): boolean {
  return !!process.env.QNET_ROOTLESS_LAB && (process.geteuid?.() ?? 0) === 0;
}

/** True when qnet runs as an ordinary user (its labs would be rootless), false as root. */
export function rootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}

// A non-root user's runtime directory is checked (a stat) once per process and directory: paths are asked often.
const seen = new Map<string, string>();
function root(kind: DirKind): string {
  const input = processDirsInput();
  if (input.uid === 0 || input.env[OVERRIDE[kind]] !== undefined) return resolveDir(kind, input);
  const key = `${kind}\0${input.env.XDG_RUNTIME_DIR}\0${input.env.XDG_STATE_HOME}\0${input.env.XDG_CACHE_HOME}\0${input.home}`;
  let dir = seen.get(key);
  if (!dir) seen.set(key, (dir = resolveDir(kind, input)));
  return dir;
}

/** Root of all run directories (`QNET_RUN_DIR`; /run/qnet as root, $XDG_RUNTIME_DIR/qnet for a user). */
export function runRoot(): string {
  return root('run');
}

/** Root of the cache (`QNET_CACHE_DIR`; /var/cache/qnet as root, ~/.cache/qnet for a user): images, the acceleration probe. */
export function cacheRoot(): string {
  return root('cache');
}

/** Root of what outlives a lab (`QNET_STATE_DIR`; /var/lib/qnet as root, ~/.local/state/qnet for a user): kept disks. */
export function stateRoot(): string {
  return root('state');
}

/** The run directory of one lab. */
export function labDir(lab: string): string {
  return path.join(runRoot(), lab);
}

/** The run directory of one node of a lab. */
export function nodeDir(lab: string, node: string): string {
  return path.join(labDir(lab), node);
}

/** Where a lab's kept disks live (nodes with `persist: true`), until `qnet down LAB --purge`. */
export function labStateDir(lab: string): string {
  return path.join(stateRoot(), lab);
}

/** Where one node's kept disk (and its firmware variables) live. */
export function nodeStateDir(lab: string, node: string): string {
  return path.join(labStateDir(lab), node);
}

/** The unprivileged user QEMU runs as (`QNET_USER`, default qnet). */
export function guestUser(): string {
  return process.env.QNET_USER ?? 'qnet';
}
