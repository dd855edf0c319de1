// Where a problem is in the topology file: a path's line and column, and YAML errors pointed at what is wrong.
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLError } from 'yaml';

/** A place in the file, 1-based. */
export interface Position {
  line: number;
  column: number;
}

const at = (lc: LineCounter, offset: number): Position => {
  const p = lc.linePos(offset);
  return { line: p.line, column: p.col };
};

function pairOf(node: unknown, key: string | number): Pair<unknown, unknown> | undefined {
  if (!isMap(node)) return undefined;
  return node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key)) as Pair<unknown, unknown> | undefined;
}

/**
 * The position of the value at `path` in the document: a scalar's own, a mapping's or list's by the key that names
 * it (where a reader looks for it); `key` asks for one key of the mapping at `path` (an unknown key). When the
 * path goes further than the file (a required key that is missing), the last place that exists.
 */
export function locate(doc: Document, lc: LineCounter, path: ReadonlyArray<string | number>, key?: string): Position | undefined {
  let node: unknown = doc.contents;
  let named: Node | undefined; // the key that names `node`, when it is a mapping's value
  for (const seg of path) {
    if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg];
      named = undefined;
      continue;
    }
    const pair = pairOf(node, seg);
    if (!pair) break;
    node = pair.value;
    named = pair.key as Node;
  }
  if (key !== undefined) {
    const k = pairOf(node, key)?.key as Node | undefined;
    if (k?.range) return at(lc, k.range[0]);
  }
  const target = isScalar(node) || !named ? (node as Node | null) : named;
  const offset = target?.range?.[0] ?? named?.range?.[0];
  return offset === undefined ? undefined : at(lc, offset);
}

// The column a line's text starts at (1-based), and that text's first word.
function lineStart(line: string): { column: number; word: string } {
  const m = /^([ \t]*(?:-[ \t]+)*)([^\s:#]*)/.exec(line)!;
  return { column: m[1]!.length + 1, word: m[2]! };
}

/**
 * A YAML error's position and message, pointed at the text that is wrong: yaml places indentation errors at the
 * start of the line, before the key that is out of line; that key, and the keys it fails to line up with, are named.
 */
export function yamlProblem(text: string, lc: LineCounter, e: YAMLError): { position: Position; message: string } {
  let offset = e.pos[0];
  let message = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  // Past the indentation to the first thing written on the line (a tab in the indentation is itself the error).
  if (e.code === 'BAD_INDENT') while (offset < text.length && text[offset] === ' ') offset++;
  const position = at(lc, offset);
  if (e.code === 'BAD_INDENT' && /same column/.test(message)) {
    const lines = text.split('\n');
    const here = lineStart(lines[position.line - 1] ?? '');
    // The key written just above, and the nearest key to the left of this one: the two columns it could mean.
    let above: { column: number; word: string } | undefined;
    let outer: { column: number; word: string } | undefined;
    for (let i = position.line - 2; i >= 0 && !outer; i--) {
      const l = lines[i]!;
      if (!l.trim() || l.trimStart().startsWith('#')) continue;
      const s = lineStart(l);
      above ??= s;
      if (s.column < here.column) outer = s;
    }
    const cols = [above, outer].filter((s, i, all) => s && s.word && all.findIndex((x) => x?.column === s.column) === i) as Array<{ column: number; word: string }>;
    if (here.word && cols.length)
      message = `"${here.word}" at column ${here.column} lines up with no key around it (${cols.map((s) => `"${s.word}" at column ${s.column}`).join(', ')}): keys of one mapping start at the same column`;
  }
  return { position, message };
}
