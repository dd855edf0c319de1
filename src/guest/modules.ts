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

/** The modules to insert, dependencies first, so that `wanted` loads with plain insmod. Throws on unknown names. */
export function loadOrder(deps: Map<string, { file: string; deps: string[] }>, wanted: string): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const entry = deps.get(name);
    if (!entry) throw new Error(`kernel module ${name} is not in this kernel's modules.dep`);
    state.set(name, 'visiting');
    for (const d of entry.deps) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  visit(moduleNameOf(wanted), []);
  return order;
}
