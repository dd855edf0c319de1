// The reachability check's section of the bench: `qnet check` (the CLI as typed, its defaults) on the seed lab and
// on a 10-node lab of two networks and a router, every pair predicted and measured.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { forceDown, type Held } from './held.js';

/** A 10-node lab: r joins a nat network (4 hosts, one by DHCP) and a bridge network (5 hosts) and routes between them. */
export function tenNodeTopology(name: string): unknown {
  const nodes: Record<string, unknown> = {
    r: { router: {}, nics: [{ network: 'north', ip: '10.71.0.254' }, { network: 'south', ip: '10.72.0.254' }] },
  };
  for (let i = 1; i <= 4; i++) nodes[`n${i}`] = { nics: [i === 4 ? { network: 'north', dhcp: true } : { network: 'north', ip: `10.71.0.${10 + i}` }] };
  for (let i = 1; i <= 5; i++) nodes[`s${i}`] = { gateway: '10.72.0.254', nics: [{ network: 'south', ip: `10.72.0.${10 + i}` }] };
  return {
    name,
    networks: {
      north: { mode: 'nat', subnet: '10.71.0.0/24', address: '10.71.0.1', dhcp: { range: '10.71.0.100-10.71.0.150' } },
      south: { subnet: '10.72.0.0/24', address: '10.72.0.1' },
    },
    nodes,
  };
}

function cli(qnet: string, args: string[], held?: Held): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [qnet, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    held?.child(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs the section: rows of the table and a note. */
export async function checkSection(root: string, opts: { reps: number; log: (s: string) => void; fmt: (ms: number) => string; held?: Held }): Promise<{ rows: string[]; note: string }> {
  const qnet = path.join(root, 'bin', 'qnet.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qnet-bench-check-'));
  opts.held?.add('check', () => rmSync(dir, { recursive: true, force: true }));
  const rows: string[] = [];
  let note = '';
  try {
    const seed = parse(readFileSync(path.join(root, 'examples', 'seed-lab.yaml'), 'utf8')) as Record<string, unknown>;
    const labs = [
      { what: 'seed lab (3 nodes, user-mode uplink)', topo: { ...seed, name: 'bench-chk-seed' } },
      { what: '10 nodes: a router between a nat and a bridge network', topo: tenNodeTopology('bench-chk-ten') },
    ];
    for (const l of labs) {
      const file = path.join(dir, `${(l.topo as { name: string }).name}.yaml`);
      writeFileSync(file, stringify(l.topo));
      const name = (l.topo as { name: string }).name;
      opts.log(`bench: check ${name}: up`);
      opts.held?.add(`lab ${name}`, () => forceDown(name));
      const up = await cli(qnet, ['up', file], opts.held);
      if (up.code !== 0) {
        opts.held?.drop(`lab ${name}`); // a failed up rolled itself back
        throw new Error(`qnet up ${file}: ${up.stderr}`);
      }
      try {
        const times: number[] = [];
        let last: { ok: boolean; cells: Array<{ measured: { skipped?: string } | null }>; sources: unknown[]; destinations: unknown[]; disagreements: unknown[] } | undefined;
        for (let i = 0; i < opts.reps; i++) {
          const t = Date.now();
          const r = await cli(qnet, ['check', name, '--json'], opts.held);
          times.push(Date.now() - t);
          last = JSON.parse(r.stdout);
          opts.log(`bench: check ${name}: ${times.at(-1)} ms, exit ${r.code}`);
        }
        const sorted = [...times].sort((a, b) => a - b);
        const med = sorted[Math.floor(sorted.length / 2)]!;
        const probes = last!.cells.filter((c) => c.measured && !c.measured.skipped).length;
        const unsent = last!.cells.filter((c) => c.measured?.skipped).length;
        rows.push(
          `| ${l.what} | ${last!.sources.length} × ${last!.destinations.length} | ${probes} | ${unsent} | ${opts.fmt(med)} (${opts.fmt(sorted[0]!)}–${opts.fmt(sorted.at(-1)!)}) | ${last!.disagreements.length} |`,
        );
      } finally {
        if (!opts.held?.stopping) {
          const d = await cli(qnet, ['down', name], opts.held);
          if (d.code !== 0) throw new Error(`qnet down ${name}: ${d.stderr}`);
          opts.held?.drop(`lab ${name}`);
        }
      }
    }
    note = `\`qnet check LAB --json\` as typed, ${opts.reps} runs each on a lab brought up by \`qnet up\` just before (guests restored from their saved states); wall time of the whole command (reading the lab, leases, listeners started in every guest and namespace, every probe, listeners stopped).`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    opts.held?.drop('check');
  }
  return { rows, note };
}

/** The section's Markdown. */
export function checkMarkdown(c: { rows: string[]; note: string }, when?: string): string {
  return `## Reachability: \`qnet check\`

${c.note}${when ? ` Measured ${when} UTC by \`npm run bench -- --only check\`.` : ''} Every source
probes every destination at once from inside the guest (ping: two echoes, at most 3 s; TCP: a connection to a port
qnet listens on, at most 3 s), 4 sources at a time. In the 10-node lab the host routes only the nat network back
into the lab, so what the host would send to the bridge network (or answer it) leaves by its own default route: the
model marks those probes and qnet does not send them.

| lab | sources × destinations | probes measured | not sent (would leave the machine) | check | disagreements |
| --- | --- | --- | --- | --- | --- |
${c.rows.join('\n')}

`;
}
