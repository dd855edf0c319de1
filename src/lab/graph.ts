// `qnet graph`: the picture of a lab, from its topology file or as it runs (each node's state), in one of the
// formats of src/render/graph.ts; SVG drawn by Graphviz from the DOT.
import { spawn } from 'node:child_process';
import { RuntimeError, UserError } from '../errors.js';
import { labGraph, renderDot, renderMermaid, type LiveLab } from '../render/graph.js';
import type { ResolvedLab } from '../topology/model.js';
import type { LabStatus } from './status.js';

export const GRAPH_FORMATS = ['svg', 'dot', 'mermaid', 'json'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** The format a graph is written in: as asked, else by the output file's extension, else DOT (text on a terminal). */
export function graphFormat(format: string | undefined, out: string | undefined): GraphFormat {
  if (format !== undefined) {
    if (!(GRAPH_FORMATS as readonly string[]).includes(format)) throw new UserError(`--format: expected one of ${GRAPH_FORMATS.join(', ')}, got "${format}"`);
    return format as GraphFormat;
  }
  const ext = out && out !== '-' ? /\.([A-Za-z]+)$/.exec(out)?.[1]?.toLowerCase() : undefined;
  const byExt: Record<string, GraphFormat> = { svg: 'svg', dot: 'dot', gv: 'dot', mmd: 'mermaid', mermaid: 'mermaid', json: 'json' };
  if (ext && byExt[ext]) return byExt[ext];
  if (out && out !== '-') throw new UserError(`--out ${out}: say the format with --format (${GRAPH_FORMATS.join(', ')}); the extension does not tell`);
  return 'dot';
}

/** What a running lab's status adds to its graph: node states, pulled links, impairments, DHCP leases. */
export function liveOf(status: LabStatus): LiveLab {
  return {
    states: Object.fromEntries(status.nodes.map((n) => [n.name, n.state])),
    nics: Object.fromEntries(
      status.nodes.map((n) => [
        n.name,
        Object.fromEntries(
          n.nics.map((x, i) => [i, { ...(x.link === 'down' ? { link: 'down' as const } : {}), ...(x.impair ? { impair: x.impair } : {}), ...(x.dhcp && x.addresses.length ? { lease: x.addresses[0]! } : {}) }]),
        ),
      ]),
    ),
  };
}

/** The lab drawn in `format`; `live` (a running lab) adds node states, pulled links and impairments. */
export async function drawLab(lab: ResolvedLab, format: GraphFormat, live?: LiveLab): Promise<string> {
  const g = labGraph(lab, live);
  if (format === 'json') return JSON.stringify(g, null, 2) + '\n';
  if (format === 'mermaid') return renderMermaid(g);
  const dot = renderDot(g);
  return format === 'dot' ? dot : graphviz(dot);
}

// SVG from DOT by Graphviz's dot (Debian's graphviz).
function graphviz(dot: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('dot', ['-Tsvg'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.once('error', (e: NodeJS.ErrnoException) =>
      reject(new RuntimeError(e.code === 'ENOENT' ? 'Graphviz is not installed (no `dot`): run `apt-get install graphviz` (or `npm run setup`), or use --format dot|mermaid|json' : `dot: ${e.message}`)),
    );
    p.once('close', (code) => (code === 0 ? resolve(out) : reject(new RuntimeError(`dot -Tsvg failed (exit ${code}): ${err.trim()}`))));
    p.stdin.on('error', () => {});
    p.stdin.end(dot);
  });
}
