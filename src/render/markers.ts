// The ownership markers qnet puts on what it makes (links' aliases, processes' environment, nft tables' names),
// read back by discovery and `down`. Kept free of imports: `qnet status` with no labs loads this and little else.

/** The alias every link of a lab carries: its ownership marker. */
export function ownerMarker(lab: string): string {
  return `qnet:lab=${lab}`;
}

/** The lab an ownership marker names, or null when the text is no marker (another tool's alias, none). */
export function markerLab(alias: string | undefined): string | null {
  return /^qnet:lab=([a-z0-9-]+)$/.exec(alias ?? '')?.[1] ?? null;
}

/** The host's nft table of a lab. */
export function uplinkTable(lab: string): string {
  return `qnet-${lab}`;
}

/** The environment variables that mark a QEMU process as a lab's guest. */
export const ENV_LAB = 'QNET_LAB';
export const ENV_NODE = 'QNET_NODE';
/** Marks a lab's helper process (such as `dnsmasq:lan`). */
export const ENV_SERVICE = 'QNET_SERVICE';
/** The guest kind of a guest process (`builtin` or `image`): how `down` stops it when the state file is gone. */
export const ENV_KIND = 'QNET_KIND';
