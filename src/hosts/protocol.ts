// What the driving qnet and `qnet agent` on a host say to each other: one JSON request line in, JSON event lines
// out (steps and notes as they happen, then one result or one error). Pure: encoding, parsing and checking only.
import type { ResolvedLab } from '../topology/model.js';

/** Bumped whenever a request or an answer changes shape: hosts must speak the driver's protocol. */
export const PROTOCOL = 1;

/** What a host is told about its part of a lab on OVN (the driver planned the whole lab). */
export interface HostPart {
  /** This host's name in the lab. */
  host: string;
  /** The OVN chassis of every host, by its name in the lab. */
  chassis: Record<string, string>;
  /** Where every node of the whole lab runs. */
  placement: Record<string, string>;
  /** Whether this host is the lab's gateway: it holds the networks' host sides, the uplink, masquerade and forwards. */
  gateway: boolean;
  /** The other hosts' tunnel ends (underlay IP and MAC), seeded so that the first packet to each is not lost. */
  tunnels: Array<{ ip: string; mac: string }>;
}

/** A request to `qnet agent`. */
export type AgentRequest =
  | { op: 'observe' }
  | { op: 'up-part'; lab: ResolvedLab; part: HostPart; readyTimeoutMs?: number; cold?: boolean; /** Test hook: fail before step N. */ failBeforeStep?: number }
  | { op: 'down-part'; lab: string }
  | { op: 'nb'; lab: string; commands: string[][] }
  | { op: 'status'; lab: string }
  | { op: 'exec'; lab: string; node: string; argv: string[]; timeoutMs?: number }
  | { op: 'run'; lab: string; where: 'lab' | 'host'; argv: string[]; timeoutMs?: number }
  | { op: 'listen'; lab: string; where: 'lab' | 'host'; addrs: string[] };

/** A line `qnet agent` sends back. */
export type AgentEvent =
  | { event: 'step'; title: string; ms: number; ok: boolean }
  | { event: 'info'; message: string }
  | { event: 'result'; result: unknown }
  | { event: 'error'; message: string; exitCode: number };

/** What `observe` answers: who the host is and whether its OVN is ready, before any change. */
export interface HostObserved {
  version: string;
  protocol: number;
  ovn: { ready: boolean; chassis?: string; encapIp?: string; datapath?: string; problems: string[] };
  facts: { memoryMiB: number; cpus: number };
  /** The underlay bridge's MAC and MTU (absent when it does not exist). */
  underlay?: { mac: string; mtu: number };
}

