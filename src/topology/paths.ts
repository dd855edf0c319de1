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
