// The per-node commands on a lab over several hosts (link, impair, capture, console, ssh, stop, start, restart): the
// node's host holds it as a one-host lab of the same name, so the command is run there as typed, by qnet on that
// host (over `ssh`, as the agent is reached; a terminal for console and ssh), its output streamed back. A capture
// written to a file is written here: the host sends the pcap on its stdout.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { remoteQnet } from '../hosts/host.js';
import { hostsStatePath, readHostsState } from '../lab/hosts-state.js';
import { shellQuote } from '../render/shell.js';
import type { ResolvedHost } from '../topology/model.js';
import { isLabName } from '../topology/names.js';

/** The commands that act on one node (or one NIC) of a lab, forwarded to the node's host. */
export const NODE_COMMANDS = new Set(['link', 'impair', 'capture', 'console', 'ssh', 'stop', 'start', 'restart']);

/** The argv that runs `args` with qnet on a host: here for `ssh: local`, else over ssh (BatchMode; `tty` asks for a terminal). */
export function forwardArgv(h: ResolvedHost, args: string[], tty: boolean, env: Record<string, string | undefined> = process.env, self: string[] = [process.execPath, process.argv[1] ?? 'qnet']): string[] {
  if (h.ssh.kind === 'local') return [...self, ...args];
  const extra = (env.QNET_SSH_OPTIONS ?? '').trim().split(/\s+/).filter(Boolean);
  return [
    'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', ...extra, tty ? '-t' : '-T',
    ...(h.ssh.port ? ['-p', String(h.ssh.port)] : []),
    h.ssh.user ? `${h.ssh.user}@${h.ssh.host}` : h.ssh.host,
    // ssh hands the remote side one command line for its shell: every word quoted.
    '--', ...[...remoteQnet(h.name, env), ...args].map(shellQuote),
  ];
}

/**
 * A per-node command on a lab this machine drives over several hosts, run on the node's host: its exit code, or
 * undefined when the command is not one (the CLI goes on as usual).
 */
export async function hostsFront(argv: string[]): Promise<number | undefined> {
  const [command, lab, target] = argv;
  if (!command || !NODE_COMMANDS.has(command) || !lab || !isLabName(lab) || argv.includes('--help') || argv.includes('-h')) return undefined;
  if (!existsSync(hostsStatePath(lab))) return undefined;
  const state = await readHostsState(lab);
  if (!state) return undefined;
  const node = (target ?? '').split(':')[0]!;
  const host = state.lab.hosts?.find((h) => h.name === state.placement[node]);
  if (!host) {
    const net = state.lab.networks.find((n) => n.name === node);
    if (net && command === 'capture')
      throw new UserError(
        `network ${net.name} of lab ${lab} spans hosts ${(state.lab.hosts ?? []).map((h) => h.name).join(', ')}: a capture of the whole network across hosts is not made yet; capture a NIC on it (\`qnet capture ${lab} NODE:NIC\`; its NICs: ${
          state.lab.nodes.flatMap((n) => n.nics.filter((c) => c.network === net.name).map((c) => `${n.name}:${c.index}`)).join(', ') || 'none'
        })`,
      );
    throw new UserError(`"${target ?? ''}": lab ${lab} has no node of that name (nodes: ${state.lab.nodes.map((n) => n.name).join(', ')})`);
  }
  // A capture to a file: the host writes pcap to its stdout, and the file is written here.
  const args = [...argv];
  let file: string | undefined;
  const w = args.findIndex((a) => a === '-w' || a === '--write');
  if (command === 'capture' && w >= 0 && args[w + 1] !== undefined && args[w + 1] !== '-') {
    file = args[w + 1];
    args[w + 1] = '-';
  }
  const tty = (command === 'console' || command === 'ssh') && !!process.stdin.isTTY;
  const fwd = forwardArgv(host, args, tty);
  return new Promise((resolve, reject) => {
    const child = spawn(fwd[0]!, fwd.slice(1), { stdio: ['inherit', file ? 'pipe' : 'inherit', 'inherit'] });
    const out = file ? createWriteStream(file, { mode: 0o600 }) : undefined;
    if (out) child.stdout!.pipe(out);
    child.once('error', (e) => reject(new UserError(`hosts.${host.name}: ${fwd[0]} could not run: ${e.message}`)));
    // Ctrl-C reaches the remote command through the terminal or the channel closing; here it only waits for it.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    child.once('close', (code, signal) => {
      process.off('SIGINT', ignore);
      const done = () => resolve(code ?? (signal ? 130 : 1));
      if (out) out.end(done);
      else done();
    });
  });
}
