// What `npm run bench` holds on the host while it measures (labs up, namespaces, temporary directories, git
// worktrees, the private libvirt, CLI processes under way), each with its undo: on Ctrl-C or SIGTERM the CLI
// processes are stopped first (a `qnet up` rolls itself back), then the undos run in reverse before the bench exits.
import type { ChildProcess } from 'node:child_process';
import { RealRunner } from '../src/host/run.js';
import { down } from '../src/lab/down.js';

const run = new RealRunner();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The bench's undo list, with the signal handlers that run it. Work under way in this process (a Debian image
 * build, a library `up()`) is waited for first: it stops with the same signal and undoes its own part.
 */
export class Held {
  private undo = new Map<string, () => Promise<void> | void>();
  private children = new Set<ChildProcess>();
  private pending = new Set<Promise<unknown>>();
  /** Set once a signal came: the sections' own failure paths then leave the exit to the undos. */
  stopping = false;
  private handler = (sig: NodeJS.Signals) => void this.interrupt(sig);

  constructor(private log: (s: string) => void) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** Registers what to do if the bench is interrupted before `drop(key)`. */
  add(key: string, fn: () => Promise<void> | void): void {
    this.undo.set(key, fn);
  }

  /** Forgets an undo: what it would remove is gone already. */
  drop(key: string): void {
    this.undo.delete(key);
  }

  /** A CLI process under way: stopped (SIGTERM, then waited for) before the undos run; one started after the
   * signal (by a section's own failure path) is stopped at once. */
  child(c: ChildProcess): void {
    if (c.exitCode !== null || c.signalCode !== null) return;
    this.children.add(c);
    c.once('exit', () => this.children.delete(c));
    if (this.stopping) c.kill('SIGTERM');
  }

  /** Work under way in this process (an image build, a library `up()`): waited for before the undos run. */
  async building<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    try {
      return await p;
    } finally {
      this.pending.delete(p);
    }
  }

  private async interrupt(sig: NodeJS.Signals): Promise<void> {
    if (this.stopping) {
      // A second signal: the undos are taking too long for whoever waits; stop now and say so.
      this.log(`bench: ${sig} again: exiting before the undos finished (${[...this.undo.keys()].join(', ') || 'none left'})`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    this.stopping = true;
    this.log(`bench: ${sig}: removing what the bench made (${sig} again exits at once)`);
    // A Ctrl-C at the terminal reaches the CLI processes too; a SIGTERM to the bench alone does not. A `qnet up`
    // rolls back in seconds; one that has not exited after 60 s is killed.
    await Promise.all(
      [...this.children].map((c) => {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        const kill = setTimeout(() => c.kill('SIGKILL'), 60_000);
        return gone.finally(() => clearTimeout(kill));
      }),
    );
    await Promise.allSettled([...this.pending]);
    for (const [key, fn] of [...this.undo].reverse()) {
      try {
        await fn();
      } catch (e) {
        this.log(`bench: removing ${key} failed: ${(e as Error).message}`);
      }
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  }

  /** Removes the signal handlers (the bench is over). */
  close(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

/**
 * A lab removed at once (no grace: nothing is measured any more). Twice: an `up` interrupted mid-way may have
 * started a guest after the first pass looked.
 */
export async function forceDown(lab: string): Promise<void> {
  // The first pass may meet what a rollback under way removes at the same moment: the second one is what counts.
  await down(lab, { runner: run, graceMs: 0 }).catch(() => {});
  await sleep(500);
  await down(lab, { runner: run, graceMs: 0 });
}
