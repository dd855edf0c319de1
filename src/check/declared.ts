// Declared expectations (`checks:` in the topology), resolved to the model's endpoints and judged (pure).
import { nicName, subInterfaceName, type DeclaredCheck, type ResolvedLab } from '../topology/model.js';
import { destinationAddress, endpoints, predictOne, type Destination, type LiveFacts, type Source, type Verdict } from './model.js';

/** A declared check with its endpoints found. */
export interface ResolvedCheck {
  check: DeclaredCheck;
  index: number;
  source: Source;
  destination: Destination;
  /** How it reads: "deb2 → deb3 ping, expect pass". */
  label: string;
}

/** Resolves `from` and `to` of every declared check; problems come back with their topology paths. */
export function resolveChecks(lab: ResolvedLab, live: LiveFacts = {}): { checks: ResolvedCheck[]; issues: Array<{ path: string; message: string }> } {
  const { sources, destinations } = endpoints(lab, live);
  const checks: ResolvedCheck[] = [];
  const issues: Array<{ path: string; message: string }> = [];
  (lab.checks ?? []).forEach((check, index) => {
    const at = (f: string) => `checks[${index}].${f}`;
    const source = findSource(lab, sources, check.from);
    if (typeof source === 'string') issues.push({ path: at('from'), message: source });
    const destination = findDestination(lab, destinations, check.to);
    if (typeof destination === 'string') issues.push({ path: at('to'), message: destination });
    if (typeof source === 'string' || typeof destination === 'string') return;
    if (source.kind === 'node' && destination.node === source.node && destination.kind === 'node')
      issues.push({ path: at('to'), message: `"${check.to}" is ${check.from} itself` });
    else if (source.kind !== 'node' && destination.kind === source.kind)
      issues.push({ path: at('to'), message: `"${check.to}" is where the check starts` });
    else
      checks.push({
        check,
        index,
        source,
        destination,
        label: `${check.from} → ${check.to}${destination.kind === 'node' || destination.kind === 'host' ? ` (${destinationAddress(destination)})` : ''} ${check.probe === 'tcp' ? `tcp ${check.port}` : 'ping'}, expect ${check.expect}`,
      });
  });
  return { checks, issues };
}

function findSource(lab: ResolvedLab, sources: Source[], ref: string): Source | string {
  const s = sources.find((x) => x.id === ref);
  if (s) return s;
  if (ref === 'host') return 'this lab has no host side (no network with an address, no user-mode NIC)';
  if (ref === 'upstream') return 'this lab has no upstream to start from (only labs with a nat or routed network have one)';
  return `unknown node "${ref}" (nodes: ${lab.nodes.map((n) => n.name).join(', ')}; or "host", "upstream")`;
}

function findDestination(lab: ResolvedLab, destinations: Destination[], ref: string): Destination | string {
  if (ref === 'upstream')
    return destinations.find((d) => d.kind === 'upstream') ?? 'this lab has no upstream (no nat or routed network, no user-mode NIC, no host side)';
  const host = /^host:(.+)$/.exec(ref);
  if (host) {
    const d = destinations.find((x) => x.kind === 'host' && x.network === host[1]);
    const sides = destinations.filter((x) => x.kind === 'host').map((x) => x.id);
    return d ?? `"${host[1]}" is not a network with a host side (${sides.length ? `these are: ${sides.join(', ')}` : 'this lab has none'})`;
  }
  const m = /^([^:]+)(?::(.+))?$/.exec(ref);
  const node = m ? lab.nodes.find((n) => n.name === m[1]) : undefined;
  if (!m || !node) return `unknown node "${m?.[1] ?? ref}" (nodes: ${lab.nodes.map((n) => n.name).join(', ')}; or "host:NETWORK", "upstream")`;
  const own = destinations.filter((d) => d.kind === 'node' && d.node === node.name);
  if (m[2] === undefined) return own[0] ?? `${node.name} has no address on a lab network to reach it by`;
  const nic = node.nics.find((n) => nicName(node, n) === m[2] || String(n.index) === m[2]);
  // A VLAN sub-interface (r1:eth0.10): its first address.
  const sub = node.nics.flatMap((n) => (n.vlans ?? []).map((v) => subInterfaceName(nicName(node, n), v.id))).find((x) => x === m[2]);
  if (sub) return own.find((d) => d.id === ref || d.id === `${ref}#1`) ?? `${node.name} ${sub} has no address to reach it by`;
  if (!nic) return `${node.name} has no NIC "${m[2]}" (its NICs: ${[...node.nics.map((n) => nicName(node, n)), ...node.nics.flatMap((n) => (n.vlans ?? []).map((v) => subInterfaceName(nicName(node, n), v.id)))].join(', ')})`;
  return own.find((d) => d.nic === nic.index) ?? `${node.name} ${nicName(node, nic)} has no address on a lab network to reach it by`;
}

/** A declared check's prediction, and whether it meets the expectation. */
export function predictCheck(lab: ResolvedLab, c: ResolvedCheck, live: LiveFacts = {}): { verdict: Verdict; meets: boolean } {
  const verdict = predictOne(lab, c.source, c.destination, c.check.probe, live) ?? { ok: false, via: '', hops: [], reason: 'the probe does not apply' };
  return { verdict, meets: verdict.ok === (c.check.expect === 'pass') };
}
