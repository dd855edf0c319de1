// Loading a topology: YAML text -> schema -> normalization -> rules, all before any side effect. When the schema
// refuses parts of the file, normalization and the rules still run on the rest, so one run lists every problem.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { UserError, type InputIssue } from '../errors.js';
import { Findings } from './findings.js';
import type { ResolvedLab } from './model.js';
import { normalize, type NormalizeOptions } from './normalize.js';
import { validPart } from './partial.js';
import { formatPath, parsePath } from './paths.js';
import { locate, yamlProblem, type Position } from './positions.js';
import { checkRules } from './rules.js';
import { resolveChecks } from '../check/declared.js';
import { TopologySchema, type Topology } from './schema.js';
import { schemaIssues } from './schema-issues.js';

export const MAX_TOPOLOGY_BYTES = 1024 * 1024;
const MAX_DEPTH = 32;

function depthOf(value: unknown, limit: number): number {
  // Iterative so that a hostile document cannot overflow the stack here.
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    max = Math.max(max, d);
    if (max > limit) return max;
    for (const child of Object.values(v as object)) stack.push([child, d + 1]);
  }
  return max;
}

function protoKeyPath(value: unknown, path: Array<string | number> = []): string | null {
  if (value === null || typeof value !== 'object') return null;
  if (!Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, '__proto__')) return formatPath([...path, '__proto__']);
  for (const [k, v] of Object.entries(value as object)) {
    const found = protoKeyPath(v, [...path, Array.isArray(value) ? Number(k) : k]);
    if (found) return found;
  }
  return null;
}

/** Where in the file a path is (and, for an unknown key, that key): absent for topologies built in code. */
type Locator = (path: ReadonlyArray<string | number>, key?: string) => Position | undefined;

const placed = (issue: InputIssue, pos: Position | undefined): InputIssue => (pos ? { ...issue, line: pos.line, column: pos.column } : issue);

/** Parses and validates topology text; throws UserError listing every problem with its path. */
export function parseTopology(text: string, source = 'topology', opts: NormalizeOptions = {}): ResolvedLab {
  if (Buffer.byteLength(text) > MAX_TOPOLOGY_BYTES)
    throw new UserError(`${source}: the file is larger than ${MAX_TOPOLOGY_BYTES} bytes; a topology is far smaller`);
  let data: unknown;
  let where: Locator;
  try {
    const lc = new LineCounter();
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true, lineCounter: lc });
    const errs = doc.errors;
    if (errs.length) {
      const seen = new Set<string>();
      const issues = errs
        .map((e) => {
          const { position, message } = yamlProblem(text, lc, e);
          return { path: position.line ? `line ${position.line}, column ${position.column}` : '(yaml)', message };
        })
        .filter((i) => !seen.has(i.message) && !!seen.add(i.message))
        .slice(0, 10);
      throw new UserError(formatIssues(source, issues), issues);
    }
    data = doc.toJS({ maxAliasCount: 50 });
    where = (p, key) => locate(doc, lc, p, key);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = e instanceof RangeError ? 'the document is nested too deeply' : (e as Error).message.split('\n')[0];
    const issues = [{ path: '(yaml)', message: msg ?? 'unreadable YAML' }];
    throw new UserError(formatIssues(source, issues), issues);
  }
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) {
    const issues = [{ path: '(top level)', message: 'expected a mapping with "name", "networks" and "nodes"' }];
    throw new UserError(formatIssues(source, issues), issues);
  }
  if (depthOf(data, MAX_DEPTH) > MAX_DEPTH) {
    const issues = [{ path: '(top level)', message: `nested more than ${MAX_DEPTH} levels deep; a topology is flat` }];
    throw new UserError(formatIssues(source, issues), issues);
  }
  const proto = protoKeyPath(data);
  if (proto) {
    // zod's records skip this key without a word: a node named __proto__ would silently vanish.
    const issues = [{ path: proto, message: '"__proto__" is not allowed as a name' }];
    throw new UserError(formatIssues(source, issues), issues);
  }
  return validate(data, source, opts, where);
}

/** Validates an already-parsed topology object (the library entry for callers that build topologies in code). */
export function validateTopology(data: unknown, source = 'topology', opts: NormalizeOptions = {}): ResolvedLab {
  return validate(data, source, opts, () => undefined);
}

// Schema, then normalization and rules: on the whole topology, or on the part of it that the schema accepts.
function validate(data: unknown, source: string, opts: NormalizeOptions, where: Locator): ResolvedLab {
  const parsed = TopologySchema.safeParse(data);
  let topology: Topology;
  let refused: InputIssue[] = [];
  let findings: Findings;
  if (parsed.success) {
    topology = parsed.data;
    findings = new Findings();
  } else {
    const found = schemaIssues(parsed.error, data);
    refused = found.map((i) => placed({ path: formatPath(i.path), message: i.message }, where(i.path, i.key)));
    const part = validPart(data);
    if (!part) throw new UserError(formatIssues(source, refused), refused);
    topology = part.topology;
    // What the schema left out is unknown to the later stages, and so is a key that a misspelt one was meant to be.
    findings = new Findings([...part.dropped, ...found.flatMap((i) => (i.meant ? [formatPath(i.meant)] : []))]);
  }
  const lab = normalize(topology, findings, opts);
  checkRules(lab, findings);
  // Declared checks name endpoints of the reachability model (pure, in check/): resolved once the rest holds.
  if (!refused.length && !findings.issues.length) findings.issues.push(...resolveChecks(lab).issues);
  // In the order of the file, top to bottom, where it is known (a topology built in code keeps the stages' order).
  const issues = [...refused, ...findings.issues.map((i) => placed(i, where(parsePath(i.path))))].sort(
    (a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0),
  );
  if (issues.length) throw new UserError(formatIssues(source, issues), issues);
  return lab;
}

/** Reads and validates a topology file. */
export async function loadTopology(file: string): Promise<ResolvedLab> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read the topology file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // Images and ISOs named in the file are found relative to it.
  return parseTopology(text, file, { baseDir: path.dirname(path.resolve(file)) });
}

/** One message for all issues: `file: path: what (line, column)`, a line each. */
export function formatIssues(source: string, issues: InputIssue[]): string {
  const lines = issues.map((i) => `  ${i.path}: ${i.message}${i.line ? ` (line ${i.line}, column ${i.column})` : ''}`);
  return `${source}: invalid topology (${issues.length} problem${issues.length > 1 ? 's' : ''})\n${lines.join('\n')}`;
}
