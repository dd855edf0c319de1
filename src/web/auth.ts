// Who may use the web view (pure): the token printed at start (in the URL once, then an HttpOnly, SameSite=Strict
// cookie), a Host header that names this server (no DNS rebinding), and for WebSockets and changes an Origin that
// is this server itself (no cross-site WebSocket hijacking, no cross-site requests).
import { timingSafeEqual } from 'node:crypto';

export const COOKIE = 'qnet_token';

/** The cookies of a request, by name. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** True when `given` is the token (compared in constant time). */
export function tokenMatches(token: string, given: string | undefined | null): boolean {
  if (!given) return false;
  const a = Buffer.from(token);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The Set-Cookie header that keeps the token in the browser (HttpOnly: no script reads it; Strict: no other site sends it). */
export function tokenCookie(token: string): string {
  return `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

/** True when a request's Host header names this server (its listen address and port, or localhost on loopback). */
export function hostAllowed(host: string | undefined, listen: { host: string; port: number }): boolean {
  if (!host) return false;
  const names = new Set([`${listen.host}:${listen.port}`]);
  if (listen.host === '127.0.0.1' || listen.host === '::1' || listen.host === 'localhost') for (const h of ['127.0.0.1', 'localhost', '[::1]']) names.add(`${h}:${listen.port}`);
  if (listen.host.includes(':')) names.add(`[${listen.host}]:${listen.port}`);
  return names.has(host.toLowerCase());
}

/** True when an Origin header is this server's own (`http://` + the Host the browser used). */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  return !!origin && !!host && origin.toLowerCase() === `http://${host.toLowerCase()}`;
}
