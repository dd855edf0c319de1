// A small QMP client: JSON lines over the guest's monitor socket, command/response matched by id.
import net from 'node:net';
import { RuntimeError } from '../errors.js';
import { connectUnix } from './unix.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** A connected QMP session; `closed` settles when QEMU closes the socket (the guest process is gone or quit). */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  readonly events: Array<{ event: string; data?: unknown }> = [];
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      for (const p of this.pending.values()) p.reject(new RuntimeError('QMP connection closed'));
      this.pending.clear();
    });
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await connectUnix(path, timeoutMs, 'QMP socket');
    const client = new QmpClient(socket);
    await client.greeting(timeoutMs);
    await client.execute('qmp_capabilities');
    return client;
  }

  private greetingWaiter?: () => void;
  private greeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new RuntimeError('QMP greeting not received')), timeoutMs);
      this.greetingWaiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) this.greetingWaiter?.();
      else if ('event' in msg) {
        this.events.push({ event: String(msg.event), data: msg.data });
        for (const l of [...this.eventListeners]) l(String(msg.event), msg.data);
      }
      else if (typeof msg.id === 'string') {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if ('error' in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new RuntimeError(`QMP ${err.class ?? 'error'}: ${err.desc ?? 'unknown'}`));
        } else p.resolve(msg.return);
      }
    }
  }

  private readonly eventListeners = new Set<(event: string, data: unknown) => void>();

  /**
   * Resolves with the data of the first event `name` that `match` accepts (one already received on this
   * connection counts); rejects if the connection closes first or after `timeoutMs`.
   */
  waitEvent(name: string, timeoutMs: number, match: (data: unknown) => boolean = () => true): Promise<unknown> {
    const seen = this.events.find((e) => e.event === name && match(e.data));
    if (seen) return Promise.resolve(seen.data);
    return new Promise((resolve, reject) => {
      const done = (err: Error | null, data?: unknown) => {
        clearTimeout(timer);
        this.eventListeners.delete(on);
        if (err) reject(err);
        else resolve(data);
      };
      const on = (event: string, data: unknown) => event === name && match(data) && done(null, data);
      const timer = setTimeout(() => done(new RuntimeError(`QMP event ${name} not received within ${timeoutMs} ms`)), timeoutMs);
      this.eventListeners.add(on);
      void this.closed.then(() => done(new RuntimeError('QMP connection closed')));
    });
  }

  /** Runs one QMP command and returns its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const id = `q${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      if (this.socket.destroyed) return reject(new RuntimeError('QMP connection closed'));
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  /** Runs a human monitor command (such as `info network`) and returns its text. */
  hmp(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }
}
