// Reading iperf3's JSON report, for the bench's throughput rows.

/** Bits per second received, from `iperf3 -J` output; throws with iperf3's own error when there is one. */
export function iperfBps(json: string, what: string): number {
  let d: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    d = JSON.parse(json) as typeof d;
  } catch {
    throw new Error(`${what}: iperf3 printed no JSON: ${json.slice(0, 200)}`);
  }
  const bps = d.end?.sum_received?.bits_per_second;
  if (d.error || !bps) throw new Error(`${what}: iperf3: ${d.error ?? 'no result'}`);
  return bps;
}
