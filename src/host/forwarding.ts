// IPv4 forwarding in the host namespace: turned on only for labs that need it, and back off when the last
// of them goes (bookkeeping in the run root, so it survives a lost lab state and is read by `down` alone).
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runRoot } from '../dirs.js';

const SYSCTL = '/proc/sys/net/ipv4/ip_forward';

/**
 * The ledger: `{"was":"0","labs":["a","b"]}`, as JSON.stringify writes it. The scripts of `qnet export --format sh`
 * join and leave it with grep and sed (render/export-sh.ts): keep this exact form, or change them with it.
 */
export function forwardingLedger(): string {
  return path.join(runRoot(), 'host-forwarding.json');
}
const ledger = forwardingLedger;

async function readLedger(): Promise<{ was: string; labs: string[] } | null> {
  try {
    return JSON.parse(await readFile(ledger(), 'utf8')) as { was: string; labs: string[] };
  } catch {
    return null;
  }
}

/** True when forwarding is on for reasons of the host's own (not turned on by qnet). */
export async function hostForwardingOnByHost(): Promise<boolean> {
  const value = (await readFile(SYSCTL, 'utf8')).trim();
  return value === '1' && !(await readLedger());
}

/** Records that `lab` needs forwarding and turns it on (remembering the value it had before qnet). */
export async function claimHostForwarding(lab: string): Promise<void> {
  await mkdir(runRoot(), { recursive: true, mode: 0o711 });
  const l = (await readLedger()) ?? { was: (await readFile(SYSCTL, 'utf8')).trim(), labs: [] };
  if (!l.labs.includes(lab)) l.labs.push(lab);
  await writeFile(ledger(), JSON.stringify(l) + '\n');
  await writeFile(SYSCTL, '1\n');
}

/** Drops `lab`'s claim; the last claim restores the value forwarding had before qnet. Returns true if restored. */
export async function releaseHostForwarding(lab: string): Promise<boolean> {
  const l = await readLedger();
  if (!l || !l.labs.includes(lab)) return false;
  l.labs = l.labs.filter((x) => x !== lab);
  if (l.labs.length) {
    await writeFile(ledger(), JSON.stringify(l) + '\n');
    return false;
  }
  await writeFile(SYSCTL, `${l.was}\n`);
  await rm(ledger(), { force: true });
  return true;
}
