// WebSockets of the web view: a node's serial console (text, both ways; the console log's tail first, as
// scrollback) and an image node's VNC screen (the RFB bytes, both ways, for noVNC). A console socket of QEMU takes
// one client: every page watching one node shares one connection, closed when the last page leaves.
import { open } from 'node:fs/promises';
import net from 'node:net';
import type { WebSocket } from 'ws';
import { nodeDir } from '../dirs.js';
import { nodeFiles } from '../render/qemu.js';
import { NAME_PATTERN } from '../topology/names.js';

/** How much of the console log a new viewer gets as scrollback. */
const SCROLLBACK = 64 * 1024;

/** The WebSocket a path names: /ws/console/LAB/NODE or /ws/vnc/LAB/NODE (names checked). */
export function parseSocketPath(p: string): { kind: 'console' | 'vnc'; lab: string; node: string } | null {
  const m = /^\/ws\/(console|vnc)\/([^/]+)\/([^/]+)$/.exec(p);
  if (!m || !NAME_PATTERN.test(m[2]!) || !NAME_PATTERN.test(m[3]!)) return null;
  return { kind: m[1] as 'console' | 'vnc', lab: m[2]!, node: m[3]! };
}

interface Hub {
  sock: net.Socket;
  viewers: Set<WebSocket>;
}
const hubs = new Map<string, Hub>();

async function runningNode(lab: string, node: string) {
  const { readState } = await import('../lab/state.js');
  const state = await readState(lab);
  const n = state?.lab.nodes.find((x) => x.name === node);
  return state && n ? { state, node: n } : null;
}

/** Joins a browser to a node's serial console. */
export async function bridgeConsole(ws: WebSocket, lab: string, node: string): Promise<void> {
  // The browser may leave while this is still looking: then it never joins (a viewer that closed before it joined
  // would hold QEMU's console forever).
  let left = false;
  ws.once('close', () => (left = true));
  const found = await runningNode(lab, node);
  if (!found) return void ws.close(4404, `no node ${node} in a running lab ${lab}`);
  const files = nodeFiles(nodeDir(lab, node));
  // Scrollback: the end of the console log, starting at a line.
  try {
    const fh = await open(files.consoleLog, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - SCROLLBACK);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      const text = buf.toString('utf8');
      ws.send(start > 0 ? text.slice(text.indexOf('\n') + 1) : text);
    } finally {
      await fh.close();
    }
  } catch {
    /* no log yet */
  }
  if (left) return;
  const key = `${lab}/${node}`;
  let hub = hubs.get(key);
  if (!hub) {
    const sock = net.connect(files.console);
    const h: Hub = { sock, viewers: new Set() };
    hub = h;
    hubs.set(key, h);
    sock.on('data', (d) => {
      for (const v of h.viewers) v.send(d.toString('utf8'));
    });
    const end = (why: string) => {
      hubs.delete(key);
      for (const v of h.viewers) v.close(1011, why);
    };
    sock.once('error', (e) => end(`console: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    sock.once('close', () => end('the guest is gone'));
  }
  const h = hub;
  h.viewers.add(ws);
  ws.on('message', (d: Buffer) => h.sock.write(d));
  ws.once('close', () => {
    h.viewers.delete(ws);
    if (!h.viewers.size) {
      hubs.delete(key);
      h.sock.destroy();
    }
  });
}

/** Joins a browser (noVNC) to an image node's VNC screen. */
export async function bridgeVnc(ws: WebSocket, lab: string, node: string): Promise<void> {
  let left = false;
  ws.once('close', () => (left = true));
  const found = await runningNode(lab, node);
  if (!found?.node.image?.vnc) return void ws.close(4404, `${node} has no screen (display: vnc)`);
  const { imageNodeFiles } = await import('../guest/image-node.js');
  if (left) return;
  const sock = net.connect(imageNodeFiles(lab, found.node).vnc);
  sock.on('data', (d) => ws.send(d, { binary: true }));
  ws.on('message', (d: Buffer) => sock.write(d));
  sock.once('error', () => ws.close(1011, 'the screen is gone'));
  sock.once('close', () => ws.close(1000, 'the screen closed'));
  ws.once('close', () => sock.destroy());
}
