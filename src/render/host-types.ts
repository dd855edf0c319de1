// What qnet observes of a host interface (addresses and routes as `ip -j` reports them): read by host/, rendered
// back by render/ (moved and given back at `down`), so the types live here, below both.

/** An address of an interface, as `ip -j addr` reports it. */
export interface HostAddr {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope: string;
  /** Seconds left, or 'forever'. */
  validLft: number | 'forever';
  preferredLft: number | 'forever';
  noprefixroute: boolean;
  /** Assigned by a DHCP client or SLAAC (it has a lifetime). */
  dynamic: boolean;
}

/** A route through an interface, as `ip -j route show table all` reports it. */
export interface HostRoute {
  family: 'inet' | 'inet6';
  type?: string;
  dst: string;
  gateway?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  table?: string;
  onlink?: boolean;
}

/** What a kept overlay records of the base it was made on: the overlay is refused if the base changed since. */
export interface BaseIdentity {
  path: string;
  format: string;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
}
