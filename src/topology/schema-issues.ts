// The schema's findings as the user reads them: every problem with its path, unknown keys with the known key they
// were likely meant to be, and keys written at the wrong level named as such. Pure.
import type { z } from 'zod';
import { formatPath, isWithin } from './paths.js';
import { NetworkSchema, NicSchema, NodeSchema, TopologySchema } from './schema.js';

type Path = Array<string | number>;

/** One schema problem: where (its keys), what, and the unknown key it is about (for its position in the file). */
export interface SchemaIssue {
  path: Path;
  message: string;
  key?: string;
  /** A known key this problem suggests was meant (an unknown key's likely spelling). */
  meant?: Path;
}

type Def = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  values?: unknown[];
  entries?: Record<string, unknown>;
};
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
}

// The schema one key or index further down, through the union branch that has it.
function step(s: z.ZodType, seg: string | number): z.ZodType | undefined {
  const d = defOf(unwrap(s));
  if (d.type === 'object') return Object.hasOwn(d.shape!, seg) ? d.shape![String(seg)] : undefined;
  if (d.type === 'record') return d.valueType;
  if (d.type === 'array') return typeof seg === 'number' ? d.element : undefined;
  if (d.type === 'union') for (const o of d.options!) if (defOf(unwrap(o)).type !== 'union') { const n = step(o, seg); if (n) return n; }
  return undefined;
}

/** The schema of the value at `path` (through lists, maps and the union branches that have the next key). */
function schemaAt(path: Path): z.ZodType | undefined {
  let s: z.ZodType | undefined = TopologySchema;
  for (const seg of path) s = s && step(s, seg);
  return s;
}

/** The keys an object (or a union of objects) at this schema knows. */
function keysOf(s: z.ZodType | undefined): string[] {
  if (!s) return [];
  const d = defOf(unwrap(s));
  if (d.type === 'object') return Object.keys(d.shape!);
  if (d.type === 'union') return [...new Set(d.options!.flatMap((o) => keysOf(o)))];
  return [];
}

/** Optimal string alignment distance: edits, with a swap of two neighbours as one (memroy → memory is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** The known key closest to `key` when it is close enough to be a slip (a third of its letters at most, and 2). */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return bestD <= Math.min(2, Math.max(1, Math.floor(key.length / 3))) ? best : undefined;
}

// Where each kind of key belongs: a key that is unknown where it is written but known at another level.
const LEVELS: Array<{ what: string; keys: string[]; where: string }> = [
  { what: 'a NIC setting', keys: Object.keys(NicSchema.shape), where: 'it goes in an item of a node\'s "nics"' },
  { what: 'a node setting', keys: Object.keys(NodeSchema.shape), where: 'it goes under a node\'s name in "nodes"' },
  { what: 'a network setting', keys: Object.keys(NetworkSchema.shape), where: 'it goes under a network\'s name in "networks"' },
  { what: 'a top-level key', keys: Object.keys(TopologySchema.shape), where: 'it goes at the top of the file' },
];

/** The problem of one unknown key: the known key it was likely meant to be, or the level it belongs at. */
function unknownKey(path: Path, key: string, data: unknown): SchemaIssue {
  const known = keysOf(schemaAt(path));
  const near = closest(key, known);
  // The key it was meant to be is unknown to the later stages, unless it is written as well.
  const written = valueAt(data, [...path, near ?? '']) !== undefined;
  if (near) return { path, key, message: `unknown key "${key}"; did you mean "${near}"?`, ...(written ? {} : { meant: [...path, near] }) };
  const level = LEVELS.find((l) => l.keys.includes(key) && !known.includes(key));
  return { path, key, message: level ? `unknown key "${key}": "${key}" is ${level.what}; ${level.where}` : `unknown key "${key}"` };
}

// The kind of value a schema takes, to find the branch of a union meant by the value written.
function kindOf(s: z.ZodType): string {
  const d = defOf(unwrap(s));
  if (d.type === 'object' || d.type === 'record') return 'mapping';
  if (d.type === 'enum') return typeof Object.values(d.entries ?? {})[0];
  if (d.type === 'literal') return typeof d.values?.[0];
  return d.type;
}
const kindOfValue = (v: unknown) => (isMapping(v) ? 'mapping' : Array.isArray(v) ? 'array' : typeof v);

function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const seg of path) v = (isMapping(v) || Array.isArray(v)) && Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg as string] : undefined;
  return v;
}

