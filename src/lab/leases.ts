// Reading a lab's DHCP leases from dnsmasq's lease files.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dnsmasqFiles } from '../render/dnsmasq.js';
import { labDir } from '../dirs.js';
import { labState } from './state.js';

export interface Lease {
  network: string;
  mac: string;
  ip: string;
  hostname: string;
  expires: string;
}

/** Parses a dnsmasq lease file (`expiry mac ip hostname client-id` per line). */
export function parseLeases(text: string, network: string): Lease[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[0]!))
    .map(([exp, mac, ip, host]) => ({
      network,
      mac: mac!,
      ip: ip!,
      hostname: host === '*' ? '' : host!,
      expires: exp === '0' ? 'never' : new Date(Number(exp) * 1000).toISOString(),
    }));
}

/** The current leases of one of a lab's DHCP networks (empty when dnsmasq has handed out none yet). */
export async function networkLeases(lab: string, network: string): Promise<Lease[]> {
  const files = dnsmasqFiles(path.join(labDir(lab), 'dnsmasq'), network);
  return parseLeases(await readFile(files.leases, 'utf8').catch(() => ''), network);
}

/** The current leases of every DHCP network of a running lab. */
export async function labLeases(lab: string): Promise<Lease[]> {
  const state = await labState(lab);
  const out: Lease[] = [];
  for (const net of state.lab.networks.filter((n) => n.dhcp)) out.push(...(await networkLeases(lab, net.name)));
  return out;
}
