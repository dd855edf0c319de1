// `qnet agent`: qnet's side on a host of a lab over several hosts. Reads one request line on stdin, does it here
// (this host's part of the lab: its namespace, taps on br-int, QEMU, readiness; or its removal, its status, an exec
// in one of its guests), streams its steps back as JSON lines and ends with one result or error line. If stdin ends
// before the answer (the driving qnet was killed, its SSH connection dropped), a part being made is rolled back.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { exitCodeOf, RuntimeError } from '../errors.js';
import { NETNS_PREFIX } from '../topology/model.js';
import { localHostFacts } from '../host/facts.js';
import { hostStatus, UNDERLAY_BRIDGE } from '../host/ovn-setup.js';
import type { CommandRunner } from '../host/run.js';
import { nbArgv } from '../fabric/ovn/nb.js';
import { encode, parseRequest, PROTOCOL, type AgentEvent, type AgentRequest, type HostObserved } from '../hosts/protocol.js';
import type { Reporter } from './up.js';

/** The qnet version hosts must share with the driver (package.json's, read once). */
export async function qnetVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Serves one request from `input`, answering on `output`; resolves with the exit code the agent ends with. */
export async function runAgent(runner: CommandRunner, input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<number> {
  const send = (e: AgentEvent) => output.write(encode(e));
  const lines = createInterface({ input });
  let done = false;
  const first = await new Promise<string | undefined>((resolve) => {
    lines.once('line', resolve);
    lines.once('close', () => resolve(undefined));
  });
  if (first === undefined) return 0;
  // The driver went away before the answer: whatever is being made gives way (up rolls back on SIGTERM); a listener
  // (which lasts until then) stops and answers.
  const closed = new Promise<void>((resolve) =>
    lines.once('close', () => {
      resolve();
      if (!done && !listening) process.kill(process.pid, 'SIGTERM');
    }),
  );
  let listening = false;
  try {
    const req = parseRequest(first);
    const reporter: Reporter = { step: (title, ms, ok) => send({ event: 'step', title, ms, ok }), info: (message) => send({ event: 'info', message }) };
    if (req.op === 'listen') listening = true;
    const result = await serve(req, runner, reporter, closed);
    done = true;
    send({ event: 'result', result: result ?? null });
    return 0;
  } catch (e) {
    done = true;
    send({ event: 'error', message: (e as Error).message, exitCode: exitCodeOf(e) });
    return exitCodeOf(e);
  } finally {
    lines.close();
  }
}

async function serve(req: AgentRequest, runner: CommandRunner, reporter: Reporter, closed: Promise<void>): Promise<unknown> {
  switch (req.op) {
    case 'observe':
      return observeHere(runner);
    case 'up-part': {
      const { up } = await import('./up.js');
      // The first packet to a chassis OVS has not yet resolved is lost: each tunnel's next hop is told beforehand.
      for (const t of req.part.tunnels) await runner.run(['ovs-appctl', 'tnl/neigh/set', UNDERLAY_BRIDGE, t.ip, t.mac], { allowFail: true });
      const r = await up(req.lab, { runner, reporter, part: req.part, ...(req.readyTimeoutMs ? { readyTimeoutMs: req.readyTimeoutMs } : {}), ...(req.cold ? { cold: true } : {}), ...(req.failBeforeStep ? { failBeforeStep: req.failBeforeStep } : {}) });
      return { ms: r.ms, guests: Object.fromEntries(Object.entries(r.state.guests).map(([n, g]) => [n, { pid: g.pid }])) };
    }
    case 'down-part': {
      const { down } = await import('./down.js');
      const r = await down(req.lab, { runner, reporter });
      return { found: r.found, removed: r.removed, warnings: r.warnings };
    }
    case 'nb':
      await runner.run(nbArgv(req.commands, ['--timeout=30']));
      return { commands: req.commands.length };
    case 'status': {
      const { labStatus } = await import('./status.js');
      return await labStatus(req.lab);
    }
    case 'run': {
      const argv = req.where === 'lab' ? ['ip', 'netns', 'exec', `${NETNS_PREFIX}${req.lab}`, ...req.argv] : req.argv;
      const r = await runner.run(argv, { allowFail: true, timeoutMs: req.timeoutMs ?? 60_000 });
      return { code: r.code, stdout: r.stdout };
    }
    case 'listen': {
      // For `qnet check` driven from elsewhere: listens until the driver closes the request (the listener dies with
      // its stdin, this process's pipe, should this process die first).
      const { localAccess } = await import('./check.js');
      const { readState } = await import('./state.js');
      const state = await readState(req.lab);
      if (!state) throw new RuntimeError(`lab ${req.lab} is not up on this host`);
      const stop = await localAccess(state).listen(req.where, req.addrs);
      reporter.info('listening');
      await closed;
      stop();
      return { stopped: true };
    }
    case 'exec': {
      const { execInGuest } = await import('./exec.js');
      const r = await execInGuest(req.lab, req.node, req.argv, req.timeoutMs ? { timeoutMs: req.timeoutMs } : {});
      // Bytes as they came: base64 in the JSON line.
      return { ...r, stdout: r.stdout.toString('base64'), stderr: r.stderr.toString('base64') };
    }
  }
}

// This host as `up` must know it before any change: qnet's version, its OVN, its capacity, its underlay's end.
async function observeHere(runner: CommandRunner): Promise<HostObserved> {
  const [version, st, facts] = await Promise.all([qnetVersion(), hostStatus(runner), localHostFacts()]);
  const link = await runner.run(['ip', '-j', 'link', 'show', 'dev', UNDERLAY_BRIDGE], { allowFail: true });
  const l = link.code === 0 ? (JSON.parse(link.stdout) as Array<{ address?: string; mtu?: number }>)[0] : undefined;
  return {
    version,
    protocol: PROTOCOL,
    ovn: { ready: st.ready, ...(st.chassis ? { chassis: st.chassis } : {}), ...(st.encapIp ? { encapIp: st.encapIp } : {}), ...(st.datapath ? { datapath: st.datapath } : {}), problems: st.problems },
    facts,
    ...(l?.address && l.mtu ? { underlay: { mac: l.address, mtu: l.mtu } } : {}),
  };
}
