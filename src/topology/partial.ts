// The valid part of a topology the schema refused: what normalization and the rules still run on, so that one run
// reports every problem. Pure.
import { z } from 'zod';
import { formatPath } from './paths.js';
import { HostSchema, NetworkSchema, NodeSchema, TopologySchema, type Topology } from './schema.js';

// As the topology's schema, but lenient where the rules do not look: any string names the lab, a node or a network
// or host (their form was reported by the schema; the rules only compare them), and no limits on how many there are.
const PartialSchema = TopologySchema.extend({
  name: z.string().catch('lab'),
  networks: z.record(z.string(), NetworkSchema).default({}),
  nodes: z.record(z.string(), NodeSchema),
  hosts: z.record(z.string(), HostSchema).optional(),
});

const INVALID = Symbol('invalid');
type Pruned = unknown | typeof INVALID;

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; element?: z.ZodType };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

type Path = Array<string | number>;

// Lists whose items stand alone and are read one by one (forEach, which passes over a hole): an invalid item goes
// and leaves a hole, so the others keep their index. Any other list with an invalid item goes whole: NICs are
// counted and indexed by position (derived names, `out:`), the items of an address list or trunk make one value.
const byItem = (p: Path) => (p.length === 1 && p[0] === 'forwards') || (p[0] === 'nodes' && ((p.length === 3 && p[2] === 'routes') || (p.length === 4 && p[2] === 'router' && p[3] === 'masquerade')));

/** What was left out of a value, and where lists with holes must get them back after parsing. */
interface Pruning {
  dropped: string[];
  holes: Array<{ path: Path; kept: number[]; length: number }>;
}

/**
 * `value` without what `schema` refuses in it: an invalid optional value is left out (and its path added to
 * `dropped`), an object that cannot do without it is invalid in turn; a list goes whole, or item by item (byItem).
 */
function prune(schema: z.ZodType, value: unknown, path: Path, into: Pruning): Pruned {
  if (schema.safeParse(value).success) return value;
  const def = defOf(schema);
  const { dropped } = into;
  if ((def.type === 'optional' || def.type === 'default') && def.innerType) return prune(def.innerType, value, path, into);
  let out: unknown;
  if (def.type === 'object' && def.shape && isMapping(value)) {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const field = Object.hasOwn(def.shape, k) ? def.shape[k] : undefined;
      if (!field) continue; // an unknown key, reported by the schema
      const p = prune(field, v, [...path, k], into);
      if (p === INVALID) dropped.push(formatPath([...path, k]));
      else obj[k] = p;
    }
    out = obj;
  } else if (def.type === 'record' && def.valueType && isMapping(value)) {
    const rec: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__') continue; // the schema's records skip it too (parseTopology refuses it before)
      const p = prune(def.valueType, v, [...path, k], into);
      if (p === INVALID) dropped.push(formatPath([...path, k]));
      else rec[k] = p;
    }
    out = rec;
  } else if (def.type === 'array' && def.element && Array.isArray(value)) {
    const items = value.map((v, i) => prune(def.element!, v, [...path, i], into));
    if (items.includes(INVALID)) {
      if (!byItem(path)) return INVALID;
      const kept = items.flatMap((v, i) => (v === INVALID ? [] : [i]));
      for (const [i, v] of items.entries()) if (v === INVALID) dropped.push(formatPath([...path, i]));
      into.holes.push({ path, kept, length: items.length });
      out = kept.map((i) => items[i]);
    } else out = items;
  } else return INVALID;
  // What is left must stand on its own (required keys, refinements, limits); if not, the whole value goes.
  return schema.safeParse(out).success ? out : INVALID;
}

/**
 * The part of a refused topology that the schema accepts, with the paths of what was left out (unknown from then
 * on); null when too little is left to judge anything (not a mapping, or no nodes).
 */
export function validPart(data: unknown): { topology: Topology; dropped: string[] } | null {
  const into: Pruning = { dropped: [], holes: [] };
  const pruned = prune(PartialSchema, data, [], into);
  if (pruned === INVALID) return null;
  const parsed = PartialSchema.safeParse(pruned);
  if (!parsed.success) return null;
  // Items left out of a list by item leave holes where they were: the others keep their index (and path). Such a
  // sparse list lives only in this model of a refused topology, which never leaves validation.
  for (const { path, kept, length } of into.holes) {
    let parent: unknown = parsed.data;
    for (const seg of path.slice(0, -1)) parent = (parent as Record<string, unknown>)[seg];
    const key = path[path.length - 1]!;
    const dense = (parent as Record<string, unknown[]>)[key]!;
    const sparse: unknown[] = new Array(length);
    kept.forEach((orig, k) => (sparse[orig] = dense[k]));
    (parent as Record<string, unknown[]>)[key] = sparse;
  }
  if (isMapping(data) && !TopologySchema.shape.name.safeParse(data.name).success) into.dropped.push('name');
  return { topology: parsed.data, dropped: into.dropped };
}
