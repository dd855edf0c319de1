// `qnet demo`: the seed lab brought up, checked end to end (pings, NAT through the router guest), torn down.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeError } from '../errors.js';
import type { CommandRunner } from '../host/run.js';
import { loadTopology } from '../topology/load.js';
import { NETNS_PREFIX, type ResolvedLab } from '../topology/model.js';
import { down } from './down.js';
import { checkLab } from './check.js';
import { execInGuest } from './exec.js';
import { up, type Reporter } from './up.js';

export interface Check {
  name: string;
  ok: boolean;
  ms: number;
  detail: string;
  /** Checks measured together share a batch (and its time, `ms`). */
  batch?: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The seed topology shipped with qnet. */
export const SEED_EXAMPLE = path.resolve(here, '../../../examples/seed-lab.yaml');
/** The same lab on real Debian guests (image nodes), for `qnet demo --image FILE`. */
export const SEED_DEBIAN_EXAMPLE = path.resolve(here, '../../../examples/seed-lab-debian.yaml');
const SERVER = path.join(here, 'demo-server.js');
const PORT = 8080;

function startServer(netns: string, token: string): Promise<{ child: ChildProcess; peers: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, SERVER, String(PORT), token], { stdio: ['ignore', 'pipe', 'pipe'] });
    const peers: string[] = [];
    let buf = '';
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('listening')) resolve({ child, peers });
        const m = /^peer (\S+)/.exec(line);
        if (m) peers.push(m[1]!.replace(/^::ffff:/, ''));
      }
    });
    child.once('exit', (code) => reject(new RuntimeError(`the demo HTTP server exited (${code}): ${stderr.trim()}`)));
  });
}

async function timed(name: string, fn: () => Promise<{ ok: boolean; detail: string }>): Promise<Check> {
  const t = Date.now();
  try {
    const r = await fn();
    return { name, ...r, ms: Date.now() - t };
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message.split('\n')[0]!, ms: Date.now() - t };
  }
}

/** Runs the demo; returns the checks (all must pass). Always tears the lab down. */
export async function runDemo(opts: { runner: CommandRunner; reporter: Reporter; labName?: string; file?: string; image?: string; readyTimeoutMs?: number }): Promise<Check[]> {
  const file = opts.file ?? (opts.image ? SEED_DEBIAN_EXAMPLE : SEED_EXAMPLE);
  const seed = await loadTopology(file);
  // --image: every node boots that disk image (the example's own path is where `qnet image create` would put one).
  const image = opts.image ? path.resolve(opts.image) : undefined;
  const nodes = seed.nodes.map((n) => (image && n.image ? { ...n, image: { ...n.image, path: image } } : n));
  const lab: ResolvedLab = { ...seed, nodes, name: opts.labName ?? 'demo', netns: `${NETNS_PREFIX}${opts.labName ?? 'demo'}` };
  const debian = lab.nodes.some((n) => n.image);
  const token = randomBytes(6).toString('hex');
  let server: { child: ChildProcess; peers: string[] } | undefined;
  try {
    await up(lab, { runner: opts.runner, reporter: opts.reporter, source: file, readyTimeoutMs: opts.readyTimeoutMs ?? (debian ? 600_000 : 120_000) });
    server = await startServer(lab.netns, token);
    opts.reporter.info(`HTTP server on the host side of deb1's user-mode uplink (10.0.2.2:${PORT} as the guests see it)`);
    // The seed's own proofs are the topology's declared checks (pings on the LAN, TCP out through deb1's NAT, and
    // ICMP that QEMU's user-mode NAT does not carry), measured from inside the guests as `qnet check` does.
    const checks: Check[] = [];
    const t0 = Date.now();
    const report = await checkLab(lab.name, { declaredOnly: true });
    const ms = Date.now() - t0;
    for (const d of report.declared)
      checks.push({
        name: d.label,
        ok: d.ok,
        ms,
        batch: 'declared',
        detail: d.measured?.skipped ?? `measured ${d.measured?.ok ? 'reached' : 'not reached'}${d.measured?.detail ? ` (${d.measured.detail})` : ''}; predicted ${d.predicted.ok ? d.predicted.via : `not: ${d.predicted.reason}`}`,
      });
    checks.push(
      await timed(`deb3 fetches http://10.0.2.2:${PORT}/ through deb1's NAT`, async () => {
        const before = server!.peers.length;
        const fetch = debian ? ['curl', '-s', '-m', '15', `http://10.0.2.2:${PORT}/`] : ['wget', '-q', '-O', '-', `http://10.0.2.2:${PORT}/`];
        const r = await execInGuest(lab.name, 'deb3', fetch, { timeoutMs: 20000 });
        const body = r.stdout.toString();
        const peer = server!.peers[before];
        const ok = r.code === 0 && body.includes(token) && peer !== undefined && peer !== '192.168.1.3';
        return { ok, detail: ok ? `page received; the server saw ${peer} (deb1's uplink), not 192.168.1.3` : `exit ${r.code}, peer ${peer ?? 'none'} ${r.stderr.toString().trim()}` };
      }),
    );
    checks.push(
      debian
        ? await timed("deb1 masqueraded it (iptables counter on its uplink)", async () => {
            const r = await execInGuest(lab.name, 'deb1', ['iptables', '-t', 'nat', '-L', 'POSTROUTING', '-v', '-n', '-x'], { timeoutMs: 20000 });
            // "pkts bytes target prot opt in out source destination": the MASQUERADE rule cloud-init's script added.
            const m = /^\s*(\d+)\s+\d+\s+MASQUERADE\s+\S+\s+\S+\s+\S+\s+(\S+)\s+(192\.168\.1\.0\/24)/m.exec(r.stdout.toString());
            const packets = m ? Number(m[1]) : 0;
            return { ok: packets > 0, detail: m ? `${packets} packet(s) from ${m[3]} masqueraded out of ${m[2]} (iptables, from cloud-init)` : `no masquerade rule found: ${r.stderr.toString().trim()}` };
          })
        : await timed("deb1 masqueraded it (nft counter on its uplink)", async () => {
            const r = await execInGuest(lab.name, 'deb1', ['nft', 'list', 'chain', 'ip', 'qnet', 'postrouting'], { timeoutMs: 10000 });
            const m = /counter packets (\d+) bytes (\d+) masquerade/.exec(r.stdout.toString());
            const packets = m ? Number(m[1]) : 0;
            return { ok: packets > 0, detail: m ? `${packets} packet(s) from 192.168.1.0/24 masqueraded out of eth0` : 'no masquerade rule found' };
          }),
    );
    return checks;
  } finally {
    if (server) server.child.kill('SIGTERM');
    await down(lab.name, { runner: opts.runner, reporter: opts.reporter });
  }
}
