// A QEMU guest agent client (JSON over the guest's agent console port): run commands inside a guest.
import net from 'node:net';
import { RuntimeError } from '../errors.js';

export interface ExecResult {
  code: number;
  signal?: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

/** A connected guest-agent session. */
export class AgentClient {
  private buffer = '';
  private waiters: Array<(msg: Record<string, unknown>) => void> = [];
  // Answers that arrived while nobody waited (several can come in one chunk): kept for the next wait.
  private unclaimed: Array<Record<string, unknown>> = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      // A delimited sync answer is preceded by 0xFF; strip it with everything else that is not JSON.
      this.buffer += chunk.replace(/\xff|\ufffd/g, '');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (!line) continue;
        try {
          const msg = JSON.parse(line) as Record<string, unknown>;
          const waiter = this.waiters.shift();
          if (waiter) waiter(msg);
          else this.unclaimed.push(msg);
        } catch {
          // a partial line from before the sync: ignore
        }
      }
    });
  }

  /** Connects and synchronizes with the agent (discarding anything left from an earlier session); gives up on `stop`. */
  static async connect(path: string, timeoutMs = 10000, stop?: AbortSignal): Promise<AgentClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new RuntimeError(`guest agent socket ${path}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    });
    const client = new AgentClient(socket);
    const deadline = Date.now() + timeoutMs;
    // The 0xFF flushes a half-written request from an earlier client; the agent answers it with a parse
    // error that is skipped here. The agent answers nothing until it runs, so the sync is re-sent each second.
    const sync = async (delimited: boolean): Promise<boolean> => {
      const id = Math.floor(Math.random() * 2 ** 31);
      const req = Buffer.from(JSON.stringify({ execute: delimited ? 'guest-sync-delimited' : 'guest-sync', arguments: { id } }) + '\n');
      socket.write(delimited ? Buffer.concat([Buffer.from([0xff]), req]) : req);
      const until = Math.min(deadline, Date.now() + 1000);
      while (Date.now() < until) {
        const msg = await client.next(Math.max(1, until - Date.now())).catch(() => null);
        if (msg && msg.return === id) return true;
      }
      return false;
    };
    while (Date.now() < deadline && !stop?.aborted) {
      if ((await sync(true)) && (await sync(false))) return client;
    }
    socket.destroy();
    if (stop?.aborted) throw new RuntimeError('the wait for the guest agent was given up');
    throw new RuntimeError(`the guest agent did not answer within ${timeoutMs} ms (is the guest up? see \`qnet status\`)`);
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (m: Record<string, unknown>) => {
        clearTimeout(t);
        resolve(m);
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new RuntimeError('guest agent: no answer'));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Runs one agent command and returns its `return` value. */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10000): Promise<T> {
    const p = this.next(timeoutMs);
    this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    const msg = await p;
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      throw new RuntimeError(`guest agent: ${e.desc ?? e.class ?? 'error'}`);
    }
    return msg.return as T;
  }

  /** Runs argv in the guest (PATH lookup), capturing stdout and stderr; kills it after `timeoutMs`. */
  async exec(argv: string[], opts: { timeoutMs?: number; input?: Buffer } = {}): Promise<ExecResult> {
    let started: { pid: number };
    try {
      started = await this.execute<{ pid: number }>('guest-exec', {
        path: argv[0],
        arg: argv.slice(1),
        'capture-output': true,
        ...(opts.input ? { 'input-data': opts.input.toString('base64') } : {}),
      });
    } catch (e) {
      const msg = (e as Error).message;
      // Like a shell: a command that cannot be found or run exits 127 with the reason on stderr.
      if (/No such file|not found|Failed to execute/i.test(msg))
        return { code: 127, stdout: Buffer.alloc(0), stderr: Buffer.from(`${argv[0]}: command not found\n`), timedOut: false };
      throw e;
    }
    const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
    let delay = 10;
    for (;;) {
      const st = await this.execute<{
        exited: boolean;
        exitcode?: number;
        signal?: number;
        'out-data'?: string;
        'err-data'?: string;
      }>('guest-exec-status', { pid: started.pid });
      if (st.exited) {
        return {
          code: st.exitcode ?? (st.signal !== undefined ? 128 + st.signal : 1),
          ...(st.signal !== undefined ? { signal: st.signal } : {}),
          stdout: Buffer.from(st['out-data'] ?? '', 'base64'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64'),
          timedOut: false,
        };
      }
      if (Date.now() > deadline) {
        await this.execute('guest-exec', { path: 'kill', arg: ['-KILL', String(started.pid)] }).catch(() => {});
        // Collect what it printed before it was killed.
        await new Promise((r) => setTimeout(r, 100));
        const st2 = await this.execute<{ 'out-data'?: string; 'err-data'?: string }>('guest-exec-status', { pid: started.pid }).catch(
          () => ({}) as { 'out-data'?: string; 'err-data'?: string },
        );
        return {
          code: 124,
          stdout: Buffer.from(st2['out-data'] ?? '', 'base64'),
          stderr: Buffer.from(st2['err-data'] ?? '', 'base64'),
          timedOut: true,
        };
      }
      // The agent reports completion only when asked: ask again soon, a little less often as time goes by.
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }

  /** Closes the session. */
  close(): void {
    this.socket.destroy();
  }
}
