// How many guests boot at once. A boot under TCG keeps one core busy for seconds; a boot storm far beyond the
// cores makes every guest slower (they fight for caches and the scheduler) and the last one later. A window of
// booting guests, refilled as soon as one is ready, keeps the cores busy without that.
import os from 'node:os';

/** The default number of guests booting at once: one more than the cores (the extra one fills the gaps a boot leaves). */
export function defaultBootWindow(): number {
  return os.cpus().length + 1;
}

/**
 * Whether a guest's start takes a slot of the window until it is ready. A boot does. A restored built-in guest does
 * not: it is ready in about 0.5 s of CPU, and a window of 4 for them measured no gain (100 guests 41.0 against
 * 43.1 s). A restored image node does: a Debian node's resume costs about 2.2 s of CPU to READY and 1.5 s more just
 * after it, and 10 of them resuming at once on 2 cores each took 4.6-8.5 s of CPU instead (10 nodes up in
 * 29.8-43.8 s; in the window, 24.6-35.7 s, the two ways taken in turn, 2026-12-06).
 */
export function takesBootSlot(o: { restoring: boolean; image: boolean }): boolean {
  return !o.restoring || o.image;
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
