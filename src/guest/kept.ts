// Where a persisted image node's disk is kept across down/up (under QNET_STATE_DIR), until `down --purge`. Pure.
import path from 'node:path';
import { nodeStateDir } from '../dirs.js';

/** The files of a node's kept disk (persist: true): the overlay, the base it was made on, UEFI variables, host key. */
export function keptPaths(lab: string, node: string): { dir: string; disk: string; base: string; vars: string; hostKey: string } {
  const dir = nodeStateDir(lab, node);
  return {
    dir,
    disk: path.join(dir, 'disk.qcow2'),
    base: path.join(dir, 'base.json'),
    vars: path.join(dir, 'OVMF_VARS.fd'),
    hostKey: path.join(dir, 'ssh_host_ed25519_key'),
  };
}
