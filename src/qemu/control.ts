// The guest control channel (a virtio-serial port): the guest says READY/ERROR, the host says poweroff.
import net from 'node:net';
import { RuntimeError } from '../errors.js';
import { connectUnix } from './unix.js';

/** Connects to a guest's control socket. */
export function connectControl(path: string, timeoutMs = 5000): Promise<net.Socket> {
  return connectUnix(path, timeoutMs, 'control socket');
}

/**
 * Waits for the guest's first status line on an open control connection: resolves with the READY line,
 * rejects on ERROR, on the connection closing (the guest died) or after `timeoutMs`.
 */
export function waitReady(socket: net.Socket, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.startsWith('READY')) return done(null, line);
        if (line.startsWith('ERROR')) return done(new RuntimeError(`${what}: the guest reported ${line}`));
      }
    };
    const onClose = () => done(new RuntimeError(`${what}: the guest went away before it was ready (see its console.log)`));
    const timer = setTimeout(
      () => done(new RuntimeError(`${what}: not ready after ${Math.round(timeoutMs / 1000)} s (see its console.log)`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('close', onClose);
    // Lines that arrived before this wait (a saved guest's socket is paused after its SNAPSHOT) come now.
    socket.resume();
  });
}
