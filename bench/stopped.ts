// Reading `down`'s report back: the bench tables say how the guests of each measured `down` stopped.

/**
 * How each guest stopped, from down's list of what it removed ("guest d0 (powered off)", "guests d0, d1, d2
 * (powered off)", "12 guests d0, d1, d2, …, d10, d11 (quit)"): "3 powered off".
 */
export function stoppedHow(removed: string[]): string {
  const counts = new Map<string, number>();
  for (const r of removed) {
    const m = /^(?:(\d+) )?guests? (.+) \((.+)\)$/.exec(r);
    if (!m) continue;
    const k = m[1] !== undefined ? Number(m[1]) : m[2]!.split(', ').length;
    counts.set(m[3]!, (counts.get(m[3]!) ?? 0) + k);
  }
  return [...counts].map(([how, k]) => `${k} ${how}`).join(', ') || 'no guest stopped';
}

/** Where the CLI's "removed …" line splits into the entries of `down`'s list (names inside a group stay together). */
export const CLI_REMOVED_SPLIT = /, (?=(?:\d+ )?guests? |namespace |run directory |host |nft table )/;
