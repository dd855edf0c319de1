// The shell scripts `qnet check` runs inside guests and in namespaces (pure text). Every value in them is an
// address qnet formatted or a port number, never user text.

/** The port qnet listens on in every endpoint for TCP probes (besides ports that declared checks name). */
export const CHECK_PORT = 47007;
/** Where a guest keeps the PIDs of the listeners `qnet check` started (removed by the stop script). */
const PIDS = '/run/qnet-check.pids';

// Debian images have python3 (cloud-init) and netcat-openbsd; the built-in guest has busybox's nc.
const PY_LISTENER =
  "import socket,select,sys\nss=[]\nfor p in sys.argv[1:]:\n s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n try:\n  s.bind(('',int(p)));s.listen(64);ss.append(s)\n except OSError:pass\nwhile ss:\n for s in select.select(ss,[],[])[0]:\n  c,_=s.accept();c.close()\n";

/** Starts TCP listeners on `ports` in a guest (each accepts and closes), their PIDs noted for the stop script. */
export function listenScript(ports: number[]): string {
  const list = ports.join(' ');
  return [
    `rm -f ${PIDS}`,
    'if command -v python3 >/dev/null 2>&1; then',
    `  python3 -c "$1" ${list} </dev/null >/dev/null 2>&1 & echo $! >> ${PIDS}`,
    'else',
    `  for p in ${list}; do nc -ll -p "$p" -e true </dev/null >/dev/null 2>&1 & echo $! >> ${PIDS}; done`,
    'fi',
    // Started is not listening: a probe sent right after `up` met a port not yet bound (a restored guest starts
    // a program slowly). Wait (at most 5 s a port) until each one listens on every address.
    `for p in ${list}; do h=$(printf '%04X' "$p"); n=0; while ! grep -q ":$h 00000000:0000 0A" /proc/net/tcp 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done; done`,
    'echo started',
  ].join('\n');
}

/** The argument the listen script takes as $1 (the python listener). */
export const LISTEN_ARG = PY_LISTENER;

/** Stops the listeners the listen script started. */
export function stopScript(): string {
  return `[ -f ${PIDS} ] && kill $(cat ${PIDS}) 2>/dev/null; rm -f ${PIDS}; true`;
}

/** One probe: ping an address, or open a TCP connection to address:port. */
export interface ProbeSpec {
  probe: 'ping' | 'tcp';
  ip: string;
  port?: number;
}

/**
 * Runs every probe at once and prints one line each: `ping IP RECEIVED` or `tcp IP PORT ok|fail`. `prefix` runs the
 * tools through busybox (on the host, which has busybox but not necessarily ping or nc).
 */
export function probeScript(probes: ProbeSpec[], opts: { busybox?: boolean; waitS?: number } = {}): string {
  const bb = opts.busybox ? 'busybox ' : '';
  const w = opts.waitS ?? 3;
  const lines = [
    // busybox says "2 packets received", iputils "2 received". -W: busybox otherwise waits 10 s for the last reply
    // whatever -w says (measured: 11.3 s for a ping that gets no answer; 3.3 s with -W 2); -W is the wait less the
    // second between the two pings.
    `p() { n=$(${bb}ping -c 2 -w ${w} -W ${Math.max(2, w - 1)} "$1" 2>/dev/null | sed -n 's/.* \\([0-9][0-9]*\\) \\(packets \\)\\{0,1\\}received.*/\\1/p'); echo "ping $1 \${n:-0}"; }`,
    `t() { if ${bb}nc -w ${w} "$1" "$2" </dev/null >/dev/null 2>&1; then echo "tcp $1 $2 ok"; else echo "tcp $1 $2 fail"; fi; }`,
    ...probes.map((p) => (p.probe === 'ping' ? `p ${p.ip} &` : `t ${p.ip} ${p.port} &`)),
    'wait',
  ];
  return lines.join('\n') + '\n';
}

/** Parses the probe script's output: results by "ping IP" or "tcp IP PORT". */
export function parseProbeOutput(text: string): Map<string, { ok: boolean; detail: string }> {
  const out = new Map<string, { ok: boolean; detail: string }>();
  for (const line of text.split('\n')) {
    const ping = /^ping (\S+) (\d+)$/.exec(line);
    if (ping) out.set(`ping ${ping[1]}`, { ok: Number(ping[2]) > 0, detail: `${ping[2]}/2 replies` });
    const tcp = /^tcp (\S+) (\d+) (ok|fail)$/.exec(line);
    if (tcp) out.set(`tcp ${tcp[1]} ${tcp[2]}`, { ok: tcp[3] === 'ok', detail: tcp[3] === 'ok' ? 'connected' : 'no connection' });
  }
  return out;
}

/** The key a probe's result has in parseProbeOutput's map. */
export function probeKey(p: ProbeSpec): string {
  return p.probe === 'ping' ? `ping ${p.ip}` : `tcp ${p.ip} ${p.port}`;
}
