// Waiting until a guest is ready, by the signal its kind and topology ask for: READY on the control port, the guest
// agent, a DHCP lease, a pattern on the serial console, a TCP port; each bounded, each failing at once when the
// guest goes away (its control connection closes with QEMU).
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDir } from '../dirs.js';
import { RuntimeError } from '../errors.js';
import type { ReadyWait } from '../guest/kinds.js';
import { AgentClient } from '../qemu/agent.js';
import { waitReady, type ControlChannel } from '../qemu/control.js';
import type { NodeFiles } from '../render/qemu.js';
import { networkLeases } from './leases.js';

export interface ReadyContext {
  lab: string;
  netns: string;
  node: string;
  files: NodeFiles;
  control: ControlChannel;
  timeoutMs: number;
}

/** What was awaited, for messages ("the guest agent", "a lease for 52:54:..."). */
export function describeWait(w: ReadyWait): string {
  switch (w.kind) {
    case 'control':
      return 'READY on its control port';
    case 'cloud-init':
      return "cloud-init's final stage (qnet-ready.service saying READY)" + (w.agent === 'require' ? ', then the guest agent' : '');
    case 'hook':
      return "qnet's resume hook to say READY (the node's identity and addresses applied; no cloud-init in this boot)" + (w.agent === 'require' ? ', then the guest agent' : '');
    case 'agent':
      return 'the QEMU guest agent to answer';
    case 'lease':
      return `a DHCP lease for ${w.leases.map((l) => `${l.mac} on ${l.network}`).join(', ')}`;
    case 'console':
      return `/${w.pattern}/ on its serial console`;
    case 'tcp':
      return `TCP port ${w.route.port} to answer${w.route.kind === 'address' ? ` on ${w.route.ip}` : w.route.kind === 'lease' ? ' on its leased address' : ` (forwarded from 127.0.0.1:${w.route.port})`}`;
    case 'none':
      return 'nothing (ready: none)';
  }
}

/**
 * The line `up` prints every 30 s for a guest not ready yet: how long, what it waits for, the last line its console
 * showed. A guest restored from a saved state is resuming, not booting.
 */
export function pendingLine(name: string, seconds: number, w: ReadyWait, start: 'booted' | 'restored' | undefined, last: string): string {
  const doing = start === 'restored' ? 'still resuming from the saved state' : 'still booting';
  return `${name}: ${doing} after ${seconds} s, waiting for ${describeWait(w)}${last ? `; console: ${last}` : ''}`;
}

// Rejects when the guest goes away first; resolves or rejects with `p` otherwise.
async function unlessGone<T>(p: Promise<T>, ctx: ReadyContext): Promise<T> {
  let gone = false;
  const closed = ctx.control.closed().then(() => {
    gone = true;
  });
  const r = await Promise.race([p.then((v) => ({ v })), closed.then(() => null)]);
  if (r === null || gone) throw new RuntimeError(`${ctx.node}: the guest went away before it was ready (see its console.log)`);
  return r.v;
}

/** Resolves after `ms`, or when a change in `dir` is seen (a fallback for file systems that miss events). */
function changeIn(dir: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let w: ReturnType<typeof watch> | undefined;
    const done = () => {
      clearTimeout(t);
      w?.close();
      resolve();
    };
    const t = setTimeout(done, ms);
    try {
      w = watch(dir, done);
      w.on('error', done);
    } catch {
      // the directory is not there yet: the timer alone
    }
  });
}

/** Waits until a DHCP lease for `mac` appears in the lab's dnsmasq lease file of `network`; resolves with its IP. */
async function leaseOf(ctx: ReadyContext, network: string, mac: string, deadline: number): Promise<string> {
  for (;;) {
    const l = (await networkLeases(ctx.lab, network)).find((x) => x.mac === mac);
    if (l) return l.ip;
    if (Date.now() > deadline) throw new RuntimeError(`${ctx.node}: no DHCP lease for ${mac} on ${network} after ${Math.round(ctx.timeoutMs / 1000)} s`);
    await changeIn(path.join(labDir(ctx.lab), 'dnsmasq'), Math.min(1000, Math.max(1, deadline - Date.now())));
  }
}

