// Guest process supervision: start QEMU detached, know when it is up, stop it gracefully then by force.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { RuntimeError } from '../errors.js';
import type { NodeFiles } from '../render/qemu.js';
import { isAlive, waitGone } from './process.js';
import { QmpClient } from './qmp.js';

export interface StartedGuest {
  pid: number;
  child: ChildProcess;
  qmp: QmpClient;
}

/**
 * Starts a guest detached (it outlives the CLI) and resolves once its QMP monitor answers; rejects with
 * QEMU's own error text if the process exits first.
 */
export async function startGuest(argv: string[], env: NodeJS.ProcessEnv, files: NodeFiles, timeoutMs = 15000, fd3?: number, more: number[] = []): Promise<StartedGuest> {
  const logFd = openSync(files.log, 'a', 0o600);
  let child: ChildProcess;
  try {
    // fd3: a saved state for `-incoming fd:3` (opened here, so the unprivileged QEMU needs no access to the cache);
    // fd 4 on: the files an image node's QEMU is handed (-add-fd), in order.
    const extra: Array<number | 'ignore'> = more.length ? [fd3 ?? 'ignore', ...more] : fd3 !== undefined ? [fd3] : [];
    child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd, ...extra], env });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + timeoutMs;
  let exitInfo: { code: number | null; signal: string | null } | undefined;
  void exited.then((e) => (exitInfo = e));
  while (Date.now() < deadline) {
    if (exitInfo) break;
    try {
      const qmp = await QmpClient.connect(files.qmp, 2000);
      return { pid: child.pid!, child, qmp };
    } catch {
      // The socket appears a few ms after exec; retry until QEMU is up or has exited.
      const e = await Promise.race([exited, spawnError, new Promise((r) => setTimeout(r, 25, null))]);
      if (e instanceof Error) throw new RuntimeError(`cannot start ${argv[0]}: ${e.message}`);
    }
  }
  if (!exitInfo) {
    child.kill('SIGKILL');
    throw new RuntimeError(`QEMU did not open its monitor within ${timeoutMs} ms (log: ${files.log})`);
  }
  const log = (await logTail(files, 5)).join('\n  ');
  const how = exitInfo.signal ? `killed by ${exitInfo.signal}` : `exit code ${exitInfo.code}`;
  throw new RuntimeError(`QEMU exited during start-up (${how})${log ? `:\n  ${log}` : ''}`);
}

/** How often the ACPI power button is pressed again while a guest has not powered off (see stopGuest). */
export const ACPI_REPEAT_MS = 5000;

/**
 * Stops a guest. With `acpi`, the ACPI power button first and up to `graceMs` for the guest to power off (a real OS
 * flushes its disk); then QMP quit; then SIGKILL. Resolves when it is gone, saying how it went.
 */
export async function stopGuest(pid: number | undefined, files: NodeFiles, how: { acpi: boolean; graceMs: number }): Promise<'powered off' | 'quit' | 'killed' | 'gone'> {
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(files.qmp, 1000);
  } catch {
    qmp = undefined;
  }
  if (!qmp) {
    if (pid === undefined || !(await isAlive(pid))) return 'gone';
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 5000);
    return 'killed';
  }
  const closedWithin = async (ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([qmp!.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(r, ms, false)))]);
    clearTimeout(timer);
    return ok;
  };
  if (how.acpi && how.graceMs > 0) {
    // A guest still starting does not act on the button yet (in Debian, systemd-logind takes the press; one made
    // before it runs is lost): pressed again every ACPI_REPEAT_MS until the guest powers off. A Debian node ready
    // by its DHCP lease and taken down at once was quit after the whole 30 s grace (2026-12-07); a press during a
    // shutdown already under way changes nothing.
    const repeat = setInterval(() => void qmp!.execute('system_powerdown').catch(() => {}), ACPI_REPEAT_MS);
    try {
      await qmp.execute('system_powerdown');
      // QEMU exits when the guest powers off: its monitor closing is the sign, not a poll.
      if (await closedWithin(how.graceMs)) return 'powered off';
    } catch {
      // the monitor went away meanwhile: fall through
    } finally {
      clearInterval(repeat);
    }
  }
  try {
    await qmp.execute('quit');
  } catch {
    // the socket may close before the answer arrives
  }
  if (await closedWithin(3000)) return 'quit';
  qmp.close();
  if (pid !== undefined && (await isAlive(pid))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 5000);
  }
  return 'killed';
}

/**
 * Waits until a guest started with `-incoming` has loaded its saved state and runs (QEMU's RESUME event, or its
 * status if that came before we connected). Rejects with QEMU's reason (from its log) if the load fails: QEMU then
 * exits, which the monitor connection closing shows (the process may look alive a while).
 */
export async function waitRestored(g: StartedGuest, files: NodeFiles, timeoutMs = 30000): Promise<void> {
  const resumed = g.qmp.waitEvent('RESUME', timeoutMs);
  resumed.catch(() => {});
  try {
    const status = (await g.qmp.execute<{ status: string }>('query-status')).status;
    if (status !== 'running') await resumed;
  } catch (e) {
    const log = (await logTail(files, 3)).join('; ');
    throw new RuntimeError(`the saved state could not be loaded${log ? `: ${log}` : ` (${(e as Error).message})`}`);
  }
}

// The last lines QEMU wrote to its log (its own reason when it exits), none if there is no log.
async function logTail(files: NodeFiles, lines: number): Promise<string[]> {
  const text = (await readFile(files.log, 'utf8').catch(() => '')).trim();
  return text ? text.split('\n').slice(-lines) : [];
}
