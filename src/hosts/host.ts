// Where a node runs, behind one small interface: this machine, or one reached over SSH. Either way qnet's side on
// the host is `qnet agent`, spoken to in JSON lines (protocol.ts) over the process's stdin and stdout; over SSH that
// is the channel of one `ssh -o BatchMode=yes HOST qnet agent` per request (the user's keys and ssh config apply).
import { spawn } from 'node:child_process';
import { RuntimeError, UserError } from '../errors.js';
import { sshDestination } from '../topology/ssh-target.js';
import type { ResolvedHost } from '../topology/model.js';
import { encode, parseEvent, ProtocolError, type AgentEvent, type AgentRequest } from './protocol.js';

/** A host of a lab: asked one request at a time, its progress passed to `onEvent` as it comes. */
export interface Host {
  readonly name: string;
  /** How it is reached, for messages: "this machine" or user@host. */
  readonly where: string;
  /** With `signal`: once aborted, the agent's stdin is closed, and it undoes what it was doing before it answers. */
  call(req: AgentRequest, onEvent?: (e: AgentEvent) => void, timeoutMs?: number, signal?: AbortSignal): Promise<unknown>;
}

/** The host could not be reached, or its qnet could not be run: nothing was asked of it. */
export class HostUnreachable extends RuntimeError {
  constructor(readonly host: string, message: string) {
    super(message);
    this.name = 'HostUnreachable';
  }
}

/** A request the agent refused or failed: its message and exit code (2: bad input, 1: a failure on the host). */
export class AgentFailed extends Error {
  constructor(readonly host: string, message: string, readonly exitCode: number) {
    super(message);
    this.name = 'AgentFailed';
  }
}

/**
 * How qnet is run on a host: `QNET_HOST_QNET_<NAME>` (the host's name upper-cased, - as _), else `QNET_HOST_QNET`,
 * else `qnet` on its PATH. Words split on blanks (`node /opt/qnet/bin/qnet.js`).
 */
export function remoteQnet(host: string, env: Record<string, string | undefined> = process.env): string[] {
  const v = env[`QNET_HOST_QNET_${host.toUpperCase().replace(/-/g, '_')}`] ?? env.QNET_HOST_QNET ?? 'qnet';
  const words = v.trim().split(/\s+/).filter(Boolean);
  if (!words.length) throw new UserError(`QNET_HOST_QNET: empty; expected how qnet runs on host ${host}, like "node /opt/qnet/bin/qnet.js"`);
  return words;
}

/** The argv that runs `qnet agent` on a host: ssh with BatchMode (and QNET_SSH_OPTIONS' words), or qnet here. */
export function agentArgv(h: ResolvedHost, env: Record<string, string | undefined> = process.env, self: string[] = [process.execPath, process.argv[1] ?? 'qnet']): string[] {
  if (h.ssh.kind === 'local') return [...self, 'agent'];
  const extra = (env.QNET_SSH_OPTIONS ?? '').trim().split(/\s+/).filter(Boolean);
  return [
    'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3', ...extra,
    ...(h.ssh.port ? ['-p', String(h.ssh.port)] : []),
    h.ssh.user ? `${h.ssh.user}@${h.ssh.host}` : h.ssh.host,
    '--', ...remoteQnet(h.name, env), 'agent',
  ];
}

/** A host of the lab, reached as its `ssh` says. */
export function hostOf(h: ResolvedHost): Host {
  const where = h.ssh.kind === 'local' ? 'this machine' : sshDestination(h.ssh);
  return {
    name: h.name,
    where,
    call: (req, onEvent, timeoutMs, signal) => callAgent(h.name, where, agentArgv(h), req, onEvent, timeoutMs, signal),
  };
}

// Runs one agent, sends the request and keeps its stdin open until the answer (the agent undoes what it was doing
// when its stdin ends early: the driver went away).
function callAgent(name: string, where: string, argv: string[], req: AgentRequest, onEvent: ((e: AgentEvent) => void) | undefined, timeoutMs = 0, signal?: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let answer: { ok: true; result: unknown } | { ok: false; error: Error } | undefined;
    const timer = timeoutMs ? setTimeout(() => child.kill('SIGTERM'), timeoutMs) : undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        let e: AgentEvent;
        try {
          e = parseEvent(line);
        } catch (err) {
          answer ??= { ok: false, error: new HostUnreachable(name, `hosts.${name} (${where}): qnet there answered something else than the agent protocol (${(err as ProtocolError).message})`) };
          continue;
        }
        if (e.event === 'result') {
          answer ??= { ok: true, result: e.result };
          child.stdin.end();
        } else if (e.event === 'error') {
          answer ??= { ok: false, error: new AgentFailed(name, e.message, e.exitCode) };
          child.stdin.end();
        } else onEvent?.(e);
      }
    });
    // What qnet there says on stderr (warnings) is passed on, each line under the host's name.
    let errLine = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      errLine += d;
      let i: number;
      while ((i = errLine.indexOf('\n')) >= 0) {
        const l = errLine.slice(0, i);
        errLine = errLine.slice(i + 1);
        if (l.trim() && argv[0] !== 'ssh') process.stderr.write(`${name}: ${l}\n`);
        else if (l.trim() && answer === undefined && !/^(ssh|Warning|Permanently)/.test(l)) process.stderr.write(`${name}: ${l}\n`);
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new HostUnreachable(name, `hosts.${name} (${where}): ${argv[0]} could not run: ${e.message}`));
    });
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      clearTimeout(timer);
      if (answer?.ok) return resolve(answer.result);
      if (answer) return reject(answer.error);
      const tail = stderr.trim().split('\n').filter(Boolean).slice(-2).join('; ');
      const ssh = argv[0] === 'ssh';
      reject(
        new HostUnreachable(
          name,
          ssh && code === 255
            ? `hosts.${name} (${where}) cannot be reached over SSH (${tail || 'ssh exit 255'}): check \`ssh ${where}\` works without a password (BatchMode), and that its sshd runs`
            : `hosts.${name} (${where}): \`${argv.slice(ssh ? argv.indexOf('--') + 1 : 0).join(' ')}\` gave no answer (exit ${code}${tail ? `: ${tail}` : ''}): is qnet installed there (or QNET_HOST_QNET set to how it runs)?`,
        ),
      );
    });
    child.stdin.write(encode(req));
    if (signal?.aborted) child.stdin.end();
    else signal?.addEventListener('abort', () => child.stdin.end(), { once: true });
  });
}
