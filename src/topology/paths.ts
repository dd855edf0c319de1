// Formatting of locations in the topology file as dotted paths (`nodes.deb2.nics[0].ip`).

/** Renders a path of keys and indexes as `a.b[0].c`, quoting keys that are not plain identifiers. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const k = String(key);
      if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k)) out += out ? `.${k}` : k;
      else out += `[${JSON.stringify(k)}]`;
    }
  }
  return out || '(top level)';
}

/** Reads a path written by formatPath back into its keys and indexes (`(top level)` is the empty path). */
export function parsePath(text: string): Array<string | number> {
  if (text === '(top level)') return [];
  const out: Array<string | number> = [];
  const re = /\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(m[3]!) as string);
  }
  return out;
}

/** True when `inner` is `outer` or lies inside it (`nodes.deb1.nics[0]` inside `nodes.deb1`). */
export function isWithin(inner: string, outer: string): boolean {
  if (outer === '(top level)') return true;
  if (!inner.startsWith(outer)) return false;
  const next = inner[outer.length];
  return next === undefined || next === '.' || next === '[';
}
