// Loading a topology: YAML text -> schema -> normalization -> rules, all before any side effect.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { UserError, type InputIssue } from '../errors.js';
import type { ResolvedLab } from './model.js';
import { normalize, type NormalizeOptions } from './normalize.js';
import { formatPath } from './paths.js';
import { checkRules } from './rules.js';
import { resolveChecks } from '../check/declared.js';
import { TopologySchema } from './schema.js';

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

function zodIssues(error: z.ZodError): InputIssue[] {
  return error.issues.map((i) => {
    let message = i.message;
    if (i.code === 'unrecognized_keys') message = `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    if (i.code === 'invalid_key') message = [...new Set(i.issues.map((x) => x.message))].join('; ');
    if (i.code === 'invalid_type' && /received undefined/.test(i.message)) message = `required: ${i.message.replace(/, received undefined$/, '')}`;
    return { path: formatPath(i.path), message };
  });
}

/** Parses and validates topology text; throws UserError listing every problem with its path. */
export function parseTopology(text: string, source = 'topology', opts: NormalizeOptions = {}): ResolvedLab {
  if (Buffer.byteLength(text) > MAX_TOPOLOGY_BYTES)
    throw new UserError(`${source}: the file is larger than ${MAX_TOPOLOGY_BYTES} bytes; a topology is far smaller`);
  let data: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
    const errs = doc.errors;
    if (errs.length) {
      const seen = new Set<string>();
      const issues = errs.map((e) => ({
        path: e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(yaml)',
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
      })).filter((i) => !seen.has(i.message) && !!seen.add(i.message)).slice(0, 10);
      throw new UserError(formatIssues(source, issues), issues);
    }
    data = doc.toJS({ maxAliasCount: 50 });
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
  return validateTopology(data, source, opts);
}

/** Validates an already-parsed topology object (the library entry for callers that build topologies in code). */
export function validateTopology(data: unknown, source = 'topology', opts: NormalizeOptions = {}): ResolvedLab {
  const parsed = TopologySchema.safeParse(data);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new UserError(formatIssues(source, issues), issues);
  }
  const issues: InputIssue[] = [];
  const lab = normalize(parsed.data, issues, opts);
  checkRules(lab, issues);
  // Declared checks name endpoints of the reachability model (pure, in check/): resolved once the rest holds.
  if (!issues.length) issues.push(...resolveChecks(lab).issues);
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

/** One message for all issues: `file: path: what`, a line each. */
export function formatIssues(source: string, issues: InputIssue[]): string {
  const lines = issues.map((i) => `  ${i.path}: ${i.message}`);
  return `${source}: invalid topology (${issues.length} problem${issues.length > 1 ? 's' : ''})\n${lines.join('\n')}`;
}
