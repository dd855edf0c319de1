// Connecting to a guest's Unix sockets (QMP, control, agent) with a bounded wait.
import net from 'node:net';
import { RuntimeError } from '../errors.js';

/** Connects to a Unix socket; rejects with the system's error, or after `timeoutMs` naming `what`. */
export function connectUnix(path: string, timeoutMs: number, what: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    const t = setTimeout(() => {
      s.destroy();
      reject(new RuntimeError(`${what} ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
