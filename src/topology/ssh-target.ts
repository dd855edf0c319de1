// The SSH target of a host (`local`, or `[user@]host[:port]`): parsed strictly, because it is handed to ssh as an
// argument. Anything ssh could read as an option, or a shell as something else, is refused with what it holds.
import { formatIPv4, parseIPv4 } from './ipv4.js';

/** Where a host is reached: this machine, or over SSH. */
export type SshTarget = { kind: 'local' } | { kind: 'ssh'; user?: string; host: string; port?: number };

// A user name as useradd accepts it by default (NAME_REGEX of Debian's adduser, without the trailing $).
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
// A DNS name: labels of letters, digits and inner hyphens, dot-separated.
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
// What a shell would treat as more than a word, and what an SSH target never holds.
const UNSAFE = /[\s\x00-\x1f\x7f;&|`$(){}<>\\'"*?![\]#~=%,^]/;

/** Parses an SSH target; a string is the reason it is refused. */
export function parseSshTarget(text: string): SshTarget | string {
  if (text === 'local') return { kind: 'local' };
  if (text === '') return 'expected "local" or an SSH target like root@192.0.2.10 or admin@host.example:2222';
  if (text.startsWith('-')) return `"${text}" starts with "-", which ssh would read as an option; expected user@host[:port]`;
  const bad = UNSAFE.exec(text);
  if (bad) return `"${printable(text)}" holds ${describeChar(bad[0])}; expected user@host[:port] (letters, digits, ".", "-", "_")`;
  const m = /^(?:([^@]*)@)?([^@:]+)(?::([^@:]*))?$/.exec(text);
  if (!m) return `"${text}" is not user@host[:port]`;
  const [, user, host, port] = m;
  if (user !== undefined && !USER.test(user)) return `"${user}" is not a user name (lower-case letters, digits, "_", "-", starting with a letter or "_")`;
  const ip = parseIPv4(host!);
  if (ip === null && (/^[\d.]+$/.test(host!) || !HOSTNAME.test(host!))) return `"${host}" is neither an IPv4 address nor a host name`;
  let portNumber: number | undefined;
  if (port !== undefined) {
    portNumber = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(portNumber >= 1 && portNumber <= 65535)) return `"${port}" is not a port from 1 to 65535`;
  }
  return {
    kind: 'ssh',
    ...(user !== undefined ? { user } : {}),
    host: ip === null ? host! : formatIPv4(ip),
    ...(portNumber !== undefined ? { port: portNumber } : {}),
  };
}

/** The target as ssh's destination argument (`user@host`; the port goes in -p). */
export function sshDestination(t: Extract<SshTarget, { kind: 'ssh' }>): string {
  return t.user ? `${t.user}@${t.host}` : t.host;
}

/** The IPv4 address a target names, when it names one (not a host name, not local). */
export function sshAddress(t: SshTarget): number | undefined {
  return t.kind === 'ssh' ? (parseIPv4(t.host) ?? undefined) : undefined;
}

function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  if (/\s/.test(c)) return 'white space';
  if (/[\x00-\x1f\x7f]/.test(c)) return 'a control character';
  return `"${c}"`;
}
