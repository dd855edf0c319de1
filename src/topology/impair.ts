// Link impairments of a NIC (pure): what the topology or `qnet impair` says (delay, jitter, loss, rate,
// duplicate, corrupt, and the direction, from the guest's side), checked and turned into numbers.
import { nicName, type ResolvedLab, type ResolvedNic } from './model.js';

/** A NIC's impairments, resolved: times in microseconds, rates in bits per second, shares in percent. */
export interface Impairment {
  delayUs?: number;
  jitterUs?: number;
  lossPct?: number;
  rateBps?: number;
  duplicatePct?: number;
  corruptPct?: number;
  /** egress: what the guest sends; ingress: what it receives; both. */
  direction: ImpairDirection;
}

export const IMPAIR_DIRECTIONS = ['egress', 'ingress', 'both'] as const;
export type ImpairDirection = (typeof IMPAIR_DIRECTIONS)[number];

const TIME = /^(\d+(?:\.\d+)?)(us|ms|s)$/;
const SHARE = /^(\d+(?:\.\d+)?)%$/;

/** Microseconds of "20ms", "500us", "1.5s"; undefined if it is not a time. */
export function parseTime(text: string): number | undefined {
  const m = TIME.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * { us: 1, ms: 1000, s: 1_000_000 }[m[2] as 'us' | 'ms' | 's']);
}

/** Percent of "1%", "0.5%"; undefined if it is not a share. */
export function parseShare(text: string): number | undefined {
  const m = SHARE.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

// tc's units, as tc reads them (letter case does not matter): bits per second, or bytes per second ("bps": 1mbps
// is 8mbit, as in tc), with SI (k, m, g, t: powers of 1000) or IEC (ki, mi, gi, ti: powers of 1024) prefixes.
const RATE = /^(\d+(?:\.\d+)?)(k|ki|m|mi|g|gi|t|ti)?(bit|bps)$/i;
const PREFIX: Record<string, number> = { '': 1, k: 1e3, ki: 2 ** 10, m: 1e6, mi: 2 ** 20, g: 1e9, gi: 2 ** 30, t: 1e12, ti: 2 ** 40 };

/** The rate units qnet (and tc) take, for messages. */
export const RATE_UNITS = 'bit, kbit, mbit, gbit (bits per second) or bps, kbps, mbps, gbps (bytes per second, as in tc: 1mbps is 8mbit)';

/** Bits per second of "10mbit", "512kbit", "1gbit", "2mbps" (16 Mbit/s: bytes, as in tc); undefined if it is not a rate. */
export function parseRate(text: string): number | undefined {
  const m = RATE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * PREFIX[(m[2] ?? '').toLowerCase()]! * (m[3]!.toLowerCase() === 'bps' ? 8 : 1));
}

/** The resolved impairment of a checked `impair` block; undefined when it impairs nothing. */
export function resolveImpairment(
  i: { delay?: string; jitter?: string; loss?: string; rate?: string; duplicate?: string; corrupt?: string; direction: ImpairDirection } | undefined,
): Impairment | undefined {
  if (!i) return undefined;
  const out: Impairment = { direction: i.direction };
  if (i.delay !== undefined) out.delayUs = parseTime(i.delay)!;
  if (i.jitter !== undefined) out.jitterUs = parseTime(i.jitter)!;
  if (i.loss !== undefined) out.lossPct = parseShare(i.loss)!;
  if (i.rate !== undefined) out.rateBps = parseRate(i.rate)!;
  if (i.duplicate !== undefined) out.duplicatePct = parseShare(i.duplicate)!;
  if (i.corrupt !== undefined) out.corruptPct = parseShare(i.corrupt)!;
  return Object.keys(out).length > 1 ? out : undefined;
}

/** True when the impairment needs netem (everything but a rate, which tbf does, and 100% loss, a FIFO of length 0). */
export function needsNetem(i: Impairment): boolean {
  if ((i.lossPct ?? 0) >= 100) return false;
  return [i.delayUs, i.jitterUs, i.lossPct, i.duplicatePct, i.corruptPct].some((v) => v !== undefined);
}

/** The NICs of a lab whose declared impairment needs netem, as "p eth0 (delay 20ms, egress)". */
export function netemNics(lab: ResolvedLab): string[] {
  return lab.nodes.flatMap((n) => n.nics.filter((c) => c.impair && needsNetem(c.impair)).map((c) => `${n.name} ${nicName(n, c)} (${describeImpairment(c.impair!)})`));
}

/** How an impairment reads ("delay 20ms ±5ms, loss 1%, rate 10mbit, egress"), for status and messages. */
export function describeImpairment(i: Impairment): string {
  const t = (us: number) => (us % 1000 ? `${us}us` : us % 1_000_000 ? `${us / 1000}ms` : `${us / 1_000_000}s`);
  const r = (b: number) => (b % 1e9 === 0 ? `${b / 1e9}gbit` : b % 1e6 === 0 ? `${b / 1e6}mbit` : b % 1e3 === 0 ? `${b / 1e3}kbit` : `${b}bit`);
  return [
    i.delayUs !== undefined ? `delay ${t(i.delayUs)}${i.jitterUs ? ` ±${t(i.jitterUs)}` : ''}` : '',
    i.lossPct !== undefined ? `loss ${i.lossPct}%` : '',
    i.duplicatePct !== undefined ? `duplicate ${i.duplicatePct}%` : '',
    i.corruptPct !== undefined ? `corrupt ${i.corruptPct}%` : '',
    i.rateBps !== undefined ? `rate ${r(i.rateBps)}` : '',
    i.direction,
  ]
    .filter(Boolean)
    .join(', ');
}

/** The impairment in force on a NIC of a running lab: as `qnet impair` last set it, else as the topology says. */
export function impairmentInForce(state: { impair?: Record<string, Record<string, Impairment | null>> }, node: string, nic: ResolvedNic): Impairment | undefined {
  const live = state.impair?.[node]?.[String(nic.index)];
  return live === undefined ? nic.impair : (live ?? undefined);
}
