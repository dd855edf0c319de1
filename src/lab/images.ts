// What `up` observes and makes for image nodes outside the pure plan: the state of kept disks, the lab key, the
// UEFI firmware's files, and each node's cloud-init seed (rendered with the SSH keys made earlier in the run).
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderSeed, type SeedKeys } from '../guest/cloud-init.js';
import { renderResumeConfig } from '../guest/resume.js';
import { baseIdentity, ovmfFiles } from '../guest/image-check.js';
import { labKeyFiles, needsLabKey } from '../guest/image-node.js';
import { keptPaths } from '../guest/kept.js';
import { exists } from '../host/fs.js';
import type { CommandRunner } from '../host/run.js';
import type { KeptState, PlanContext } from '../plan/steps.js';
import type { ResolvedLab } from '../topology/model.js';

/** The observed state the planner needs for a lab's image nodes (kept disks, the lab key, OVMF). */
export async function observeImages(lab: ResolvedLab, run: CommandRunner): Promise<Pick<PlanContext, 'kept' | 'labKey' | 'ovmf'>> {
  const kept: Record<string, KeptState> = {};
  for (const node of lab.nodes) {
    const img = node.image;
    if (!img?.persist || !img.format) continue;
    const k = keptPaths(lab.name, node.name);
    const disk = await exists(k.disk);
    let size: number | undefined;
    if (disk) {
      const r = await run.run(['qemu-img', 'info', '--output=json', '-U', k.disk], { allowFail: true });
      size = r.code === 0 ? (JSON.parse(r.stdout) as { 'virtual-size'?: number })['virtual-size'] : undefined;
    }
    kept[node.name] = { disk, vars: disk && (await exists(k.vars)), hostKey: await exists(k.hostKey), ...(size !== undefined ? { size } : {}), base: await baseIdentity(img.path, img.format) };
  }
  const out: Pick<PlanContext, 'kept' | 'labKey' | 'ovmf'> = {};
  if (Object.keys(kept).length) out.kept = kept;
  if (needsLabKey(lab)) out.labKey = await exists(labKeyFiles(lab).key);
  if (lab.nodes.some((n) => n.image?.firmware === 'uefi')) out.ovmf = ovmfFiles();
  return out;
}

/**
 * Writes an image node's NoCloud seed: meta-data, user-data (with the lab's public key and the node's host key),
 * network-config, packed by xorriso as an ISO 9660 volume labelled cidata with Joliet and Rock Ridge names; and the
 * node's host key into the lab's known_hosts, so that `qnet ssh` checks the guest it reaches. Root-only files.
 */
export async function writeSeed(run: CommandRunner, lab: ResolvedLab, a: { node: string; dir: string; iso: string; labKey: string; hostKey: string; knownHosts: string }): Promise<void> {
  const node = lab.nodes.find((n) => n.name === a.node);
  if (!node) throw new Error(`writeSeed: no node ${a.node}`);
  const keys = await readKeys(a);
  const seed = renderSeed(lab, node, keys);
  await rm(a.dir, { recursive: true, force: true });
  await mkdir(a.dir, { mode: 0o700 });
  for (const f of ['meta-data', 'user-data', 'network-config'] as const) await writeFile(path.join(a.dir, f), seed[f], { mode: 0o600 });
  await run.run(['xorriso', '-as', 'mkisofs', '-quiet', '-V', 'cidata', '-J', '-r', '-o', a.iso, a.dir]);
  await chmod(a.iso, 0o600);
  await knowHost(a.knownHosts, node.name, keys.hostPublic);
}

/**
 * Writes the configuration of a node that uses qnet's resume hook (its keys, a fresh machine-id and random seed),
 * readable by the lab's QEMU only (it serves it on fw_cfg, and qnet sends it after a resume); and its host key into
 * the lab's known_hosts.
 */
export async function writeResumeConfig(lab: ResolvedLab, a: { node: string; file: string; labKey: string; hostKey: string; knownHosts: string; snapshot: boolean; owner: { uid: number; gid: number } }): Promise<void> {
  const node = lab.nodes.find((n) => n.name === a.node);
  if (!node) throw new Error(`writeResumeConfig: no node ${a.node}`);
  const keys = await readKeys(a);
  const secrets = { machineId: randomBytes(16).toString('hex'), seed: randomBytes(32).toString('hex') };
  await writeFile(a.file, renderResumeConfig(lab, node, keys, secrets, { snapshot: a.snapshot }), { mode: 0o600 });
  await chown(a.file, a.owner.uid, a.owner.gid);
  await knowHost(a.knownHosts, node.name, keys.hostPublic);
}

async function readKeys(a: { labKey: string; hostKey: string }): Promise<SeedKeys> {
  return {
    labPublic: (await readFile(a.labKey, 'utf8')).trim(),
    hostPrivate: await readFile(a.hostKey, 'utf8'),
    hostPublic: (await readFile(`${a.hostKey}.pub`, 'utf8')).trim(),
  };
}

// One line per node in the lab's known_hosts: a node started again (a change, a new host key) replaces its line.
async function knowHost(knownHosts: string, node: string, hostPublic: string): Promise<void> {
  const [type, key] = hostPublic.split(/\s+/);
  const others = (await readFile(knownHosts, 'utf8').catch(() => '')).split('\n').filter((l) => l && !l.startsWith(`${node} `));
  await writeFile(knownHosts, [...others, `${node} ${type} ${key}`].join('\n') + '\n', { mode: 0o600 });
}
