// Waiting until a guest is ready, by the signal its kind and topology ask for: READY on the control port, the guest
// agent, a DHCP lease, a pattern on the serial console, a TCP port; each bounded, each failing at once when the
// guest goes away (its control connection closes with QEMU), or when it shows that it cannot boot (its firmware
// found nothing to boot, its kernel panicked).
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDir } from '../dirs.js';
import { RuntimeError } from '../errors.js';
import { bootFailureLine, type BootWatch } from '../guest/boot-failure.js';
import type { ReadyWait } from '../guest/kinds.js';
import { AgentClient } from '../qemu/agent.js';
import { waitReady, type ControlChannel } from '../qemu/control.js';
import { QmpClient } from '../qemu/qmp.js';
import type { NodeFiles } from '../render/qemu.js';
import { networkLeases } from './leases.js';

export interface ReadyContext {
  lab: string;
  netns: string;
  node: string;
  files: NodeFiles;
  control: ControlChannel;
  timeoutMs: number;
  /** Where the guest shows that it cannot boot, and the size of its console log when it started (what came before is an earlier run's). */
  boot?: BootWatch & { consoleFrom: number };
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

// What a wait that nobody awaits any more rejects with (its caller has settled already: nobody reads it).
const ABANDONED = new RuntimeError('no longer awaited');

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
async function leaseOf(ctx: ReadyContext, network: string, mac: string, deadline: number, stop: AbortSignal): Promise<string> {
  for (;;) {
    if (stop.aborted) throw ABANDONED;
    const l = (await networkLeases(ctx.lab, network)).find((x) => x.mac === mac);
    if (l) return l.ip;
    if (Date.now() > deadline) throw new RuntimeError(`${ctx.node}: no DHCP lease for ${mac} on ${network} after ${Math.round(ctx.timeoutMs / 1000)} s`);
    await changeIn(path.join(labDir(ctx.lab), 'dnsmasq'), Math.min(1000, Math.max(1, deadline - Date.now())));
  }
}

// Escape sequences and carriage returns are not part of what a person reads on the console.
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r/g;

/** Reads what a log file gains from `offset` on; keeps the last 64 KiB read, as text without escape sequences. */
function logTail(file: string, offset: number): () => Promise<string> {
  let text = '';
  return async () => {
    const size = await stat(file).then((s) => s.size, () => 0);
    // A file started afresh (QEMU truncates a log it opens without append): read it from its start.
    if (size < offset) offset = 0;
    if (size > offset) {
      const fh = await open(file, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        // The last 64 KiB is plenty for any prompt, and keeps a chatty console from growing the search.
        text = (text + buf.subarray(0, bytesRead).toString('utf8').replace(ANSI, '')).slice(-65536);
      } finally {
        await fh.close();
      }
    }
    return text;
  };
}

/** Waits until the console log (from where it stood when the guest started) matches `pattern`. */
async function consoleShows(ctx: ReadyContext, pattern: RegExp, deadline: number, stop: AbortSignal): Promise<string> {
  const read = logTail(ctx.files.consoleLog, ctx.boot?.consoleFrom ?? 0);
  for (;;) {
    if (stop.aborted) throw ABANDONED;
    const m = pattern.exec(await read());
    if (m) return m[0];
    if (Date.now() > deadline) throw new RuntimeError(`${ctx.node}: the console did not show /${pattern.source}/ within ${Math.round(ctx.timeoutMs / 1000)} s`);
    await changeIn(ctx.files.dir, Math.min(1000, Math.max(1, deadline - Date.now())));
  }
}

/**
 * Rejects as soon as the guest shows that it cannot boot: a line of bootFailureLine's on its serial console or its
 * firmware's debug console, or GUEST_PANICKED from its pvpanic device. Resolves when `stop` is aborted.
 */
async function cannotBoot(ctx: ReadyContext, boot: BootWatch & { consoleFrom: number }, stop: AbortSignal): Promise<void> {
  const logs = [
    { read: logTail(ctx.files.consoleLog, boot.consoleFrom), where: 'its serial console' },
    { read: logTail(boot.firmwareLog, 0), where: "its firmware's debug console" },
  ];
  const stopped = new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
  // A monitor of its own (the guest's QMP socket serves one client at a time, and others need it meanwhile).
  const qmp = await QmpClient.connect(boot.events, 5000).catch(() => null);
  try {
    let panic = false;
    // Settles when the event comes; never when the monitor closes first (the guest went away: readyBy says so).
    const panicked = qmp ? qmp.waitEvent('GUEST_PANICKED', 2 ** 31 - 1).then(() => void (panic = true), () => new Promise<void>(() => {})) : new Promise<void>(() => {});
    for (;;) {
      if (stop.aborted) return;
      for (const log of logs) {
        const line = bootFailureLine(await log.read());
        if (line) throw new RuntimeError(`${ctx.node}: the guest cannot boot: ${log.where} says "${line}"`);
      }
      if (panic) throw new RuntimeError(`${ctx.node}: the guest's kernel panicked (its pvpanic device said so: QMP event GUEST_PANICKED; the panic message is on its console only when its kernel logs to ttyS0)`);
      await Promise.race([changeIn(ctx.files.dir, 1000), panicked, stopped]);
      // At most 5 looks a second: every write of the guest to its overlay (in the same directory) is a change too.
      await Promise.race([new Promise((r) => setTimeout(r, 200)), stopped]);
    }
  } finally {
    qmp?.close();
  }
}

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tcp-probe.js');

/** Connects to ip:port from inside the lab namespace until it answers (a probe process in the namespace). */
function tcpAnswers(ctx: ReadyContext, ip: string, port: number, deadline: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${ctx.netns}`, '--', process.execPath, PROBE, ip, String(port), String(Math.max(1, deadline - Date.now()))], { stdio: 'ignore' });
    const kill = () => child.kill('SIGKILL');
    void ctx.control.closed().then(kill);
    stop.addEventListener('abort', kill, { once: true });
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
  // Whatever settles the wait ends every part of it: a poll left running until its deadline would keep `up` from
  // exiting (a guest that cannot boot failed up at once, and the process then waited out the timeout).
  const stop = new AbortController();
  try {
    if (!ctx.boot || w.kind === 'none') return await readyBy(w, ctx, stop.signal);
    const failed = cannotBoot(ctx, ctx.boot, stop.signal).then(() => new Promise<never>(() => {}));
    return await Promise.race([readyBy(w, ctx, stop.signal), failed]);
  } finally {
    stop.abort();
  }
}

// Waits for the signal itself, until it comes, the time is up, or `stop`.
async function readyBy(w: ReadyWait, ctx: ReadyContext, stop: AbortSignal): Promise<string> {
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
        const agent = await unlessGone(AgentClient.connect(ctx.files.agent, left(), stop), ctx);
        agent.close();
        return 'guest agent answers';
      }
      if (w.agent === 'require')
        throw new RuntimeError(`${ctx.node}: ${w.kind === 'hook' ? "qnet's resume hook" : 'cloud-init'} finished, but the image has no qemu-guest-agent running (ready: agent needs it: install it in the image, or add cloudInit.userData.packages: [qemu-guest-agent])`);
      return 'no guest agent in the image: `qnet exec` cannot reach it, `qnet ssh` can';
    }
    case 'agent': {
      const agent = await unlessGone(AgentClient.connect(ctx.files.agent, ctx.timeoutMs, stop), ctx);
      agent.close();
      return 'guest agent answers';
    }
    case 'lease': {
      const ips = [];
      for (const l of w.leases) ips.push(await unlessGone(leaseOf(ctx, l.network, l.mac, deadline, stop), ctx));
      return `leased ${ips.join(', ')}`;
    }
    case 'console': {
      const m = await unlessGone(consoleShows(ctx, new RegExp(w.pattern), deadline, stop), ctx);
      return `console showed "${m.trim().slice(0, 40)}"`;
    }
    case 'tcp': {
      const r = w.route;
      const ip = r.kind === 'lease' ? await unlessGone(leaseOf(ctx, r.network, r.mac, deadline, stop), ctx) : r.ip;
      await unlessGone(tcpAnswers(ctx, ip, r.port, deadline, stop), ctx);
      return `TCP ${ip}:${r.port} answers`;
    }
    case 'none':
      return '';
  }
}
