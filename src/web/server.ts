// `qnet web`: an HTTP server (Node's own http) and WebSockets (ws) over the same library calls as the CLI: the
// labs and their state, a lab's drawing (Graphviz's SVG of `qnet graph`) updated live by server-sent events, serial
// consoles and VNC screens over WebSockets, capture, link state, impairments and `check`. Loopback unless told
// otherwise; every request carries the token printed at start (see auth.ts).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { UserError } from '../errors.js';
import { parseIPv4 } from '../topology/ipv4.js';
import { COOKIE, hostAllowed, originAllowed, parseCookies, tokenCookie, tokenMatches } from './auth.js';
import { handleApi } from './api.js';
import { HttpError, send } from './http.js';
import { servePage, serveIcon } from './page.js';
import { serveStatic } from './static.js';
import { bridgeConsole, bridgeVnc, parseSocketPath } from './sockets.js';

export interface WebOptions {
  /** host:port to listen on (default 127.0.0.1:8707; port 0: any free one). */
  listen?: string;
  /** The token (random when absent). */
  token?: string;
}

export interface WebServer {
  url: string;
  /** The URL with the token, to open once (it sets the cookie and drops the token from the address bar). */
  loginUrl: string;
  token: string;
  listen: { host: string; port: number };
  close(): Promise<void>;
}

/** Parses --listen: "HOST:PORT" (an IPv4 address or localhost), "[IPv6]:PORT" or "PORT"; exit 2 on anything else. */
export function parseListen(text: string): { host: string; port: number } {
  const bad = () => new UserError(`--listen: expected HOST:PORT like 127.0.0.1:8707 (an IPv4 address, [IPv6] or localhost), got "${text}"`);
  const m = /^(\d{1,5})$/.exec(text) ?? /^\[([0-9a-fA-F:]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s]+):(\d{1,5})$/.exec(text);
  if (!m) throw bad();
  const [host, portText] = m.length === 2 ? ['127.0.0.1', m[1]!] : [m[1]!, m[2]!];
  const port = Number(portText);
  if (port > 65535) throw bad();
  if (host === 'localhost') return { host: '127.0.0.1', port };
  if (!host.includes(':') && parseIPv4(host) === null) throw bad();
  return { host, port };
}

/** True for addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  return host === '::1' || /^127\./.test(host);
}

/** Starts the web view; resolves once it listens. */
export async function startWeb(opts: WebOptions = {}): Promise<WebServer> {
  const listen = parseListen(opts.listen ?? '127.0.0.1:8707');
  const token = opts.token ?? randomBytes(24).toString('hex');
  const server = http.createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });
  let bound = listen;
  const authorized = (req: http.IncomingMessage) => tokenMatches(token, parseCookies(req.headers.cookie).get(COOKIE));

  server.on('request', (req, res) => {
    void (async () => {
      // Security headers on every answer: no framing, no sniffing, scripts only from here; never any CORS header.
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('X-Frame-Options', 'DENY');
      res.setHeader('Referrer-Policy', 'no-referrer');
      res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
      if (!hostAllowed(req.headers.host, bound)) return send(res, 421, { error: 'this server answers only to its own address (Host header)' });
      const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
      // The icon tells nothing, and browsers ask for it on any page (the 401 one too): no token needed.
      if ((url.pathname === '/favicon.ico' || url.pathname === '/favicon.svg') && (req.method === 'GET' || req.method === 'HEAD')) return await serveIcon(req, res).catch((e: Error) => send(res, 500, { error: e.message }));
      // The token once in the URL: into an HttpOnly cookie, and out of the address bar.
      const given = url.searchParams.get('token');
      if (given !== null) {
        if (!tokenMatches(token, given)) return send(res, 401, { error: 'wrong token: use the URL `qnet web` printed' });
        url.searchParams.delete('token');
        res.writeHead(303, { 'Set-Cookie': tokenCookie(token), Location: url.pathname + (url.search || '') + (url.hash || '') });
        return void res.end();
      }
      if (!authorized(req)) return send(res, 401, { error: 'no token: open the URL `qnet web` printed (it has ?token=…)' });
      // Changes come only from this page: a JSON body (no form can send one) and, when the browser says, our Origin.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        if (req.headers.origin !== undefined && !originAllowed(req.headers.origin, req.headers.host)) return send(res, 403, { error: 'cross-origin request refused' });
        if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return send(res, 415, { error: 'send JSON (Content-Type: application/json)' });
      }
      try {
        if (url.pathname.startsWith('/api/')) return await handleApi(req, res, url);
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
        // The page comes with the labs in it: its first paint shows them, before any request of its own is answered.
        if (url.pathname === '/' || url.pathname === '/index.html') return await servePage(req, res);
        return await serveStatic(req, res, url.pathname);
      } catch (e) {
        if (res.headersSent) return void res.destroy();
        if (e instanceof HttpError) return send(res, e.status, { error: e.message });
        if (e instanceof UserError) return send(res, 400, { error: e.message });
        return send(res, 500, { error: (e as Error).message });
      }
    })();
  });

  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
    };
    if (!hostAllowed(req.headers.host, bound)) return refuse(421, 'wrong Host');
    // A WebSocket is not bound by the same-origin policy: the Origin check is what stops another site's page.
    if (!originAllowed(req.headers.origin, req.headers.host)) return refuse(403, 'cross-origin WebSocket refused');
    if (!authorized(req)) return refuse(401, 'no token');
    const target = parseSocketPath(new URL(req.url ?? '/', 'http://x').pathname);
    if (!target) return refuse(404, 'no such socket');
    wss.handleUpgrade(req, socket, head, (ws) => {
      void (target.kind === 'console' ? bridgeConsole(ws, target.lab, target.node) : bridgeVnc(ws, target.lab, target.node));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new UserError(`--listen ${listen.host}:${listen.port}: the address is in use (another \`qnet web\`?); choose another port`) : e),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  bound = { host: listen.host, port: addr.port };
  const hostPart = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `http://${hostPart}:${addr.port}/`;
  return {
    url,
    loginUrl: `${url}?token=${token}`,
    token,
    listen: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
