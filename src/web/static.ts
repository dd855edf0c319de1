// The web view's files: the page (web/ in the package) and the browser libraries it uses, from the package's own
// node_modules (xterm.js, noVNC): nothing from a CDN, nothing from outside these folders.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from './http.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** URL prefixes and the folders they serve (only these, and only files under them). */
const MOUNTS: Array<{ prefix: string; dir: string }> = [
  { prefix: '/static/', dir: path.join(ROOT, 'web') },
  { prefix: '/vendor/xterm/', dir: path.join(ROOT, 'node_modules', '@xterm', 'xterm') },
  { prefix: '/vendor/novnc/', dir: path.join(ROOT, 'node_modules', '@novnc', 'novnc') },
];
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** The file a URL path names, or null (404) when it is outside every mount, hidden, or not a file. */
export async function resolveStatic(urlPath: string): Promise<string | null> {
  if (urlPath === '/' || urlPath === '/index.html') urlPath = '/static/index.html';
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const mount = MOUNTS.find((m) => decoded.startsWith(m.prefix));
  if (!mount) return null;
  const rel = decoded.slice(mount.prefix.length);
  if (rel.split('/').some((seg) => seg === '..' || seg.startsWith('.'))) return null;
  const file = path.resolve(mount.dir, rel);
  try {
    // The real path too must stay inside (no symbolic link out of the folder).
    const [realDir, realFile] = await Promise.all([realpath(mount.dir), realpath(file)]);
    if (!realFile.startsWith(realDir + path.sep)) return null;
    if (!(await stat(realFile)).isFile()) return null;
    return TYPES[path.extname(realFile)] ? realFile : null;
  } catch {
    return null;
  }
}

/** Serves a static file, or 404. */
export async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, urlPath: string): Promise<void> {
  const file = await resolveStatic(urlPath);
  if (!file) throw new HttpError(404, 'not found');
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)]!, 'Cache-Control': 'no-cache' });
  if (req.method === 'HEAD') return void res.end();
  await new Promise<void>((resolve, reject) => createReadStream(file).once('error', reject).once('end', resolve).pipe(res));
}
