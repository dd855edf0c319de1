// Running host commands without a shell: a real runner and a recording one for unit tests.
import { spawn } from 'node:child_process';
import { HostCommandError } from '../errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs argv[0] with the rest as arguments (never through a shell). */
export interface CommandRunner {
  run(argv: string[], options?: RunOptions): Promise<RunResult>;
}

/** Spawns real processes; SIGTERM on timeout, then SIGKILL after a grace period. */
export class RealRunner implements CommandRunner {
  run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: options.env ?? process.env,
        cwd: options.cwd,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      let killTimer: NodeJS.Timeout | undefined;
      const timer = options.timeoutMs
        ? setTimeout(() => {
            child.kill('SIGTERM');
            killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
          }, options.timeoutMs)
        : undefined;
      child.on('error', (err) => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        const e = err as NodeJS.ErrnoException;
        reject(new HostCommandError(argv, null, null, e.code === 'ENOENT' ? `${argv[0]}: not found (install it, or run \`qnet doctor\`)` : e.message));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        if ((code === 0 && !signal) || (options.allowFail && !signal)) resolve({ code: code ?? 1, stdout, stderr });
        else reject(new HostCommandError(argv, code, signal, stderr, options.input));
      });
      child.stdin.on('error', () => {}); // the child may exit before reading its input
      child.stdin.end(options.input ?? '');
    });
  }
}

/** Records every call and answers from a table (first matching prefix); for unit tests of code that plans commands. */
export class RecordingRunner implements CommandRunner {
  readonly calls: Array<{ argv: string[]; input?: string }> = [];
  constructor(private readonly answers: Array<{ prefix: string[]; result: Partial<RunResult> }> = []) {}
  async run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv, ...(options.input !== undefined ? { input: options.input } : {}) });
    const hit = this.answers.find((a) => a.prefix.every((p, i) => argv[i] === p));
    const result = { code: 0, stdout: '', stderr: '', ...(hit?.result ?? {}) };
    if (result.code !== 0 && !options.allowFail) throw new HostCommandError(argv, result.code, null, result.stderr);
    return result;
  }
}
