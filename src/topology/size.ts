// Sizes of disks as a topology and the CLI write them (2G, 512M, bytes), and as people read them.

/** Parses a size such as 2G, 512M, 4096M or a number of bytes; null when it is not one. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}

/** A size in bytes as people read it (2 GiB, 512 MiB). */
export function formatSize(bytes: number): string {
  for (const [u, f] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const)
    if (bytes >= f) return `${Number((bytes / f).toFixed(bytes % f === 0 ? 0 : 1))} ${u}`;
  return `${bytes} B`;
}
