// The problems found in a topology, and which of its values are unknown because an earlier stage refused them.
// Later stages run on what is left, so that one run reports every problem; a judgement made from an unknown value
// would be a consequence of an error already reported (a cascade), so it is dropped.
import type { InputIssue } from '../errors.js';
import { formatPath, isWithin, parsePath } from './paths.js';

/** A location in the topology: a formatted path (`nodes.deb1.nics[0]`) or its keys. */
export type PathLike = string | ReadonlyArray<PropertyKey>;

const text = (p: PathLike) => (typeof p === 'string' ? p : formatPath(p));

/** Problems found so far, and the values that an earlier problem made unknown. */
export class Findings {
  readonly issues: InputIssue[] = [];
  private readonly unknowns: string[] = [];

  constructor(unknown: Iterable<string> = []) {
    for (const p of unknown) this.unknowns.push(p);
  }

  /** True when the value at `path` is unknown: it, or what holds it, was refused. */
  unknown(path: PathLike): boolean {
    const p = text(path);
    return this.unknowns.some((u) => isWithin(p, u));
  }

  /** True when the value at `path` is unknown wholly or in part (something inside it was refused). */
  partly(path: PathLike): boolean {
    const p = text(path);
    return this.unknowns.some((u) => isWithin(p, u) || isWithin(u, p));
  }

  /** True when some unknown value's path (its keys) passes `test`. */
  someUnknown(test: (path: Array<string | number>) => boolean): boolean {
    return this.unknowns.some((u) => test(parsePath(u)));
  }

  /** Marks a value unknown: judgements that read it are dropped from now on. */
  forget(path: PathLike): void {
    this.unknowns.push(text(path));
  }

  /**
   * Reports a problem at `path`, judged from the values at `deps`; dropped when the place itself is unknown or any
   * value it was judged from is unknown in whole or in part (the problem would follow from one already reported).
   */
  add(path: PathLike, message: string, ...deps: PathLike[]): void {
    if (this.unknown(path) || deps.some((d) => this.partly(d))) return;
    const p = text(path);
    if (this.issues.some((i) => i.path === p && i.message === message)) return;
    this.issues.push({ path: p, message });
  }

  /** Reports a value that cannot be read (not an address, not a size): a problem, and unknown from now on. */
  refuse(path: PathLike, message: string, ...deps: PathLike[]): void {
    this.add(path, message, ...deps);
    this.forget(path);
  }
}
