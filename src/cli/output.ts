// Terminal output for the CLI: step lines with timings, tables, colours only on a TTY.
import type { Reporter } from '../lab/up.js';
import type { LabStatus } from '../lab/status.js';
import type { ResolvedNode } from '../topology/model.js';
import { imageNodeFiles } from '../guest/image-node.js';
import { formatSize } from '../topology/size.js';

import { bold, dim, fmtMs, green, red, table } from './term.js';

export { bold, dim, fmtMs, green, red, table, yellow } from './term.js';

/** A reporter that prints one line per finished step, with its duration. */
export function consoleReporter(stream: NodeJS.WritableStream = process.stderr): Reporter {
  return {
    step(title, ms, ok) {
      stream.write(`${ok ? green('✓') : red('✗')} ${title}${ok ? dim(`  ${fmtMs(ms)}`) : ''}\n`);
    },
    info(message) {
      stream.write(`${dim('·')} ${message}\n`);
    },
  };
}

/** Human rendering of a lab's status. */
export function renderStatus(s: LabStatus): string {
  const out: string[] = [];
  out.push(`${bold(`lab ${s.lab}`)}  ${s.status}  namespace ${s.netns}${s.accel ? `  accel ${s.accel}` : ''}${s.source ? `  from ${s.source}` : ''}`);
  if (s.leftovers.length) out.push(`  left over: ${s.leftovers.join(', ')} (run \`qnet down ${s.lab}\`)`);
  if (s.note) out.push(`  ${s.note}`);
  if (s.nodes.length)
    out.push(
      table(
        ['NODE', 'STATE', 'PID', 'NIC', 'MAC', 'MODEL', 'TAP', 'NETWORK', 'ADDRESSES'],
        s.nodes.flatMap((n) =>
          (n.nics.length ? n.nics : [undefined]).map((nic, i) => [
            i === 0 ? n.name : '',
            i === 0 ? `${n.state}${n.state === 'running' && n.start === 'restored' ? ' (restored)' : ''}` : '',
            // The pid of a guest that is gone names no process (it may be another's by now).
            i === 0 ? (n.state === 'running' ? String(n.pid ?? '-') : '-') : '',
            nic ? `${nic.guestIf}${nic.link === 'down' ? ' (link down)' : ''}` : '-',
            nic?.mac ?? '',
            nic?.model ?? '',
            nic ? `${nic.tap ?? ''}${nic.bound === undefined ? '' : nic.bound ? ' (bound)' : ' (not bound)'}` : '',
            nic?.network ?? '',
            nic
              ? `${nic.addresses.join(' ')}${nic.dhcp ? (nic.addresses.length ? ' (dhcp)' : 'dhcp, no lease yet') : ''}${nic.port ? ` [${nic.port}]` : ''}` +
                (nic.vlans ?? []).map((v) => ` ${v.name}: ${v.addresses.join(' ') || '-'}`).join('')
              : '',
          ]),
        ),
      ),
    );
  if (s.networks.length)
    out.push(
      table(
        ['NETWORK', 'BRIDGE', 'SUBNET', 'HOST ADDRESS', 'TAPS'],
        s.networks.map((n) => [
          n.name,
          (n.bridge ? `${n.bridge}${n.vlans ? ' (VLANs)' : ''}` : n.mode === 'link' ? '(link: tc mirred)' : `(${n.mode} link)`) + (n.present ? '' : ' (missing)'),
          [n.subnet, ...Object.entries(n.vlans?.subnets ?? {}).map(([id, c]) => `VLAN ${id} ${c}`)].filter(Boolean).join(', ') || '-',
          (n.address ?? (n.uplink ? `${n.mode} on ${n.uplink}` : '-')) + (n.address && n.vlans ? ` (VLAN ${n.vlans.host})` : ''),
          n.taps.join(' ') || '-',
        ]),
      ),
    );
  const impaired = s.nodes.flatMap((n) => n.nics.filter((x) => x.impair).map((x) => `${n.name} ${x.guestIf}: ${x.impair}`));
  if (impaired.length) out.push(`impairments in force: ${impaired.join('; ')}`);
  if (s.services.length)
    out.push(table(['SERVICE', 'PID', 'STATE'], s.services.map((x) => [x.name, String(x.pid), x.state === 'running' ? x.state : red(x.state)])));
  for (const n of s.nodes)
    if (n.image)
      out.push(
        `${bold(n.name)}: image ${n.image.base} (${n.image.format ?? '?'}), ${n.image.persist ? 'kept ' : ''}overlay ${n.image.overlay}${n.image.overlayBytes !== undefined ? ` (${formatSize(n.image.overlayBytes)} written)` : ''}, config ${n.image.config}, ready ${n.image.ready}` +
          (n.image.vnc ? `\n  screen: VNC on ${n.image.vnc}` : '') +
          (n.image.config === 'cloud-init' ? `\n  shell: \`qnet ssh ${s.lab} ${n.name}\`, \`qnet exec ${s.lab} ${n.name} -- CMD\`, \`qnet console ${s.lab} ${n.name}\`` : `\n  console: \`qnet console ${s.lab} ${n.name}\``),
      );
  for (const n of s.nodes)
    if (n.monitorNetwork) out.push(`${bold(`${n.name}: info network`)}\n  ${n.monitorNetwork.trim().split('\n').join('\n  ')}`);
  return out.join('\n');
}

/** How to reach an image node's screen (display: vnc): its VNC socket, and the host port when one was asked for. */
export function vncHint(lab: string, node: ResolvedNode): string {
  const sock = imageNodeFiles(lab, node).vnc;
  const port = node.image?.vnc?.port;
  return port !== undefined
    ? `VNC on 127.0.0.1:${port} (\`vncviewer 127.0.0.1::${port}\`), or the socket ${sock}`
    : `VNC on the Unix socket ${sock} (TigerVNC: \`vncviewer ${sock}\`; root only)`;
}
