// Rendering the reachability matrix (pure): predicted, or predicted against measured, as text and as JSON.
import { formatIPv4 } from '../topology/ipv4.js';
import type { Cell, Prediction, Probe } from './model.js';

/** A measured probe: reached or not, what was seen; `skipped` when it could not be measured (and why). */
export interface Measured {
  ok: boolean;
  detail?: string;
  skipped?: string;
}

export const LEGEND_MEASURED = '✓ reached (predicted and measured)  ✗ not reached (predicted and measured)  ! predicted reached, measured not  ? predicted not, measured reached  ~ not measured  - does not apply';
export const LEGEND_PREDICTED = '✓ reached  ✗ not reached  - does not apply';

const key = (c: Cell) => `${c.from}|${c.to}|${c.probe}`;

/** The mark of one cell: its prediction alone, or its agreement with the measurement. */
export function mark(c: Cell, m: Measured | undefined, measuring: boolean): string {
  if (!c.predicted) return '-';
  if (!measuring) return c.predicted.ok ? '✓' : '✗';
  if (!m || m.skipped) return '~';
  if (c.predicted.ok === m.ok) return m.ok ? '✓' : '✗';
  return c.predicted.ok ? '!' : '?';
}

/** A disagreement: the cell, what was predicted (with the path) and what was measured. */
export interface Disagreement {
  cell: Cell;
  measured: Measured;
}

/** Every cell where prediction and measurement differ. */
export function disagreements(p: Prediction, measured: Map<string, Measured>, probes: readonly Probe[]): Disagreement[] {
  const out: Disagreement[] = [];
  for (const c of p.cells) {
    const m = measured.get(key(c));
    if (c.predicted && probes.includes(c.probe) && m && !m.skipped && m.ok !== c.predicted.ok) out.push({ cell: c, measured: m });
  }
  return out;
}

/** The matrix as text: rows are sources, columns destinations, a mark per probe in each cell. */
export function renderMatrix(p: Prediction, probes: readonly Probe[], measured?: Map<string, Measured>): string {
  const cols = p.destinations.map((d) => d.id);
  const rowW = Math.max(4, ...p.sources.map((s) => s.id.length));
  const widths = cols.map((c) => Math.max(c.length, probes.length));
  const cell = new Map(p.cells.map((c) => [key(c), c]));
  const lines: string[] = [];
  lines.push(`${''.padEnd(rowW)}  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd());
  for (const s of p.sources) {
    const marks = p.destinations.map((d, i) =>
      probes
        .map((probe) => {
          const c = cell.get(`${s.id}|${d.id}|${probe}`);
          return c ? mark(c, measured?.get(key(c)), !!measured) : '-';
        })
        .join('')
        .padEnd(widths[i]!),
    );
    lines.push(`${s.id.padEnd(rowW)}  ${marks.join('  ')}`.trimEnd());
  }
  lines.push('');
  lines.push(`(${probes.join(' and ')} in each cell; ${measured ? LEGEND_MEASURED : LEGEND_PREDICTED})`);
  return lines.join('\n') + '\n';
}

/** Why the predicted failures fail, one line per reason with the pairs it explains. */
export function renderReasons(p: Prediction, probes: readonly Probe[]): string {
  const by = new Map<string, string[]>();
  for (const c of p.cells)
    if (c.predicted && !c.predicted.ok && probes.includes(c.probe)) {
      const r = c.predicted.reason ?? 'unknown';
      by.set(r, [...(by.get(r) ?? []), `${c.from} → ${c.to} ${c.probe}`]);
    }
  if (!by.size) return '';
  const lines = ['predicted not to reach:'];
  for (const [reason, pairs] of by) lines.push(`  ${reason}: ${pairs.length > 6 ? `${pairs.slice(0, 6).join(', ')} and ${pairs.length - 6} more` : pairs.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** Each disagreement with the predicted path and the measured result. */
export function renderDisagreements(list: Disagreement[]): string {
  if (!list.length) return 'prediction and measurement agree everywhere\n';
  const lines = [`${list.length} disagreement${list.length > 1 ? 's' : ''}:`];
  for (const { cell, measured } of list) {
    const v = cell.predicted!;
    lines.push(`  ${cell.from} → ${cell.to} ${cell.probe}: predicted ${v.ok ? `✓ ${v.via}` : `✗ (${v.reason})`}; measured ${measured.ok ? '✓' : '✗'}${measured.detail ? ` (${measured.detail})` : ''}`);
    lines.push(`      predicted path: ${v.hops.join(' → ')}`);
  }
  return lines.join('\n') + '\n';
}

/** The matrix as JSON-ready data. */
export function matrixJson(p: Prediction, probes: readonly Probe[], measured?: Map<string, Measured>): unknown {
  return {
    sources: p.sources,
    destinations: p.destinations.map((d) => ({ ...d, ip: formatIPv4(d.ip) })),
    cells: p.cells
      .filter((c) => probes.includes(c.probe))
      .map((c) => {
        const m = measured?.get(key(c));
        return { from: c.from, to: c.to, probe: c.probe, predicted: c.predicted, ...(measured ? { measured: m ?? null, mark: mark(c, m, true) } : { mark: mark(c, undefined, false) }) };
      }),
  };
}