// Escape sequences and carriage returns are not part of what a person reads on the console.
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r/g;

/** Waits until the console log (from where it stood when the guest started) matches `pattern`. */
async function consoleShows(ctx: ReadyContext, pattern: RegExp, deadline: number): Promise<string> {
  let offset = 0;
  let text = '';
  for (;;) {
    const size = await stat(ctx.files.consoleLog).then((s) => s.size, () => 0);
    if (size > offset) {
      const fh = await open(ctx.files.consoleLog, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        offset = size;
        // The last 64 KiB is plenty for any prompt, and keeps a chatty console from growing the search.
        text = (text + buf.toString('utf8').replace(ANSI, '')).slice(-65536);
      } finally {
        await fh.close();
      }
      const m = pattern.exec(text);
      if (m) return m[0];
    }
    if (Date.now() > deadline) throw new RuntimeError(`${ctx.node}: the console did not show /${pattern.source}/ within ${Math.round(ctx.timeoutMs / 1000)} s`);
    await changeIn(ctx.files.dir, Math.min(1000, Math.max(1, deadline - Date.now())));
  }
}

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tcp-probe.js');

/** Connects to ip:port from inside the lab namespace until it answers (a probe process in the namespace). */
function tcpAnswers(ctx: ReadyContext, ip: string, port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${ctx.netns}`, '--', process.execPath, PROBE, ip, String(port), String(Math.max(1, deadline - Date.now()))], { stdio: 'ignore' });
    const stop = () => child.kill('SIGKILL');
    void ctx.control.closed().then(stop);
    child.once('error', (e) => reject(new RuntimeError(`${ctx.node}: cannot probe ${ip}:${port}: ${e.message}`)));
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new RuntimeError(`${ctx.node}: TCP port ${port} on ${ip} did not answer within ${Math.round(ctx.timeoutMs / 1000)} s`)),
    );
  });
}

/**
 * Waits until the guest is ready as `w` says; resolves with a note for the user (empty when there is nothing to
 * add), rejects with what was awaited and why it failed.
 */
export async function awaitReady(w: ReadyWait, ctx: ReadyContext): Promise<string> {
  const deadline = Date.now() + ctx.timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  switch (w.kind) {
    case 'control':
      await waitReady(ctx.control, ctx.timeoutMs, ctx.node);
      return '';
    case 'cloud-init':
    case 'hook': {
      const line = await ctx.control.waitFor((l) => l.startsWith('READY'), (l) => l.startsWith('ERROR'), ctx.timeoutMs, ctx.node);
      if (/\bagent=yes\b/.test(line)) {
        const agent = await unlessGone(AgentClient.connect(ctx.files.agent, left()), ctx);
        agent.close();
        return 'guest agent answers';
      }
      if (w.agent === 'require')
        throw new RuntimeError(`${ctx.node}: ${w.kind === 'hook' ? "qnet's resume hook" : 'cloud-init'} finished, but the image has no qemu-guest-agent running (ready: agent needs it: install it in the image, or add cloudInit.userData.packages: [qemu-guest-agent])`);
      return 'no guest agent in the image: `qnet exec` cannot reach it, `qnet ssh` can';
    }
    case 'agent': {
      const agent = await unlessGone(AgentClient.connect(ctx.files.agent, ctx.timeoutMs), ctx);
      agent.close();
      return 'guest agent answers';
    }
    case 'lease': {
      const ips = [];
      for (const l of w.leases) ips.push(await unlessGone(leaseOf(ctx, l.network, l.mac, deadline), ctx));
      return `leased ${ips.join(', ')}`;
    }
    case 'console': {
      const m = await unlessGone(consoleShows(ctx, new RegExp(w.pattern), deadline), ctx);
      return `console showed "${m.trim().slice(0, 40)}"`;
    }
    case 'tcp': {
      const r = w.route;
      const ip = r.kind === 'lease' ? await unlessGone(leaseOf(ctx, r.network, r.mac, deadline), ctx) : r.ip;
      await unlessGone(tcpAnswers(ctx, ip, r.port, deadline), ctx);
      return `TCP ${ip}:${r.port} answers`;
    }
    case 'none':
      return '';
  }
}
