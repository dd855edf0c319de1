// Choosing the accelerator: KVM only where a probe guest really boots under it (cached), TCG otherwise.
import { constants as fsc } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile, chown } from 'node:fs/promises';
import path from 'node:path';
import { ControlChannel, waitReady } from '../qemu/control.js';
import { startGuest, stopGuest } from '../qemu/guest.js';
import { renderGuestConfig } from '../render/guest-config.js';
import { nodeFiles, renderGuestCommand, type Accel } from '../render/qemu.js';
import type { ImageManifest } from '../guest/image.js';
import type { CommandRunner } from '../host/run.js';
import os from 'node:os';
import { cacheRoot } from '../dirs.js';
import { userIds } from '../host/users.js';

export type AccelChoice = 'auto' | Accel;

const PROBE_TIMEOUT_MS = 10_000;

async function kvmOpenable(): Promise<boolean> {
  try {
    await access('/dev/kvm', fsc.R_OK | fsc.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Boots the built-in guest once under KVM; true only if it reports READY in time. */
async function probeKvm(image: ImageManifest, user: string): Promise<boolean> {
  const dir = await mkdtemp(path.join(cacheRoot(), '.kvm-probe-'));
  const files = nodeFiles(dir);
  const ids = await userIds(user);
  await chown(dir, ids.uid, ids.gid);
  const node = { name: 'probe', memory: 128, cpus: 1, nics: [] };
  await writeFile(files.config, renderGuestConfig({ name: 'probe', netns: '', networks: [], nodes: [node], forwards: [] }, node));
  const argv = renderGuestCommand({ node, files, image, accel: 'kvm', user });
  let pid: number | undefined;
  try {
    const g = await startGuest(argv, { ...process.env }, files, 5000);
    pid = g.pid;
    g.qmp.close();
    const ctl = await ControlChannel.connect(files.control, 2000);
    try {
      await waitReady(ctl, PROBE_TIMEOUT_MS, 'kvm probe');
      return true;
    } finally {
      ctl.destroy();
    }
  } catch {
    return false;
  } finally {
    await stopGuest(pid, files, { acpi: false, graceMs: 0 }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** Resolves `auto` by a cached probe; `kvm` and `tcg` are taken as asked. */
export async function resolveAccel(choice: AccelChoice, image: ImageManifest, user: string, run: CommandRunner): Promise<{ accel: Accel; why: string }> {
  if (choice !== 'auto') return { accel: choice, why: 'as requested' };
  if (!(await kvmOpenable())) return { accel: 'tcg', why: '/dev/kvm is not available' };
  await mkdir(cacheRoot(), { recursive: true });
  const cacheFile = path.join(cacheRoot(), 'accel.json');
  // The answer depends on the host kernel and QEMU, not on the guest image: re-probe only when those change.
  const qemuVersion = (await run.run(['qemu-system-x86_64', '--version'], { allowFail: true })).stdout.split('\n')[0];
  const key = `${os.release()} | ${qemuVersion}`;
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { key: string; kvm: boolean };
    if (cached.key === key) return { accel: cached.kvm ? 'kvm' : 'tcg', why: `cached probe (${cacheFile})` };
  } catch {
    // no cache yet
  }
  const kvm = await probeKvm(image, user);
  await writeFile(cacheFile, JSON.stringify({ key, kvm, probedAt: new Date().toISOString() }) + '\n');
  return { accel: kvm ? 'kvm' : 'tcg', why: kvm ? 'a probe guest booted under KVM' : 'a probe guest did not boot under KVM' };
}