/** Why a line is not a valid message: what was expected. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const strArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

function parseJsonObject(line: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new ProtocolError(`${what}: not JSON (${(e as Error).message}): ${line.slice(0, 80)}`);
  }
  if (!isObj(v)) throw new ProtocolError(`${what}: expected a JSON object, got ${line.slice(0, 80)}`);
  return v;
}

function labName(o: Record<string, unknown>, key = 'lab'): string {
  const v = o[key];
  if (!isStr(v) || !NAME.test(v)) throw new ProtocolError(`request.${key}: expected a lab name, got ${JSON.stringify(v)}`);
  return v;
}

function checkPart(v: unknown): HostPart {
  if (!isObj(v)) throw new ProtocolError('request.part: expected an object');
  const { host, chassis, placement, gateway, tunnels } = v;
  if (!isStr(host) || !NAME.test(host)) throw new ProtocolError(`request.part.host: expected a host name, got ${JSON.stringify(host)}`);
  for (const [k, m] of [['chassis', chassis], ['placement', placement]] as const)
    if (!isObj(m) || !Object.values(m).every(isStr)) throw new ProtocolError(`request.part.${k}: expected an object of names`);
  if (typeof gateway !== 'boolean') throw new ProtocolError('request.part.gateway: expected true or false');
  if (!Array.isArray(tunnels) || !tunnels.every((t) => isObj(t) && isStr(t.ip) && isStr(t.mac)))
    throw new ProtocolError('request.part.tunnels: expected a list of { ip, mac }');
  return v as unknown as HostPart;
}

/** Parses and checks one request line; throws a ProtocolError saying what is wrong. */
export function parseRequest(line: string): AgentRequest {
  const o = parseJsonObject(line, 'request');
  switch (o.op) {
    case 'observe':
      return { op: 'observe' };
    case 'up-part': {
      const lab = o.lab;
      if (!isObj(lab) || !isStr(lab.name) || !NAME.test(lab.name) || !Array.isArray(lab.nodes) || !Array.isArray(lab.networks))
        throw new ProtocolError('request.lab: expected a resolved lab (name, nodes, networks)');
      const part = checkPart(o.part);
      if (!(lab.nodes as Array<{ name?: unknown }>).every((n) => isStr(n.name) && part.placement[n.name] === part.host))
        throw new ProtocolError(`request.lab.nodes: every node of host ${part.host}'s part must be placed on it`);
      return {
        op: 'up-part',
        lab: lab as unknown as ResolvedLab,
        part,
        ...(typeof o.readyTimeoutMs === 'number' ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
        ...(o.cold === true ? { cold: true } : {}),
        ...(typeof o.failBeforeStep === 'number' ? { failBeforeStep: o.failBeforeStep } : {}),
      };
    }
    case 'down-part':
    case 'status':
      return { op: o.op, lab: labName(o) };
    case 'nb': {
      const cmds = o.commands;
      if (!Array.isArray(cmds) || !cmds.every(strArray) || !cmds.length) throw new ProtocolError('request.commands: expected a non-empty list of ovn-nbctl commands (lists of words)');
      return { op: 'nb', lab: labName(o), commands: cmds };
    }
    case 'exec': {
      if (!isStr(o.node) || !NAME.test(o.node)) throw new ProtocolError(`request.node: expected a node name, got ${JSON.stringify(o.node)}`);
      if (!strArray(o.argv) || !o.argv.length) throw new ProtocolError('request.argv: expected a command (a non-empty list of words)');
      return { op: 'exec', lab: labName(o), node: o.node, argv: o.argv, ...(typeof o.timeoutMs === 'number' ? { timeoutMs: o.timeoutMs } : {}) };
    }
    case 'run':
    case 'listen': {
      if (o.where !== 'lab' && o.where !== 'host') throw new ProtocolError(`request.where: expected lab or host, got ${JSON.stringify(o.where)}`);
      if (o.op === 'run') {
        if (!strArray(o.argv) || !o.argv.length) throw new ProtocolError('request.argv: expected a command (a non-empty list of words)');
        return { op: 'run', lab: labName(o), where: o.where, argv: o.argv, ...(typeof o.timeoutMs === 'number' ? { timeoutMs: o.timeoutMs } : {}) };
      }
      if (!strArray(o.addrs) || !o.addrs.length || !o.addrs.every((a) => /^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(a))) throw new ProtocolError('request.addrs: expected a list of IPv4:PORT');
      return { op: 'listen', lab: labName(o), where: o.where, addrs: o.addrs };
    }
    default:
      throw new ProtocolError(`request.op: expected observe, up-part, down-part, nb, status, exec, run or listen, got ${JSON.stringify(o.op)}`);
  }
}

/** Parses and checks one event line from an agent; throws a ProtocolError saying what is wrong. */
export function parseEvent(line: string): AgentEvent {
  const o = parseJsonObject(line, 'answer');
  switch (o.event) {
    case 'step':
      if (!isStr(o.title) || typeof o.ms !== 'number' || typeof o.ok !== 'boolean') throw new ProtocolError('answer: a step needs title, ms and ok');
      return { event: 'step', title: o.title, ms: o.ms, ok: o.ok };
    case 'info':
      if (!isStr(o.message)) throw new ProtocolError('answer: an info needs a message');
      return { event: 'info', message: o.message };
    case 'result':
      return { event: 'result', result: o.result };
    case 'error':
      if (!isStr(o.message) || typeof o.exitCode !== 'number') throw new ProtocolError('answer: an error needs message and exitCode');
      return { event: 'error', message: o.message, exitCode: o.exitCode };
    default:
      throw new ProtocolError(`answer.event: expected step, info, result or error, got ${JSON.stringify(o.event)}`);
  }
}

/** One message as the line that carries it. */
export function encode(m: AgentRequest | AgentEvent): string {
  return JSON.stringify(m) + '\n';
}

/**
 * Each host's part of a lab: the lab with only the nodes placed on that host (the networks are the whole lab's;
 * only the gateway's part makes their host sides). Pure.
 */
export function splitParts(lab: ResolvedLab, placement: Record<string, string>, chassis: Record<string, string>, tunnels: Record<string, { ip: string; mac: string } | undefined>): Array<{ lab: ResolvedLab; part: HostPart }> {
  const gateway = lab.ovn?.gateway;
  return (lab.hosts ?? []).map((h) => ({
    lab: { ...lab, nodes: lab.nodes.filter((n) => placement[n.name] === h.name) },
    part: {
      host: h.name,
      chassis,
      placement,
      gateway: h.name === gateway,
      tunnels: Object.entries(tunnels).flatMap(([name, t]) => (name !== h.name && t ? [t] : [])),
    },
  }));
}
