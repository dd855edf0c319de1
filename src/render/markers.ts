// The ownership markers that processes qnet starts carry in their environment (read back by discovery and `down`).

/** The environment variables that mark a QEMU process as a lab's guest. */
export const ENV_LAB = 'QNET_LAB';
export const ENV_NODE = 'QNET_NODE';
/** Marks a lab's helper process (such as `dnsmasq:lan`). */
export const ENV_SERVICE = 'QNET_SERVICE';
/** The guest kind of a guest process (`builtin` or `image`): how `down` stops it when the state file is gone. */
export const ENV_KIND = 'QNET_KIND';
