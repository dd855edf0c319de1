// The layouts section of `npm run bench` (issue 33), its pure half: what the guests' ping printed turned into round
// trips, the targets judged, and the Markdown written to BENCHMARKS.md. The measuring is bench/ovn.ts.

/** What one layout measured, or why it measured nothing. */
export interface LayoutResult {
  /** The column's heading. */
  label: string;
  /** Set when the layout was not measured: why (the column says so in each row). */
  notMeasured?: string;
  /** Round trips g0 → g1 in ms, one per echo (the first echo left out). */
  rttMs?: number[];
  /** TCP throughput in Mbit/s, what the receiver got: g0 → g1 and g1 → g0, one per repetition. */
  mbitOut?: number[];
  mbitBack?: number[];
  /** 20 guests: `qnet up` until every guest answers ping, one per repetition (restored from the saved state). */
  up20Ms?: number[];
  /** How many of the 20 guests were restored, in each repetition (all, when the saved state was used). */
  restored20?: number[];
  down20Ms?: number[];
  /** Set when the 20-guest lab could not be made in this layout: why (its rows say so; the rest is measured). */
  up20NotMeasured?: string;
  /** A port bound: add-port to `ovn-installed` in OVS, and to the northbound `up=true`, in ms. */
  bindInstalledMs?: number[];
  bindUpMs?: number[];
  /** Where the ports of the bind rows were bound, when not on the only host. */
  bindWhere?: string;
  /** RSS of the OVS and OVN daemons with the 20-guest lab up: host → daemon → MiB. */
  rss?: Record<string, Record<string, number>>;
  /** How many guests were up when `rss` was sampled (the two-guest lab's, when the 20-guest one was not made). */
  rssGuests?: number;
}

/** The whole section: one result per layout, in column order, and how it was run. */
export interface LayoutsSection {
  results: LayoutResult[];
  /** `qnet host setup` of each simulated host, in ms (the central first). */
  setupMs: Array<{ host: string; ms: number }>;
  secs: number;
  reps: number;
  pings: number;
  guests: number;
  /** Wall time of the whole section, in ms. */
  sectionMs: number;
}

/** The daemons whose memory is shown, in the order of the rows (the central's three ovsdb-servers by database). */
export const DAEMON_ROWS = ['ovsdb-server (Open_vSwitch)', 'ovs-vswitchd', 'ovn-controller', 'ovsdb-server (OVN_Northbound)', 'ovsdb-server (OVN_Southbound)', 'ovn-northd'] as const;

/** The round trips busybox's or iputils' ping printed (`time=0.512 ms`), in order. */
export function pingRtts(text: string): number[] {
  return [...text.matchAll(/\btime=([\d.]+) ?ms\b/g)].map((m) => Number(m[1]));
}

/** Which row of DAEMON_ROWS a daemon is, from its process name and command line (undefined: not one of them). */
export function daemonRow(comm: string, cmdline: string): (typeof DAEMON_ROWS)[number] | undefined {
  if (comm === 'ovsdb-server') {
    if (/ovnnb_db|OVN_Northbound/.test(cmdline)) return 'ovsdb-server (OVN_Northbound)';
    if (/ovnsb_db|OVN_Southbound/.test(cmdline)) return 'ovsdb-server (OVN_Southbound)';
    return 'ovsdb-server (Open_vSwitch)';
  }
  return (DAEMON_ROWS as readonly string[]).includes(comm) ? (comm as (typeof DAEMON_ROWS)[number]) : undefined;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`);
const range = (xs: number[], f: (x: number) => string) => (xs.length > 1 ? `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : f(xs[0]!));
const mbits = (xs: number[]) => (xs.length > 1 ? `${median(xs).toFixed(0)} Mbit/s (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})` : `${xs[0]!.toFixed(0)} Mbit/s`);

/**
 * The targets of issue 33, judged on what was measured: throughput between two hosts at least half of one host's
 * OVN path (the lower of the two directions, medians); 20 guests over two hosts up within 1.5× of one host; a lab
 * with no `hosts:` as fast as before issue 33 (20 guests up, medians, within `tolerance`, the spread of repeated
 * runs on this machine).
 */
