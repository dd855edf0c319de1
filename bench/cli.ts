// The CLI start-up section of `npm run bench`: how long `qnet --help` and `qnet status` (no labs) take as a user
// types them (a new node process each time), next to node itself and to the CLI as it was before it loaded each
// command's modules on demand (built here from git, in a temporary worktree removed at the end).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import type { Held } from './held.js';

/** The revision whose CLI loaded every module at start (the last one before it loaded them on demand). */
export const BEFORE_REV = '7081a9e';
const RUNS = 10;

/**
 * Wall times in ms of RUNS runs of argv, after one that warms the page cache, as a user's shell runs a command: one
 * bash loop forks and waits for each, timed with its $EPOCHREALTIME. Timed from here by spawnSync, each run would
 * also carry this process's fork, 3-8 ms more for node -e 0 and status than from bash, measured: a node process with
 * a heap of this bench's size forks slowly.
 */
function series(argv: string[], cwd: string, env: NodeJS.ProcessEnv): number[] {
  // $EPOCHREALTIME's decimal separator is the locale's: taken out, it is whole microseconds.
  const loop = `for i in $(seq ${RUNS + 1}); do s=$EPOCHREALTIME; "$@" >/dev/null 2>&1; c=$?; e=$EPOCHREALTIME; echo "\${s/[.,]/} \${e/[.,]/} $c"; done`;
  const r = spawnSync('bash', ['-c', loop, 'bash', ...argv], { cwd, env, encoding: 'utf8' });
  if (r.error) throw r.error;
  const runs = r.stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number, number]);
  if (r.status !== 0 || runs.length !== RUNS + 1 || runs.some((x) => x.length !== 3 || !x.every(Number.isFinite))) throw new Error(`timing ${argv.join(' ')} failed: ${r.stdout}${r.stderr}`);
  const bad = runs.find(([, , code]) => code !== 0 && code !== 1);
  if (bad) throw new Error(`${argv.join(' ')} exited ${bad[2]}`);
  return runs.slice(1).map(([s, e]) => (e - s) / 1000);
}

/**
 * Builds qnet at revision `rev` in a temporary git worktree (sharing this checkout's node_modules), or says why it
 * cannot (no git history, as in a tarball). The caller removes it with the returned function (or `held`, when the
 * bench is interrupted before).
 */
export function buildRev(root: string, rev: string, log: (s: string) => void, held?: Held): { dir: string; remove: () => void } | { why: string } {
  const has = spawnSync('git', ['-C', root, 'cat-file', '-e', `${rev}^{commit}`]);
  if (has.status !== 0) return { why: `revision ${rev} is not in this checkout's git history` };
  const dir = mkdtempSync('/tmp/qnet-bench-before-');
  const remove = () => {
    spawnSync('git', ['-C', root, 'worktree', 'remove', '--force', dir]);
    rmSync(dir, { recursive: true, force: true });
    spawnSync('git', ['-C', root, 'worktree', 'prune']);
    held?.drop(`worktree ${dir}`);
  };
  held?.add(`worktree ${dir}`, remove);
  try {
    rmSync(dir, { recursive: true, force: true });
    const add = spawnSync('git', ['-C', root, 'worktree', 'add', '--detach', dir, rev], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(add.stderr);
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
    if (tsc.status !== 0 || !existsSync(path.join(dir, 'dist', 'src', 'cli', 'main.js'))) throw new Error(tsc.stdout + tsc.stderr);
    log(`bench: built qnet ${rev} in ${dir}`);
    return { dir, remove };
  } catch (e) {
    remove();
    return { why: `building ${rev} failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * Markdown rows: what, median (min–max) of RUNS runs, for node, and for each command now and before; first in an
 * environment without NODE_EXTRA_CA_CERTS (a shell's as Debian sets it up), then, when the bench's own environment
 * sets it, in that one too: node 20 then reads and parses the named certificate bundle at start, whatever it runs.
 */
export async function cliStartup(root: string, o: { log: (s: string) => void; cell: (xs: number[]) => string; held?: Held }): Promise<{ rows: string[]; note: string }> {
  const qnet = path.join(root, 'bin', 'qnet.js');
  const plain = { ...process.env };
  delete plain.NODE_EXTRA_CA_CERTS;
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  const envs: Array<[string, NodeJS.ProcessEnv]> = [['', plain], ...(extra ? [[`, NODE_EXTRA_CA_CERTS=${extra}`, process.env] as [string, NodeJS.ProcessEnv]] : [])];
  const rows: string[] = [];
  const before = buildRev(root, BEFORE_REV, o.log, o.held);
  try {
    for (const [label, env] of envs) {
      rows.push(`| \`node -e 0\` (node itself, the floor${label}) | ${o.cell(series([process.execPath, '-e', '0'], root, env))} | |`);
      for (const [what, args] of [['qnet --help', ['--help']], ['qnet status', ['status']]] as const) {
        const now = series([process.execPath, qnet, ...args], root, env);
        const then = 'dir' in before ? series([process.execPath, path.join(before.dir, 'bin', 'qnet.js'), ...args], root, env) : undefined;
        rows.push(`| \`${what}\`${what.endsWith('status') ? ' (no labs)' : ''}${label} | ${o.cell(now)} | ${then ? o.cell(then) : '-'} |`);
      }
    }
  } finally {
    if ('remove' in before) before.remove();
  }
  const notes = [
    ...(extra ? [`This machine's environment sets NODE_EXTRA_CA_CERTS (to ${extra}): node 20 reads and parses that bundle when it starts, whatever it runs, so the last three rows are what a user with that variable gets; the first three, without it, what a user of a shell as Debian sets it up gets.`] : []),
    ...('why' in before ? [`The CLI before could not be measured: ${before.why}.`] : []),
  ];
  return { rows, note: notes.join(' ') };
}
