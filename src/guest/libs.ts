// Pure parsing of `ldd` output: the shared libraries (and the loader) a dynamic binary needs.

/** Absolute paths of the libraries and loader that `ldd` lists; throws if one is "not found". */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('linux-vdso') || line.startsWith('statically linked')) continue;
    const missing = /^(\S+) => not found/.exec(line);
    if (missing) throw new Error(`shared library ${missing[1]} not found`);
    const arrow = /=>\s*(\/\S+)/.exec(line);
    const bare = /^(\/\S+)/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) out.push(p);
  }
  return [...new Set(out)];
}
