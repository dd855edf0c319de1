// Quoting for display and for the scripts qnet exports (nothing qnet itself runs goes through a shell).

/** Quotes an argument for display only (nothing qnet runs goes through a shell). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
