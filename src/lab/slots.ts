// How many guests boot at once. A boot under TCG keeps one core busy for seconds; a boot storm far beyond the
// cores makes every guest slower (they fight for caches and the scheduler) and the last one later. A window of
// booting guests, refilled as soon as one is ready, keeps the cores busy without that.
import os from 'node:os';

/** The default number of guests booting at once: one more than the cores (the extra one fills the gaps a boot leaves). */
export function defaultBootWindow(): number {
  return os.cpus().length + 1;
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
