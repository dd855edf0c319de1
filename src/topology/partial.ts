// The valid part of a topology the schema refused: what normalization and the rules still run on, so that one run
// reports every problem. Pure.
import { z } from 'zod';
import { formatPath } from './paths.js';
import { NetworkSchema, NodeSchema, TopologySchema, type Topology } from './schema.js';

// As the topology's schema, but lenient where the rules do not look: any string names the lab, a node or a network
// (their form was reported by the schema; the rules only compare them), and no limits on how many there are.
const PartialSchema = TopologySchema.extend({
  name: z.string().catch('lab'),
  networks: z.record(z.string(), NetworkSchema).default({}),
  nodes: z.record(z.string(), NodeSchema),
});

const INVALID = Symbol('invalid');
type Pruned = unknown | typeof INVALID;

type Def = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; valueType?: z.ZodType; element?: z.ZodType };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `value` without what `schema` refuses in it: an invalid optional value is left out (and its path added to
 * `dropped`), an object that cannot do without it is invalid in turn. A list with an invalid item is invalid as a
 * whole, so that the items left keep their index (paths, derived names and `out:` count by it).
 */
function prune(schema: z.ZodType, value: unknown, path: Array<string | number>, dropped: string[]): Pruned {
  if (schema.safeParse(value).success) return value;
  const def = defOf(schema);
  if ((def.type === 'optional' || def.type === 'default') && def.innerType) return prune(def.innerType, value, path, dropped);
  let out: unknown;
  if (def.type === 'object' && def.shape && isMapping(value)) {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const field = Object.hasOwn(def.shape, k) ? def.shape[k] : undefined;
      if (!field) continue; // an unknown key, reported by the schema
      const p = prune(field, v, [...path, k], dropped);
      if (p === INVALID) dropped.push(formatPath([...path, k]));
      else obj[k] = p;
    }
    out = obj;
  } else if (def.type === 'record' && def.valueType && isMapping(value)) {
    const rec: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '__proto__') continue; // the schema's records skip it too (parseTopology refuses it before)
      const p = prune(def.valueType, v, [...path, k], dropped);
      if (p === INVALID) dropped.push(formatPath([...path, k]));
      else rec[k] = p;
    }
    out = rec;
  } else if (def.type === 'array' && def.element && Array.isArray(value)) {
    const items = value.map((v, i) => prune(def.element!, v, [...path, i], dropped));
    if (items.includes(INVALID)) return INVALID;
    out = items;
  } else return INVALID;
  // What is left must stand on its own (required keys, refinements, limits); if not, the whole value goes.
  return schema.safeParse(out).success ? out : INVALID;
}

/**
 * The part of a refused topology that the schema accepts, with the paths of what was left out (unknown from then
 * on); null when too little is left to judge anything (not a mapping, or no nodes).
 */
export function validPart(data: unknown): { topology: Topology; dropped: string[] } | null {
  const dropped: string[] = [];
  const pruned = prune(PartialSchema, data, [], dropped);
  if (pruned === INVALID) return null;
  const parsed = PartialSchema.safeParse(pruned);
  if (!parsed.success) return null;
  if (isMapping(data) && !TopologySchema.shape.name.safeParse(data.name).success) dropped.push('name');
  return { topology: parsed.data, dropped };
}
