// The MTU guests get on OVN: Geneve over an IPv4 underlay adds 58 bytes, and OVN 23.03 sends no signal when a packet
// is too big for the tunnel (it is dropped), so guests must be told the MTU that fits.

/** Bytes Geneve adds over an IPv4 underlay (outer Ethernet 14, IPv4 20, UDP 8, Geneve 8 with OVN's 8-byte option). */
export const GENEVE_OVERHEAD = 58;
/** The MTU guests use when nothing forces it lower. */
export const GUEST_MTU = 1500;

/** A guest's MTU over an underlay of this MTU: 1500 when the underlay has room for the tunnel, else what fits. */
export function guestMtu(underlayMtu: number): number {
  return underlayMtu >= GUEST_MTU + GENEVE_OVERHEAD ? GUEST_MTU : underlayMtu - GENEVE_OVERHEAD;
}

/** The guests' MTU of a lab: from the smallest underlay among its hosts; 1500 on one host (no tunnel is crossed). */
export function labGuestMtu(underlayMtus: readonly number[]): number {
  if (underlayMtus.length <= 1) return GUEST_MTU;
  return guestMtu(Math.min(...underlayMtus));
}
