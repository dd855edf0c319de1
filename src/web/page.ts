// The page as the server sends it: web/index.html with the labs as they are now written into it (their list, and the
// same list as JSON for the script), so that the first paint already shows them and the script starts from them,
// without waiting for a request of its own. Also the icon. Rendering is pure; serving reads the labs' status.
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web');

/** One lab as the page lists it (and /api/labs answers). */
export interface LabSummary {
  lab: string;
  status: string;
  nodes: number;
  running: number;
  source?: string;
}

/** The labs of this host as the page lists them. */
export async function labSummaries(): Promise<LabSummary[]> {
  const { allStatus } = await import('../lab/status.js');
  const all = await allStatus();
  return all.map((s) => ({ lab: s.lab, status: s.status, nodes: s.nodes.length, running: s.nodes.filter((n) => n.state === 'running').length, ...(s.source ? { source: s.source } : {}) }));
}

/** The text of a lab's entry in the list (web/app.js writes the same). */
export function labLine(l: LabSummary): string {
  return `${l.lab} (${l.status}, ${l.running}/${l.nodes})`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The template's places the labs go (each must be there exactly once: a changed index.html fails the unit test).
const LIST = /<ul id="lab-list">[\s\S]*?<\/ul>/;
const NONE = '<p class="hint" id="no-labs" hidden>';
const HEAD_END = '</head>';

/**
 * index.html with `labs` in it: the list's entries (links as web/app.js makes them), the "no lab is up" hint shown
 * when there is none, and the labs as JSON in a data block (not a script: nothing runs from it, and "<" is escaped so
 * that no text in it can close the element).
 */
export function renderPage(template: string, labs: LabSummary[]): string {
  for (const [what, found] of [['the lab list', LIST.test(template)], ['the no-labs hint', template.includes(NONE)], ['</head>', template.includes(HEAD_END)]] as const)
    if (!found) throw new Error(`web/index.html lacks ${what}`);
  const items = labs.map((l) => `<li><a href="#lab=${encodeURIComponent(l.lab)}" data-lab="${escapeHtml(l.lab)}">${escapeHtml(labLine(l))}</a></li>`).join('');
  const json = JSON.stringify(labs).replace(/</g, '\\u003c');
  return template
    .replace(LIST, () => `<ul id="lab-list">${items}</ul>`)
    .replace(NONE, () => (labs.length ? NONE : NONE.replace(' hidden', '')))
    .replace(HEAD_END, () => `<script type="application/json" id="labs-data">${json}</script>\n${HEAD_END}`);
}

/** Serves the page with the labs of this moment in it (never cached: it is a snapshot). */
export async function servePage(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const [template, labs] = await Promise.all([readFile(path.join(WEB, 'index.html'), 'utf8'), labSummaries()]);
  const body = renderPage(template, labs);
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Serves the icon (web/favicon.svg), also as /favicon.ico, where browsers and tools look for one by default. */
export async function serveIcon(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const svg = await readFile(path.join(WEB, 'favicon.svg'));
  res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'max-age=86400' });
  res.end(req.method === 'HEAD' ? undefined : svg);
}