export function targets(cols: LayoutResult[], tolerance = 0.1): { throughput: string; up: string; noHosts: string } {
  const byLabel = (re: RegExp) => cols.find((r) => re.test(r.label));
  const [before, now, one, two] = [byLabel(/before/), byLabel(/^bridges \(default\)/), byLabel(/OVN, one host/), byLabel(/OVN, two hosts/)];
  const missing = (...rs: Array<LayoutResult | undefined>) => {
    const r = rs.find((x) => !x || x.notMeasured);
    return r === undefined ? undefined : `not judged: ${r?.label ?? 'a column'} not measured`;
  };
  const tp = (r: LayoutResult) => Math.min(median(r.mbitOut!), median(r.mbitBack!));
  const up = (r: LayoutResult) => median(r.up20Ms!);
  // The 20-guest rows of a layout that could not make that lab.
  const missingUp = (...rs: Array<LayoutResult | undefined>) => missing(...rs) ?? rs.map((r) => r!.up20NotMeasured && `not judged: ${r!.label} with ${r!.up20Ms ? 'some' : 'no'} 20-guest lab`).find(Boolean);
  let throughput = missing(one, two);
  if (!throughput) {
    const ratio = tp(two!) / tp(one!);
    throughput = `${ratio >= 0.5 ? 'met' : 'not met'}: ${ratio.toFixed(2)} of one host (at least 0.5)`;
  }
  let upT = missingUp(one, two);
  if (!upT) {
    const upRatio = up(two!) / up(one!);
    upT = `${upRatio <= 1.5 ? 'met' : 'not met'}: ${upRatio.toFixed(2)}× one host (at most 1.5×)`;
  }
  let noHosts = missingUp(before, now);
  if (!noHosts) {
    const r = up(now!) / up(before!);
    const d = median(now!.down20Ms!) / median(before!.down20Ms!);
    const within = (x: number) => Math.abs(x - 1) <= tolerance;
    noHosts = `${within(r) && within(d) ? 'met' : 'not met'}: up ${r.toFixed(2)}×, down ${d.toFixed(2)}× before (each within ±${(tolerance * 100).toFixed(0)} %)`;
  }
  return { throughput, up: upT!, noHosts };
}