/** One zod issue as the user's problems (a union refused is told by the branch the value was written for). */
function convert(i: z.core.$ZodIssue, base: Path, data: unknown): SchemaIssue[] {
  const path = [...base, ...(i.path as Path)];
  switch (i.code) {
    case 'unrecognized_keys':
      return i.keys.map((k) => unknownKey(path, k, data));
    case 'invalid_key':
      return [{ path, message: [...new Set(i.issues.map((x) => x.message))].join('; ') }];
    case 'invalid_type':
      if (/received undefined/.test(i.message)) return [{ path, message: `required: ${i.message.replace(/, received undefined$/, '')}` }];
      return [{ path, message: i.message }];
    case 'invalid_union': {
      const value = valueAt(data, path);
      const options = defOf(unwrap(schemaAt(path) ?? TopologySchema)).options ?? [];
      let meant = options.map((o, n) => ({ o, n })).filter(({ o }) => kindOf(o) === kindOfValue(value));
      if (meant.length > 1 && isMapping(value)) meant = meant.filter(({ o }) => Object.keys(value).some((k) => keysOf(o).includes(k)));
      if (meant.length === 1) return i.errors[meant[0]!.n]!.flatMap((x) => convert(x, path, data));
      // A mapping that fits no branch: its keys that none of them knows.
      const known = keysOf(schemaAt(path));
      const unknown = isMapping(value) ? Object.keys(value).filter((k) => !known.includes(k)) : [];
      if (unknown.length) return unknown.map((k) => unknownKey(path, k, data));
      // A value of a kind no branch takes: which kinds they take.
      const kinds = [...new Set(options.map(kindOf))];
      if (!meant.length && kinds.length) return [{ path, message: `${i.message}: expected ${kinds.join(' or ')}, received ${kindOfValue(value)}` }];
      return [{ path, message: i.message }];
    }
    default:
      return [{ path, message: i.message }];
  }
}

// A key under `nodes:` (or `networks:`) that is a node's (network's) own setting, written where a name belongs.
function misplacedEntries(data: unknown): Array<{ path: Path; message: string }> {
  const out: Array<{ path: Path; message: string }> = [];
  const levels = [
    { key: 'nodes', schema: NodeSchema, what: 'node' },
    { key: 'networks', schema: NetworkSchema, what: 'network' },
  ] as const;
  for (const { key, schema, what } of levels) {
    const entries = isMapping(data) ? data[key] : undefined;
    if (!isMapping(entries)) continue;
    for (const [name, value] of Object.entries(entries)) {
      const field = Object.hasOwn(schema.shape, name) ? (schema.shape as Record<string, z.ZodType>)[name] : undefined;
      if (!field || schema.safeParse(value).success || !field.safeParse(value).success) continue;
      out.push({ path: [key, name], message: `"${name}" is a ${what} setting, not a ${what} name: the ${what}'s name is missing above it (${key}: → NAME: → ${name}:)` });
    }
  }
  return out;
}

/** Every problem the schema found in `data`, as the user reads them. */
export function schemaIssues(error: z.ZodError, data: unknown): SchemaIssue[] {
  let issues = error.issues.flatMap((i) => convert(i, [], data));
  // A record key that is not a valid name hides its value from the schema: check that value too.
  for (const i of error.issues)
    if (i.code === 'invalid_key' && i.path.length === 2) {
      const value = valueAt(data, i.path as Path);
      const s = schemaAt(i.path as Path);
      const r = s?.safeParse(value);
      if (r && !r.success) issues.push(...r.error.issues.flatMap((x) => convert(x, i.path as Path, data)));
    }
  // What the schema says about a setting written where a name belongs (expected object, received array) is
  // replaced by saying that.
  for (const m of misplacedEntries(data)) {
    const at = formatPath(m.path);
    const within = (i: SchemaIssue) => isWithin(formatPath(i.path), at);
    const first = issues.findIndex(within);
    issues = first < 0 ? [...issues, m] : issues.flatMap((i, n) => (n === first ? [m] : within(i) ? [] : [i]));
  }
  // A required key reported missing next to an unknown key that was meant to be it: one problem, the unknown key.
  const meant = new Set(issues.flatMap((i) => (i.meant ? [formatPath(i.meant)] : [])));
  return issues.filter((i) => !(i.message.startsWith('required:') && meant.has(formatPath(i.path))));
}
