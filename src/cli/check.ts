// Printing `qnet check`'s report: the matrix, why the predicted failures fail, the disagreements, declared checks.
import { disagreements, matrixJson, renderDisagreements, renderMatrix, renderReasons } from '../check/matrix.js';
import type { Prediction, Probe } from '../check/model.js';
import type { CheckReport, DeclaredResult } from '../lab/check.js';
import { fmtMs, green, red } from './term.js';

/** The declared checks as lines: pass/FAIL, what, predicted and measured. */
export function declaredText(list: DeclaredResult[]): string {
  if (!list.length) return '';
  const lines = ['declared checks:'];
  for (const d of list) {
    const pred = d.predicted.ok ? `predicted ✓ ${d.predicted.via}` : `predicted ✗ (${d.predicted.reason})`;
    const meas = d.measured ? (d.measured.skipped ? `; ${d.measured.skipped}` : `; measured ${d.measured.ok ? '✓' : '✗'}${d.measured.detail ? ` (${d.measured.detail})` : ''}`) : '';
    lines.push(`  ${d.ok ? green('pass') : red('FAIL')}  ${d.label}  (${pred}${meas})`);
  }
  return lines.join('\n') + '\n';
}

/** The whole report of a measured check, and its exit code (0: all agree and every declared check holds). */
export function printReport(r: CheckReport, probes: readonly Probe[], json: boolean): number {
  const dis = disagreements(r.prediction, r.measured, probes);
  const failed = r.declared.filter((d) => !d.ok);
  const code = dis.length || failed.length ? 1 : 0;
  if (json) {
    process.stdout.write(
      JSON.stringify(
        {
          lab: r.lab,
          ...(matrixJson(r.prediction, probes, r.measured) as object),
          disagreements: dis.map((d) => ({ from: d.cell.from, to: d.cell.to, probe: d.cell.probe, predicted: d.cell.predicted, measured: d.measured })),
          declared: r.declared,
          ms: r.ms,
          ok: code === 0,
        },
        null,
        2,
      ) + '\n',
    );
    return code;
  }
  const unmeasured = [...r.measured.values()].filter((m) => m.skipped);
  process.stdout.write(`lab ${r.lab}: ${r.prediction.sources.length} sources × ${r.prediction.destinations.length} destinations, predicted and measured in ${fmtMs(r.ms)}\n\n`);
  process.stdout.write(renderMatrix(r.prediction, probes, r.measured) + '\n');
  const reasons = renderReasons(r.prediction, probes);
  if (reasons) process.stdout.write(reasons + '\n');
  if (unmeasured.length) process.stdout.write(`${unmeasured.length} probes not measured: ${[...new Set(unmeasured.map((m) => m.skipped))].join('; ')}\n\n`);
  process.stdout.write(dis.length ? red(renderDisagreements(dis)) : green(renderDisagreements(dis)));
  const decl = declaredText(r.declared);
  if (decl) process.stdout.write('\n' + decl);
  if (failed.length) process.stdout.write(red(`${failed.length} of ${r.declared.length} declared checks failed: ${failed.map((f) => f.label).join('; ')}\n`));
  return code;
}

/** The predicted matrix (no lab running), and its exit code (1 when a declared check is predicted to fail). */
export function printPrediction(lab: string, p: Prediction, declared: DeclaredResult[], probes: readonly Probe[], json: boolean): number {
  const failed = declared.filter((d) => !d.ok);
  if (json) {
    process.stdout.write(JSON.stringify({ lab, ...(matrixJson(p, probes) as object), declared, ok: !failed.length }, null, 2) + '\n');
    return failed.length ? 1 : 0;
  }
  process.stdout.write(`lab ${lab}: ${p.sources.length} sources × ${p.destinations.length} destinations, predicted from the topology\n\n`);
  process.stdout.write(renderMatrix(p, probes) + '\n');
  const reasons = renderReasons(p, probes);
  if (reasons) process.stdout.write(reasons);
  const decl = declaredText(declared);
  if (decl) process.stdout.write('\n' + decl);
  if (failed.length) process.stdout.write(red(`${failed.length} of ${declared.length} declared checks are predicted to fail: ${failed.map((f) => f.label).join('; ')}\n`));
  return failed.length ? 1 : 0;
}
