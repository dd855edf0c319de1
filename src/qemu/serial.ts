// Driving a guest's serial console programmatically: run one shell command and collect its output and status.
import net from 'node:net';
import { RuntimeError } from '../errors.js';

let seq = 0;

/**
 * Types `command` into the guest's console shell and returns what it printed and its exit status.
 * The markers are assembled by the guest's shell, so the echo of the typed line never matches them.
 */
export async function consoleRun(socketPath: string, command: string, timeoutMs = 30000): Promise<{ output: string; code: number }> {
  const id = `${process.pid}_${++seq}`;
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  try {
    return await new Promise((resolve, reject) => {
      let buf = '';
      const begin = `__QB_${id}`;
      const endRe = new RegExp(`__QE_${id} (\\d+)`);
      const timer = setTimeout(() => reject(new RuntimeError(`console command timed out after ${timeoutMs} ms: ${command}`)), timeoutMs);
      sock.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const m = endRe.exec(buf);
        const b = buf.indexOf(`${begin}\r\n`) >= 0 ? buf.indexOf(`${begin}\r\n`) : buf.indexOf(`${begin}\n`);
        if (m && b >= 0) {
          clearTimeout(timer);
          const out = buf.slice(buf.indexOf('\n', b) + 1, m.index).replace(/\r/g, '');
          resolve({ output: out, code: Number(m[1]) });
        }
      });
      sock.once('close', () => reject(new RuntimeError('console closed')));
      sock.write(`\necho "__Q""B_${id}"; ${command}; echo "__Q""E_${id} $?"\n`);
    });
  } finally {
    sock.destroy();
  }
}
