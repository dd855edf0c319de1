// Helper daemons of a lab (dnsmasq): started detached with the lab's marker, known ready from their own log.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { RuntimeError } from '../errors.js';
import { isAlive, waitGone } from '../qemu/process.js';

/**
 * Starts a daemon in the foreground mode of its own, detached from qnet; resolves with its pid once its log
 * shows `readyText`, rejects with the log's last lines if it exits first.
 */
export async function startService(argv: string[], env: NodeJS.ProcessEnv, log: string, readyText: string, timeoutMs = 10000): Promise<number> {
  const out = openSync(`${log}.out`, 'a', 0o600);
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', out, out], env });
  closeSync(out);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code ?? -1));
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + timeoutMs;
  const tail = async () => {
    const text = `${await readFile(log, 'utf8').catch(() => '')}${await readFile(`${log}.out`, 'utf8').catch(() => '')}`;
    return text.trim().split('\n').slice(-4).join('\n  ');
  };
  // The daemon writes its start-up lines within milliseconds: look again every 20 ms, bounded by the deadline.
  while (Date.now() < deadline) {
    const e = await Promise.race([failed, new Promise<null>((r) => setTimeout(r, 20, null))]);
    if (e) throw new RuntimeError(`cannot start ${argv.join(' ')}: ${e.message}`);
    if (exited !== undefined) throw new RuntimeError(`${argv.find((a) => !a.startsWith('-') && a !== 'nsenter' && a !== '--') ?? argv[0]} exited (${exited}) during start-up:\n  ${await tail()}`);
    if ((await readFile(log, 'utf8').catch(() => '')).includes(readyText)) {
      child.unref();
      return child.pid!;
    }
  }
  child.kill('SIGKILL');
  throw new RuntimeError(`${argv.join(' ')} did not start within ${timeoutMs} ms:\n  ${await tail()}`);
}

/** Stops a helper daemon: SIGTERM, then SIGKILL if it lingers. */
export async function stopService(pid: number | undefined): Promise<void> {
  if (pid === undefined || !(await isAlive(pid))) return;
  process.kill(pid, 'SIGTERM');
  if (await waitGone(pid, 3000)) return;
  process.kill(pid, 'SIGKILL');
  await waitGone(pid, 3000);
}
