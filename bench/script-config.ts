// The guest configuration the bench's plain-script and libvirt sides boot the built-in image with.
import { renderGuestConfig } from '../src/render/guest-config.js';
import type { ResolvedLab, ResolvedNode } from '../src/topology/model.js';

/**
 * A node's boot configuration as qnet renders it, without qnet's `arp` line: that permanent entry names the MAC
 * qnet gives its own bridges, which the script's and libvirt's bridges do not have (their guests find the host side
 * by ARP, as any would).
 */
export function scriptGuestConfig(lab: ResolvedLab, node: ResolvedNode): string {
  return renderGuestConfig(lab, node).replace(/^arp .*\n/gm, '');
}