/** The section's Markdown: the comparison table, the memory table, the targets and how it was measured. */
export function layoutsMarkdown(s: LayoutsSection, opts: { when?: string; machine: string }): string {
  const cols = s.results;
  const cell = (r: LayoutResult, f: (r: LayoutResult) => string | undefined) => (r.notMeasured ? 'not measured (below)' : (f(r) ?? '—'));
  const row = (what: string, f: (r: LayoutResult) => string | undefined, target = '') => `| ${what} | ${cols.map((r) => cell(r, f)).join(' | ')} | ${target} |`;
  const t = targets(cols);
  const restored = (r: LayoutResult) => (r.restored20?.length && r.restored20.every(Number.isFinite) ? ` (restored ${[...new Set(r.restored20)].join('/')} of ${s.guests})` : '');
  const table = [
    `| | ${cols.map((r) => r.label).join(' | ')} | target (issue 33) |`,
    `| --- | ${cols.map(() => '---').join(' | ')} | --- |`,
    row(`ping RTT g0 → g1, median of ${s.pings} (min–max)`, (r) => r.rttMs && range(r.rttMs, fmtMs)),
    row(`TCP g0 → g1, iperf3 ${s.secs} s${s.reps > 1 ? `, median of ${s.reps}` : ''}`, (r) => r.mbitOut && mbits(r.mbitOut), `two hosts at least ½ of one host's OVN: ${t.throughput}`),
    row(`TCP g1 → g0, iperf3 ${s.secs} s${s.reps > 1 ? `, median of ${s.reps}` : ''}`, (r) => r.mbitBack && mbits(r.mbitBack)),
    row(`${s.guests} guests: \`qnet up\` → every guest answers ping${s.reps > 1 ? `, median of ${s.reps}` : ''}`, (r) => (r.up20NotMeasured ? 'not measured (below)' : r.up20Ms && `${range(r.up20Ms, fmtMs)}${restored(r)}`), `two hosts within 1.5× of one host: ${t.up}; bridges as fast as before issue 33: ${t.noHosts}`),
    row(`${s.guests} guests: \`qnet down\``, (r) => (r.up20NotMeasured ? 'not measured (below)' : r.down20Ms && range(r.down20Ms, fmtMs))),
    row('a port bound: `add-port` to br-int → `ovn-installed` (OVS)', (r) => (r.bindInstalledMs ? `${range(r.bindInstalledMs, fmtMs)}${r.bindWhere ? ` ${r.bindWhere}` : ''}` : '—')),
    row('a port bound: `add-port` to br-int → northbound `up=true`', (r) => (r.bindUpMs ? range(r.bindUpMs, fmtMs) : '—')),
  ];
  const withRss = cols.filter((r) => !r.notMeasured && r.rss && Object.keys(r.rss).length);
  const memCols = cols.filter((r) => r.label.startsWith('OVN'));
  const fewer = (r: LayoutResult) => (r.rssGuests !== undefined && r.rssGuests !== s.guests ? ` (${r.rssGuests} guests up)` : '');
  const memCell = (r: LayoutResult, d: string) => {
    if (r.notMeasured) return 'not measured (below)';
    const hosts = Object.entries(r.rss ?? {});
    const vals = hosts.map(([h, m]) => (m[d] !== undefined ? `${hosts.length > 1 ? `${h} ` : ''}${m[d]!.toFixed(1)} MiB` : hosts.length > 1 ? `${h} —` : '—'));
    return (vals.join(', ') || '—') + fewer(r);
  };
  const mem = [
    `| daemon (RSS, ${s.guests}-guest lab up) | ${memCols.map((r) => r.label).join(' | ')} |`,
    `| --- | ${memCols.map(() => '---').join(' | ')} |`,
    ...DAEMON_ROWS.map((d) => `| ${d} | ${memCols.map((r) => memCell(r, d)).join(' | ')} |`),
    `| all of them, per host | ${memCols.map((r) => (r.notMeasured ? 'not measured (below)' : Object.entries(r.rss ?? {}).map(([h, m]) => `${Object.keys(r.rss!).length > 1 ? `${h} ` : ''}${Object.values(m).reduce((a, b) => a + b, 0).toFixed(1)} MiB`).join(', ') + fewer(r) || '—')).join(' | ')} |`,
  ];
  const setup = s.setupMs.map((x) => `${x.host} ${fmtMs(x.ms)}`).join(', ');
  return `## Layouts: bridges, OVN on one host, OVN on two hosts (issue 33)

Two built-in guests (g0 at 10.99.0.10, g1 at .11, virtio-net, 128 MiB), then ${s.guests} on one network, as a user
runs them: \`qnet up FILE\` with its defaults (guests restored from the saved state of their shape, which the
two-guest lab of the same layout saved first if it did not exist), \`qnet exec\`, \`qnet down\`. Each layout runs in
simulated hosts alike (\`test/e2e/ovn-hosts.ts\`: a network and mount namespace of its own with its own /run, OVS,
OVN and qnet directories, an underlay at MTU 1600). Bridges, the default fabric (Linux bridges in the lab namespace):
in a host that runs no OVS or OVN, as a machine that never ran \`qnet host setup\`, with this qnet and with the one
before issue 33; and, 20-guest rows only, in the OVN host a, where OVS and OVN run idle beside the lab. OVN:
\`fabric: ovn\` in host a, set up by \`qnet host setup --central\` (Open vSwitch's userspace datapath: this kernel has
no openvswitch module; ${setup}). Two hosts: a and b, driven over SSH from the underlay, guests alternating between
them (g0 on a, g1 on b), so every measured packet crosses the Geneve tunnel.
Ping: \`ping -c ${s.pings + 1} -i 0.2\` in g0, the first echo left out (ARP, or the first packet of a flow). TCP:
\`iperf3 -c\` in the sender, the server in the receiver, one stream, what the receiver got (on the userspace datapath
QEMU opens the taps without the virtio-net header, so the guests send no TSO segments and OVS moves every
1500-byte frame itself, where a bridge passes 64 KiB segments: likely most of the gap in that row, not measured apart). Up: from \`qnet up\`
until it returns and every guest answers a ping from the lab namespace, the layouts taken in turn in each of
${s.reps} round${s.reps > 1 ? 's' : ''}. A port bound: a tap added to \`br-int\` with the \`iface-id\` of a logical port made beforehand,
until OVS shows \`external_ids:ovn-installed\` (ovn-controller has installed its flows) and until the northbound DB
has the port \`up=true\`, timed by one shell in the host, five ports one after the other with the two-guest lab up.
Figures are from ${opts.machine}: a 2-core machine under TCG that other work shares, so they move by tens of
per cent from hour to hour; compare columns of the same run only.${opts.when ? ` Measured ${opts.when} UTC by \`npm run bench -- --only layouts\` (the section took ${(s.sectionMs / 60000).toFixed(1)} minutes).` : ` The section took ${(s.sectionMs / 60000).toFixed(1)} minutes.`}

${table.join('\n')}
${cols.filter((r) => r.notMeasured).map((r) => `\nNot measured: ${r.label}: ${r.notMeasured}.`).join('')}${cols.filter((r) => r.up20NotMeasured).map((r) => `\nNot measured: ${r.label}, ${s.guests} guests: ${r.up20NotMeasured}.`).join('')}

${withRss.length || memCols.length ? `${mem.join('\n')}\n\n` : ''}A lab with no \`hosts:\` must be exactly as fast as before issue 33. Checked two ways: the first two columns are the
same measurement with the CLI of the last revision before labs on OVN (built from git in a temporary worktree) and
with this one, in the same host, taken in turn in this run (the guest image is the same, so are the saved states);
and the bench's other sections, which measure bridge labs, are untouched by this one (it only adds this section,
after them). On a machine that is also an OVN host, \`down\` of any lab asks OVS and the northbound DB for what of
the lab is left there (the third column against the second).

`;
}
