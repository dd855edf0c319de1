// The guest control channel (a virtio-serial port): the guest says SNAPSHOT/READY/ERROR, the host says resume or
// poweroff.
import net from 'node:net';
import { RuntimeError } from '../errors.js';
import { connectUnix } from './unix.js';

/** Connects to a guest's control socket. */
export function connectControl(path: string, timeoutMs = 5000): Promise<net.Socket> {
  return connectUnix(path, timeoutMs, 'control socket');
}

/**
 * The guest's lines on an open control connection, read from the moment of connecting and kept: any number of
 * waits, started at any time, see every line (a line said before a wait began is not lost to it).
 */
export class ControlChannel {
  private readonly lines: string[] = [];
  private readonly listeners = new Set<() => void>();
  private buf = '';
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line) this.lines.push(line);
      }
      for (const l of [...this.listeners]) l();
    });
    socket.once('close', () => {
      this.ended = true;
      for (const l of [...this.listeners]) l();
    });
  }

  /** Connects to a guest's control socket and starts reading its lines. */
  static async connect(path: string, timeoutMs = 5000): Promise<ControlChannel> {
    return new ControlChannel(await connectControl(path, timeoutMs));
  }

  /** Sends one line to the guest. */
  send(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\n`);
  }

  /**
   * Resolves with the first line (already said or to come) that `pick` accepts; rejects when `fail` accepts a line
   * first, when the guest goes away, or after `timeoutMs`.
   */
  waitFor(pick: (line: string) => boolean, fail: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        for (const line of this.lines) {
          if (fail(line)) return done(new RuntimeError(`${what}: the guest reported ${line}`));
          if (pick(line)) return done(null, line);
        }
        if (this.ended) done(new RuntimeError(`${what}: the guest went away before it was ready (see its console.log)`));
      };
      const done = (err: Error | null, line?: string) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) reject(err);
        else resolve(line!);
      };
      timer = setTimeout(() => done(new RuntimeError(`${what}: not ready after ${Math.round(timeoutMs / 1000)} s (see its console.log)`)), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Resolves when the guest's end goes away (QEMU exited): every wait that is not about its lines races this. */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ended) return resolve();
      const l = () => {
        if (!this.ended) return;
        this.listeners.delete(l);
        resolve();
      };
      this.listeners.add(l);
    });
  }

  /** Closes the connection. */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Waits for the guest's READY: resolves with the line, rejects on ERROR, on the guest going away or after `timeoutMs`. */
export function waitReady(ch: ControlChannel, timeoutMs: number, what: string): Promise<string> {
  return ch.waitFor((l) => l.startsWith('READY'), (l) => l.startsWith('ERROR'), timeoutMs, what);
}
