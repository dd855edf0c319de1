// Warnings about a valid topology: things a user should know before bringing it up. Pure.
import { onLan, type ResolvedLab } from './model.js';

/** What to tell the user about a valid lab before it runs (exposure to a real LAN, settings the kernel adjusts). */
export function labWarnings(lab: ResolvedLab): string[] {
  const out: string[] = [];
  for (const net of lab.networks) {
    const at = `networks.${net.name}`;
    if (net.mode === 'bridged')
      out.push(
        `${at}: bridged guests are on ${net.uplink}'s LAN as themselves: every machine there can reach them (and they it), ` +
          "and they take addresses from the LAN's DHCP server; use nat or macnat to keep them behind the host",
      );
    if (net.mode === 'macnat')
      out.push(
        `${at}: macnat guests are on ${net.uplink}'s LAN under its MAC: every machine there can reach them (and they it); ` +
          `the host itself does not reach them over ${net.uplink}`,
      );
    if (onLan(net) && !net.antispoof) out.push(`${at}: antispoof is off, so a guest can send as any address onto ${net.uplink}'s LAN`);
    if (onLan(net) && !net.dhcpGuard) out.push(`${at}: dhcpGuard is off, so a guest running a DHCP server would hand out leases on ${net.uplink}'s LAN`);
    if (net.stp.enabled && net.stp.forwardDelay < 2)
      out.push(`${at}.forwardDelay: with STP on, the kernel raises ${net.stp.forwardDelay} s to 2 s (the least it allows)`);
    if (net.mode === 'bridged' && net.stp.enabled)
      out.push(`${at}.stp: with STP on, ${net.uplink}'s port listens and learns for 2 × forward delay before it forwards: the host's own traffic pauses that long at \`up\``);
  }
  return out;
}
