// Terminal basics for the CLI (colours only on a TTY, durations, tables), light enough to load for every command.

const tty = process.stdout.isTTY === true;
const paint = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const green = (s: string) => paint('32', s);
export const red = (s: string) => paint('31', s);
export const dim = (s: string) => paint('2', s);
export const bold = (s: string) => paint('1', s);
export const yellow = (s: string) => paint('33', s);

/** Formats milliseconds as `850 ms` or `12.3 s`. */
export function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Renders rows as an aligned table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [bold(line(header)), ...rows.map(line)].join('\n');
}
