// Pure IPv4 and MAC address helpers: strict parsing, subnet arithmetic, formatting.

/** An IPv4 address with its prefix length, as on an interface or a subnet. */
export interface Cidr {
  ip: number; // unsigned 32-bit
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a dotted-quad IPv4 address strictly (no leading zeros, exactly four octets); null if invalid. */
export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return null;
    value = value * 256 + Number(p);
  }
  return value >>> 0;
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIPv4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

/** Parses `a.b.c.d/len`; when the prefix is absent, `defaultPrefix` is used (null if none is given). */
export function parseCidr(text: string, defaultPrefix?: number): Cidr | null {
  const slash = text.indexOf('/');
  const ipText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIPv4(ipText);
  if (ip === null) return null;
  if (slash < 0) return defaultPrefix === undefined ? null : { ip, prefix: defaultPrefix };
  const pText = text.slice(slash + 1);
  if (!/^(3[0-2]|[12]?\d)$/.test(pText)) return null;
  return { ip, prefix: Number(pText) };
}

/** The netmask of a prefix length as an unsigned number. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The network address of an address/prefix. */
export function networkOf(c: Cidr): number {
  return (c.ip & maskOf(c.prefix)) >>> 0;
}

/** The broadcast address of an address/prefix. */
export function broadcastOf(c: Cidr): number {
  return (networkOf(c) | ~maskOf(c.prefix)) >>> 0;
}

/** True when the address lies inside the subnet. */
export function contains(subnet: Cidr, ip: number): boolean {
  return (ip & maskOf(subnet.prefix)) >>> 0 === networkOf(subnet);
}

/** True when two subnets share at least one address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(p);
  return (a.ip & m) >>> 0 === (b.ip & m) >>> 0;
}

/** Formats address/prefix. */
export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.ip)}/${c.prefix}`;
}

/** True when `c` is a usable host address of its subnet (not the network or broadcast address, for prefixes < 31). */
export function isHostAddress(c: Cidr): boolean {
  if (c.prefix >= 31) return true;
  return c.ip !== networkOf(c) && c.ip !== broadcastOf(c);
}

/** Normalizes a MAC to lower case with colons; null if it is not six hex octets. */
export function parseMac(text: string): string | null {
  const m = text.trim().toLowerCase();
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m)) return null;
  return m;
}

/** True for a unicast, non-zero MAC (what a NIC may use). */
export function isUsableMac(mac: string): boolean {
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 1) === 0 && mac !== '00:00:00:00:00:00';
}
