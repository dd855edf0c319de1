// Where qnet keeps its files: per-lab run directories and the cache (both overridable for tests).
import path from 'node:path';

/** Root of all run directories (`QNET_RUN_DIR`, default /run/qnet). */
export function runRoot(): string {
  return process.env.QNET_RUN_DIR ?? '/run/qnet';
}

/** Root of the cache (`QNET_CACHE_DIR`, default /var/cache/qnet): guest images, the acceleration probe. */
export function cacheRoot(): string {
  return process.env.QNET_CACHE_DIR ?? '/var/cache/qnet';
}

/** The run directory of one lab. */
export function labDir(lab: string): string {
  return path.join(runRoot(), lab);
}

/** The run directory of one node of a lab. */
export function nodeDir(lab: string, node: string): string {
  return path.join(labDir(lab), node);
}

/** The unprivileged user QEMU runs as (`QNET_USER`, default qnet). */
export function guestUser(): string {
  return process.env.QNET_USER ?? 'qnet';
}
