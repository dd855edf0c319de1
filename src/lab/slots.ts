// How many guests boot at once. A boot under TCG keeps one core busy for seconds; a boot storm far beyond the
// cores makes every guest slower (they fight for caches and the scheduler) and the last one later. A window of
// booting guests, refilled as soon as one is ready, keeps the cores busy without that.
import os from 'node:os';

/** The default number of guests booting at once: one more than the cores (the extra one fills the gaps a boot leaves). */
export function defaultBootWindow(): number {
  return os.cpus().length + 1;
}

/**
 * The default number of image nodes restored at once: one fewer than the cores, at least one. A Debian node's resume
 * costs about 1.5 s of CPU to READY and about as much again just after it (its services catching up): a resume with
 * a core to itself is ready in 1.3-2.0 s, while the tail of the one before takes the other core. Measured on 2 cores,
 * 10 nodes restored, 3 runs of each taken in turn (2026-12-07): one at a time, each node 1.3-2.0 s and the lab
 * 17.5-17.8 s; 2 at once, each 1.4-4.0 s, the lab 13.9-17.7 s; 3 at once (the boot window), each 2.2-6.6 s, the lab
 * 14.9-17.2 s.
 */
export function defaultRestoreWindow(cores = os.cpus().length): number {
  return Math.max(1, cores - 1);
}

/**
 * Which window a guest's start takes a slot of until it is ready. A boot takes one of the boot window. A restored
 * image node takes one of the restore window (see defaultRestoreWindow). A restored built-in guest takes none: it is
 * ready in about 0.5 s of CPU, and a window of 4 for them measured no gain (100 guests 41.0 against 43.1 s).
 */
export function windowOf(o: { restoring: boolean; image: boolean }): 'boot' | 'restore' | undefined {
  if (!o.restoring) return 'boot';
  return o.image ? 'restore' : undefined;
}

/** A counting limit: `acquire` waits while `limit` holders hold a slot; 0 or less means no limit. */
export class Slots {
  private held = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Takes a slot, waiting for one to be released if all are held. */
  async acquire(): Promise<void> {
    if (this.limit <= 0 || this.held < this.limit) {
      this.held++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Gives a slot back (to the longest waiter, if any). */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held = Math.max(0, this.held - 1);
  }

  /** Whether an `acquire` now would wait. */
  get full(): boolean {
    return this.limit > 0 && this.held >= this.limit;
  }

  /** Slots held now. */
  get inUse(): number {
    return this.held;
  }
}
