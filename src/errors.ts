// Error classes that decide how the CLI reports a failure and which exit code it uses.

/** One problem found in user input, located by a dotted path such as `nodes.deb2.nics[0].ip`. */
export interface InputIssue {
  path: string;
  message: string;
  /** Where in the topology file it is (1-based), when the topology came from one. */
  line?: number;
  column?: number;
}

/** Bad input from the user: shown as is, exit code 2, nothing on the host was changed. */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly issues: InputIssue[] = [],
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A host command that failed: keeps argv, exit code, signal and stderr for the message. */
export class HostCommandError extends Error {
  readonly exitCode = 1;
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly signal: string | null,
    readonly stderr: string,
    readonly input?: string,
  ) {
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    const tail = stderr.trim().split('\n').slice(-5).join('\n  ');
    super(`${argv.join(' ')} failed (${how})${tail ? `:\n  ${tail}` : ''}`);
    this.name = 'HostCommandError';
  }
}

/** A runtime failure that is not the user's input: exit code 1 with a message saying what to do. */
export class RuntimeError extends Error {
  readonly exitCode = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeError';
  }
}

/** A bug in qnet itself. */
export class InternalError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

/** The exit code that a thrown value maps to (0 ok, 1 runtime failure, 2 bad input). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return 2;
  return 1;
}
