// Pure resolution of kernel module dependencies from a modules.dep text into load orders.

/** Parses modules.dep into a map from module name (`virtio_net`) to its file and direct dependencies' names. */
export function parseModulesDep(text: string): Map<string, { file: string; deps: string[] }> {
  const out = new Map<string, { file: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const file = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(moduleNameOf);
    out.set(moduleNameOf(file), { file, deps });
  }
  return out;
}

/** The module name of a .ko path, with hyphens folded to underscores as the kernel does. */
export function moduleNameOf(file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.(xz|zst|gz))?$/, '');
  return base.replace(/-/g, '_');
}

/** Parses modules.softdep: module name -> the names (or aliases) it wants loaded before it. */
export function parseSoftdeps(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const pre = /pre:\s*([^:]*?)(\s+post:|$)/.exec(m[2]!);
    if (pre) out.set(moduleNameOf(m[1]!), pre[1]!.trim().split(/\s+/).filter(Boolean));
  }
  return out;
}

/** Parses modules.alias: alias -> module names, in file order. */
export function parseAliases(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^alias\s+(\S+)\s+(\S+)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), moduleNameOf(m[2]!)]);
  }
  return out;
}

export interface ModuleIndex {
  deps: Map<string, { file: string; deps: string[] }>;
  softdeps?: Map<string, string[]>;
  aliases?: Map<string, string[]>;
}

/**
 * The modules to insert, dependencies first, so that `wanted` loads with plain insmod. Soft "pre:"
 * dependencies (libcrc32c wants crc32c) come first too; an alias resolves to its portable `_generic`
 * implementation when there is one. Throws on unknown names.
 */
export function loadOrder(index: ModuleIndex | Map<string, { file: string; deps: string[] }>, wanted: string): string[] {
  const { deps, softdeps, aliases } = index instanceof Map ? { deps: index, softdeps: undefined, aliases: undefined } : index;
  const resolveSoft = (name: string): string | undefined => {
    const n = moduleNameOf(name);
    if (deps.has(n)) return n;
    const cands = aliases?.get(name) ?? [];
    return cands.find((c) => c.endsWith('_generic') && deps.has(c)) ?? cands.find((c) => deps.has(c));
  };
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const entry = deps.get(name);
    if (!entry) throw new Error(`kernel module ${name} is not in this kernel's modules.dep`);
    state.set(name, 'visiting');
    for (const soft of softdeps?.get(name) ?? []) {
      const r = resolveSoft(soft);
      if (r && state.get(r) !== 'visiting') visit(r, [...chain, name]);
    }
    for (const d of entry.deps) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  visit(moduleNameOf(wanted), []);
  return order;
}
