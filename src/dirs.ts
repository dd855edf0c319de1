// Where qnet keeps its files: per-lab run directories, kept disks and the cache (each overridable for tests).
// Pure functions of the environment, so every layer may use them (the planner names files it does not touch).
import path from 'node:path';

/** Root of all run directories (`QNET_RUN_DIR`, default /run/qnet). */
export function runRoot(): string {
  return process.env.QNET_RUN_DIR ?? '/run/qnet';
}

/** Root of the cache (`QNET_CACHE_DIR`, default /var/cache/qnet): guest images, the acceleration probe. */
export function cacheRoot(): string {
  return process.env.QNET_CACHE_DIR ?? '/var/cache/qnet';
}

/** Root of what outlives a lab (`QNET_STATE_DIR`, default /var/lib/qnet): the disks of nodes with `persist: true`. */
export function stateRoot(): string {
  return process.env.QNET_STATE_DIR ?? '/var/lib/qnet';
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
