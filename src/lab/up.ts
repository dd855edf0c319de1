// Bringing a lab up: run the plan step by step, and on any failure undo what was done, in reverse.
import { clearOvn, observeFabric, ovnChangeRefusal } from './ovn.js';
import { chmod, chown, copyFile, mkdir, readFile, realpath, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import { chooseUserNat, type UserNatChoice } from '../render/uplink-rootless.js';
import { bridgeVlanFiltering, netemUsable } from '../host/kernel.js';
import { usesVlans, VLAN_HINT } from '../render/l2.js';
import { RuntimeError, UserError } from '../errors.js';
import { ensureImage } from '../guest/image.js';
import type { CommandRunner } from '../host/run.js';
import { labIds, userIds } from '../host/users.js';
import { planChange, planStart, planUp, type Action, type PlanContext, type Step } from '../plan/plan.js';
import type { GuestSnapshot } from '../plan/steps.js';
import { ControlChannel } from '../qemu/control.js';
import { kindOf } from '../guest/kinds.js';
import { awaitReady, describeWait, pendingLine } from './ready.js';
import { inspectLabImages } from '../guest/image-check.js';
import { observeImages, writeResumeConfig, writeSeed } from './images.js';
import { DEFAULT_GRACE_MS } from './grace.js';
import { startGuest, stopGuest, waitRestored, type StartedGuest } from '../qemu/guest.js';
import { nodeFiles, withIncoming, type Accel } from '../render/qemu.js';
import { dropSnapshot, labSnapshots, ramOf, saveGuestState, touchSnapshot } from './snapshot.js';
import { sealedTemplate } from './template.js';
import { closeSync, existsSync, openSync } from 'node:fs';
import { defaultBootWindow, defaultRestoreWindow, Slots, windowOf } from './slots.js';
import type { ResolvedLab } from '../topology/model.js';
import { resolveAccel, type AccelChoice } from './accel.js';
import { claimHostForwarding, hostForwardingOnByHost, releaseHostForwarding } from '../host/forwarding.js';
import { startService, stopService } from '../host/service.js';
import { needsUplink, uplinkCandidates, type UplinkAddressing } from '../render/uplink.js';
import type { LanUplink } from '../render/lan.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../topology/ipv4.js';
import { onLan, usesUplink } from '../topology/model.js';
import { netemNics } from '../topology/impair.js';
import { NO_NETEM } from '../render/impair.js';
import { inspectLanUplinks, releaseUplink } from './lan.js';
import { findLab } from './discover.js';
import { insideHolder, guestUser, nodeDir } from '../dirs.js';
import { readState, updateState, writeState, type LabState, type NodeState } from './state.js';
import { nodeState } from './alive.js';
import { processMarker, processStartTime } from '../qemu/process.js';
import { diffLabs, formatChange, isEmpty, type ChangeSet } from '../plan/change.js';
import type { HostPart } from '../hosts/protocol.js';

export interface Reporter {
  /** A step finished (or failed) after `ms` milliseconds. */
  step(title: string, ms: number, ok: boolean): void;
  info(message: string): void;
}

export const silentReporter: Reporter = { step() {}, info() {} };

export interface UpOptions {
  runner: CommandRunner;
  reporter?: Reporter;
  accel?: AccelChoice;
  source?: string;
  readyTimeoutMs?: number;
  /**
   * At most this many guests booting at once, and as many image nodes being restored, the next started as soon as
   * one is ready (0: no limit; default: cores + 1 booting, cores - 1 restored, at least 1).
   */
  parallel?: number;
  /** Boot every guest: neither restore saved states nor save new ones. */
  cold?: boolean;
  /** A running lab of the same name that was brought up from another file becomes this one's (see checkSource). */
  replace?: boolean;
  /** Test hook: fail on purpose right before step number N (1-based) runs. */
  failBeforeStep?: number;
  /** This host's part of a lab over several hosts (`qnet agent`): its nodes only, the NB made by the driver. */
  part?: HostPart;
}

export interface UpResult {
  state: LabState;
  ms: number;
  /** `up` of a running lab that is as its file says: nothing was done. */
  unchanged?: boolean;
  /** Nodes of a running lab that were not running and were started again (by `up` of its file, or `qnet start`). */
  revived?: Revived[];
}

/** A node started again, and what it was before: dead, stopped (by `qnet stop`), or never started. */
export interface Revived {
  node: string;
  was: Exclude<NodeState, 'running'>;
}

/** What a run of steps has started and still holds. */
export interface Live {
  pids: Map<string, number>;
  control: Map<string, ControlChannel>;
  services: Map<string, number>;
  /** Guests being saved at their snapshot point: settles once the state is saved (or could not be) and the guest resumed. */
  snapshots: Map<string, Promise<void>>;
  /**
   * Each started guest's readiness (as its kind waits for it), begun at its start: resolves with a note and when it
   * was ready (the wait step may come to it later, once every guest is started).
   */
  ready: Map<string, Promise<{ note: string; at: number }>>;
  /** The sealed RAM templates restored guests map, by `.ram` file: one each per run, closed at its end. */
  templates: Map<string, Promise<number>>;
}

/** Plans the lab's steps for the current host (image built if needed, accelerator chosen). */
export async function prepareUp(
  input: ResolvedLab,
  opts: UpOptions,
): Promise<{ lab: ResolvedLab; steps: Step[]; accel: string; image: string; why: string; lan?: Record<string, LanUplink> }> {
  const reporter = opts.reporter ?? silentReporter;
  // The fabric's host side first (OVN: refusals, this host's OVN ready, its chassis and datapath), before anything.
  const fabric = await observeFabric(input, opts.runner, opts.part);
  // Image nodes: every base, ISO and kept disk is checked (exit 2 on bad input) before anything is made.
  const lab = await inspectLabImages(opts.runner, fabric.lab, opts.source);
  const images = await observeImages(lab, opts.runner);
  const user = guestUser();
  const uids = await userIds(user);
  const image = await ensureImage(opts.runner, (m) => reporter.info(m));
  const t = Date.now();
  const { accel, why } = await resolveAccel(opts.accel ?? 'auto', image, user, opts.runner);
  if (Date.now() - t > 500) reporter.step(`probe acceleration: ${accel} (${why})`, Date.now() - t, true);
  const lan = lab.networks.some(onLan) ? await inspectLanUplinks(lab, opts.runner, (m) => reporter.info(m)) : undefined;
  const uplink = needsUplink(lab) ? await chooseUplink(opts.runner, lab) : undefined;
  // Rootless, the host's forwarding is neither needed (pasta's sockets carry the traffic) nor the user's to change.
  const hostForwarding = uplink && !insideHolder() ? await hostForwardingOnByHost() : undefined;
  const userNat = uplink && insideHolder() ? chooseUserNatOnPath() : undefined;
  const notes: string[] = [];
  const snapshots = opts.cold ? undefined : await labSnapshots(lab, image, accel, opts.runner, undefined, notes);
  for (const n of notes) reporter.info(n);
  return {
    lab,
    steps: planUp(lab, { image, accel, user, userIds: uids, guestIds: labIds(lab.name), ...(insideHolder() ? { rootless: true } : {}), ...(uplink ? { uplink } : {}), ...(userNat ? { userNat } : {}), ...(hostForwarding !== undefined ? { hostForwarding } : {}), ...(lan ? { lan } : {}), parallel: bootWindow(opts), restoreParallel: restoreWindow(opts), ...(snapshots ? { snapshots } : {}), ...images, ...fabric.ctx }),
    accel,
    image: image.key,
    why,
    ...(lan ? { lan } : {}),
  };
}

/**
 * The first of the lab's candidate /30s that no address or route of the host touches (observed state); refuses a
 * nat or routed subnet that the host already routes, unless `subnets` is false (`qnet export`, whose ifup.sh checks
 * that where and when it runs).
 */
export async function chooseUplink(runner: CommandRunner, lab: ResolvedLab, opts: { subnets?: boolean } = {}): Promise<UplinkAddressing> {
  const used: Cidr[] = [];
  const addrs = JSON.parse((await runner.run(['ip', '-j', '-4', 'addr', 'show'])).stdout || '[]') as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>;
  for (const l of addrs) for (const a of l.addr_info ?? []) used.push(parseCidr(`${a.local}/${a.prefixlen}`)!);
  const routes = JSON.parse((await runner.run(['ip', '-j', '-4', 'route', 'show', 'table', 'main'])).stdout || '[]') as Array<{ dst: string; dev?: string }>;
  for (const r of routes) {
    const c = r.dst === 'default' ? null : parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    if (c) used.push(c);
  }
  // The host routes each nat and routed subnet to this lab: one that the host already reaches otherwise (another
  // lab, a local network) would be hijacked or refused. Say so before anything is made.
  for (const net of opts.subnets === false ? [] : lab.networks.filter(usesUplink)) {
    const clash = routes.find((r) => r.dst !== 'default' && overlaps(parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`)!, net.subnet!));
    if (clash)
      throw new RuntimeError(
        `networks.${net.name}: the host already has a route to ${clash.dst}${clash.dev ? ` (dev ${clash.dev})` : ''}, which overlaps ${formatCidr(net.subnet!)}; ` +
          'a nat or routed subnet must be unique on the host (another lab may be using it: `qnet status`)',
      );
  }
  for (const net of uplinkCandidates(lab.name)) {
    const cand = { ip: net, prefix: 30 };
    if (!used.some((u) => overlaps(u, cand))) return { net };
  }
  throw new RuntimeError('no free /30 for the lab uplink in 100.64.0.0/16 near this lab\'s slot; remove stale routes or rename the lab');
}

/** Brings a lab up; resolves when every guest is booted and configured. Rolls everything back on failure. */
export async function up(input: ResolvedLab, opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  // Impairments that need netem, on a kernel without it: said before anything is made or changed (a new lab, or
  // nodes of a running one restarted with them), not by the tc step failing near the end.
  const netem = netemNics(input);
  if (netem.length && !(await netemUsable(opts.runner))) throw new RuntimeError(`${netem.join('; ')}: ${NO_NETEM}.\nNothing was made or changed.`);
  const existing = await findLab(input.name);
  // A host's part: the lab's northbound rows, which the driver made just before, are not a lab left over here.
  if (opts.part) existing.present = existing.what.some((w) => !/northbound row/.test(w));
  if (existing.present) {
    const running = await readState(input.name);
    // Compared with the running lab as inspected (formats, sizes, real paths of images): read the images first.
    if (running?.status === 'up') {
      await checkSource(running, opts.source, opts.replace);
      return applyChange(running, await inspectLabImages(opts.runner, input, opts.source), opts);
    }
    throw new RuntimeError(`lab "${input.name}" is already up (or left over: ${existing.what.join(', ')}); run \`qnet down ${input.name}\` first`);
  }
  // A VLAN-aware network needs the kernel's bridge VLAN filtering: said before anything of the lab is made or
  // prepared (the image, the accelerator's probe, the saved states).
  if (usesVlans(input) && !(await bridgeVlanFiltering(opts.runner))) {
    const nets = input.networks.filter((n) => n.vlans).map((n) => n.name);
    throw new RuntimeError(`network${nets.length > 1 ? 's' : ''} ${nets.join(', ')} ${nets.length > 1 ? 'have' : 'has'} "vlans", and this kernel cannot make a bridge VLAN-aware: nothing was made.\n${VLAN_HINT}`);
  }
  const prepared = await prepareUp(input, opts);
  const { steps, accel, image, lan, lab } = prepared;
  const state: LabState = {
    version: 1,
    lab,
    status: 'starting',
    createdAt: new Date().toISOString(),
    ...(opts.source ? { source: path.resolve(opts.source) } : {}),
    accel,
    image,
    guests: {},
    ...(lan ? { lan } : {}),
    // Who is making it: if this process dies before the end (SIGKILL), status tells the lab's up from a dead one.
    ...((t) => (t !== undefined ? { upBy: { pid: process.pid, startTime: t } } : {}))(await processStartTime(process.pid)),
  };
  const live: Live = { pids: new Map(), control: new Map(), services: new Map(), snapshots: new Map(), ready: new Map(), templates: new Map() };
  const slots = windows(opts);
  const done: Step[] = [];
  let current: Step | undefined;
  let abort: (e: Error) => void = () => {};
  // Rejects on Ctrl-C: a wait for guests (minutes for a real OS) gives way at once to the rollback.
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => {});
  const onSignal = () => {
    // Interrupted: let the failure path below roll back; a second signal is left to the default handler.
    interrupted = true;
    abort(new RuntimeError('interrupted'));
  };
  let interrupted = false;
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const [i, step] of steps.entries()) {
      if (interrupted) throw new RuntimeError('interrupted');
      // Test hooks (library option or environment): fail here and roll back.
      if (opts.failBeforeStep === i + 1 || process.env.QNET_TEST_FAIL_BEFORE_STEP === String(i + 1)) throw new RuntimeError(`injected failure before step ${i + 1}`);
      // Test-only crash hook: die here without any cleanup, as a SIGKILL or a power cut would.
      if (process.env.QNET_TEST_KILL_BEFORE_STEP === String(i + 1)) process.kill(process.pid, 'SIGKILL');
      current = step;
      const t = Date.now();
      const run = execute(step.do, { runner: opts.runner, lab, state, live, reporter, readyTimeoutMs: opts.readyTimeoutMs ?? 120_000, slots });
      // Only waits give way to an interrupt: any other step finishes (or fails) as a whole, so the rollback knows it.
      if (step.do.kind === 'wait-ready' || step.do.kind === 'wait-snapshot') {
        run.catch(() => {});
        await Promise.race([run, aborted]);
      } else await run;
      done.push(step);
      if (i === 0) await writeState(state); // the run directory exists now: journal from here on
      reporter.step(step.title, Date.now() - t, true);
    }
    state.status = 'up';
    delete state.upBy;
    await writeState(state);
    return { state, ms: Date.now() - started };
  } catch (err) {
    if (current) reporter.step(current.title, 0, false);
    const { undone, failed } = await rollback(done, { runner: opts.runner, lab, state, live, reporter, readyTimeoutMs: 0 });
    const cause = (err instanceof Error ? err.message : String(err)) + (current?.hint && !done.includes(current) ? `\n${current.hint}` : '');
    const left = failed.length
      ? `${failed.length} could not be undone (${failed.join('; ')}): \`qnet down ${lab.name}\` removes what is left`
      : 'nothing of the lab is left';
    throw new RuntimeError(
      `qnet up ${lab.name} failed at "${current?.title ?? 'start'}": ${cause}\nrolled back ${undone} step${undone === 1 ? '' : 's'}; ${left}`,
      { cause: err },
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const s of live.control.values()) s.destroy();
    await closeTemplates(live);
  }
}

/** Everything a step needs to run. */
export interface ExecContext {
  runner: CommandRunner;
  lab: ResolvedLab;
  state: LabState;
  live: Live;
  reporter: Reporter;
  readyTimeoutMs: number;
  /** Slots for guests that boot, and for image nodes restored (see windowOf): each held from the start until READY. */
  slots?: { boot: Slots; restore: Slots };
}

/** Carries out one action of a plan. */
export async function execute(a: Action, ctx: ExecContext): Promise<void> {
  switch (a.kind) {
    case 'mkdir':
      if (a.exclusive) {
        await mkdir(path.dirname(a.path), { recursive: true, mode: 0o711 });
        await mkdir(a.path, { mode: a.mode }).catch((e: NodeJS.ErrnoException) => {
          throw e.code === 'EEXIST' ? new RuntimeError(`lab "${ctx.lab.name}" is being brought up by another qnet (${a.path} exists)`) : e;
        });
      } else await mkdir(a.path, { recursive: true, mode: a.mode });
      if (a.owner) await chown(a.path, a.owner.uid, a.owner.gid);
      return;
    case 'write':
      await writeFile(a.path, a.content, { mode: a.mode });
      return;
    case 'exec':
      await ctx.runner.run(a.argv, a.input !== undefined ? { input: a.input } : {});
      return;
    case 'rmtree':
      await rm(a.path, { recursive: true, force: true });
      return;
    case 'ovn-clear':
      await clearOvn(ctx.runner, a.lab, a.nb);
      return;
    case 'start-guest': {
      const node = ctx.lab.nodes.find((n) => n.name === a.node);
      if (!node) throw new RuntimeError(`${a.node}: not a node of lab ${ctx.lab.name}`);
      const files = nodeFiles(nodeDir(ctx.lab.name, a.node));
      const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...a.env };
      const which = windowOf({ restoring: a.snapshot?.mode === 'restore' && existsSync(a.snapshot.path), image: !!node.image });
      const slots = which && ctx.slots?.[which];
      if (slots?.full) {
        const [one, many] = which === 'restore' ? ['the image node being restored', 'image nodes being restored'] : ['the guest booting', 'guests booting'];
        ctx.reporter.info(`${a.node} starts when ${slots.limit === 1 ? one : `one of the ${slots.limit} ${many}`} now is ready`);
      }
      await slots?.acquire();
      // Where its console log ends before it starts: a restarted node's log goes on, and its earlier run said what it said.
      const consoleFrom = await stat(files.consoleLog).then((s) => s.size, () => 0);
      let g: Awaited<ReturnType<typeof startFromSnapshot>>;
      // Files QEMU gets as descriptors, opened here: the unprivileged QEMU never opens (nor may write) a user's base.
      const fds = (a.fds ?? []).map((f) => openSync(f.path, f.write ? 'r+' : 'r'));
      try {
        g = await startFromSnapshot(a, env, files, ctx, fds);
      } catch (e) {
        slots?.release();
        throw e;
      } finally {
        for (const fd of fds) closeSync(fd);
      }
      // A node started again keeps its cables as `qnet link` left them (QEMU starts with every link up).
      const unplugged = ctx.state.links?.[a.node] ?? [];
      try {
        for (const i of unplugged) await g.qmp.execute('set_link', { name: `net${i}`, up: false });
      } catch (e) {
        slots?.release();
        g.qmp.close();
        g.control.destroy();
        await stopGuest(g.pid, files, { acpi: false, graceMs: 0 });
        throw new RuntimeError(`${a.node}: its NICs ${unplugged.join(', ')} could not be unplugged again (${(e as Error).message})`);
      }
      g.qmp.close();
      ctx.live.pids.set(a.node, g.pid);
      ctx.state.guests[a.node] = { pid: g.pid, startedAt: g.startedAt, start: g.how };
      const ch = g.control;
      ctx.live.control.set(a.node, ch);
      try {
        await writeState(ctx.state);
        // Readiness is awaited from the start (the window's slot is given back when it settles); wait-ready reports it.
        const boot = kindOf(node).bootWatch?.(ctx.lab.name, node);
        const ready = awaitReady(kindOf(node).ready(ctx.lab, node), {
          lab: ctx.lab.name, netns: ctx.lab.netns, node: a.node, files, control: ch, timeoutMs: ctx.readyTimeoutMs, ...(boot ? { boot: { ...boot, consoleFrom } } : {}),
        }).then((note) => ({ note, at: Date.now() }));
        ready.catch(() => {});
        ctx.live.ready.set(a.node, ready);
        if (slots) void ready.catch(() => {}).finally(() => slots.release());
        if (a.snapshot?.mode === 'save') {
          const saved = saveAtSnapshotPoint(ch, files, a.snapshot.path, a.node, ctx, a.snapshot.disk);
          saved.catch(() => {});
          ctx.live.snapshots.set(a.node, saved);
        }
      } catch (e) {
        if (!ctx.live.ready.has(a.node)) slots?.release();
        await stopGuest(g.pid, files, { acpi: false, graceMs: 0 }); // this step is not "done", so rollback would not stop it
        throw e;
      }
      g.child.unref();
      return;
    }
    case 'wait-snapshot': {
      await Promise.all(a.nodes.map((n) => ctx.live.snapshots.get(n) ?? Promise.reject(new RuntimeError(`${n}: not being saved`))));
      return;
    }
    case 'wait-ready': {
      const t0 = Date.now();
      // A real OS takes minutes under TCG: say every 30 s who is still booting, and the last its console said.
      const pending = new Set(a.nodes);
      const heartbeat = setInterval(() => void progress(ctx, pending, t0), 30_000);
      heartbeat.unref();
      try {
        await Promise.all(
          a.nodes.map(async (name) => {
            const ready = ctx.live.ready.get(name);
            const node = ctx.lab.nodes.find((n) => n.name === name);
            if (!ready || !node) throw new RuntimeError(`${name}: not started`);
            let note: string;
            let at: number;
            try {
              ({ note, at } = await ready);
            } catch (e) {
              // The run directory goes with the rollback: keep the guest's last words in the message.
              const log = await readFile(nodeFiles(nodeDir(ctx.lab.name, name)).consoleLog, 'utf8').catch(() => '');
              const tail = log.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, '').trim().split('\n').slice(-12).join('\n    ');
              const what = describeWait(kindOf(node).ready(ctx.lab, node));
              throw new RuntimeError(`${(e as Error).message}\n  ${name} was waiting for ${what}${tail ? `\n  ${name} console (last lines):\n    ${tail}` : ''}`);
            }
            const g = ctx.state.guests[name];
            const secs = (at - Date.parse(g?.startedAt ?? new Date(t0).toISOString())) / 1000;
            if (g) {
              g.readyAt = new Date(at).toISOString();
              g.bootSeconds = Math.round(secs * 10) / 10;
            }
            const how = g?.start === 'restored' ? 'restored from the saved state and configured' : node.image ? `booted its image, ready (${node.image.ready.kind})` : 'booted and configured';
            pending.delete(name);
            ctx.reporter.step(`${name} is up (${how} in ${secs.toFixed(1)} s${note ? `; ${note}` : ''})`, Date.now() - t0, true);
          }),
        );
      } finally {
        clearInterval(heartbeat);
      }
      return;
    }
    case 'stop-guest': {
      const files = nodeFiles(nodeDir(ctx.lab.name, a.node));
      // A node restarted for a change is stopped as its kind says (an OS flushes its disk); a rollback stops at once.
      await stopGuest(ctx.live.pids.get(a.node), files, a.stop?.acpi ? { acpi: true, graceMs: DEFAULT_GRACE_MS } : { acpi: false, graceMs: 0 });
      return;
    }
    case 'copy':
      await copyFile(a.from, a.to);
      await chmod(a.to, a.mode);
      return;
    case 'seed':
      await writeSeed(ctx.runner, ctx.lab, a);
      return;
    case 'resume-config':
      await writeResumeConfig(ctx.lab, a);
      return;
    case 'rmdir-empty':
      await rmdir(a.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      });
      return;
    case 'host-forwarding':
      if (a.enable) await claimHostForwarding(ctx.lab.name);
      else await releaseHostForwarding(ctx.lab.name);
      return;
    case 'start-service': {
      const pid = await startService(a.argv, { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...a.env }, a.log, a.readyText);
      ctx.live.services.set(a.service, pid);
      ctx.state.services = { ...(ctx.state.services ?? {}), [a.service]: { pid } };
      await writeState(ctx.state);
      return;
    }
    case 'stop-service':
      await stopService(ctx.live.services.get(a.service));
      return;
    case 'release-uplink':
      await releaseUplink(ctx.runner, a.bridge, a.saved);
      return;
  }
}

// One line per guest not ready yet (see pendingLine).
async function progress(ctx: ExecContext, pending: Set<string>, t0: number): Promise<void> {
  for (const name of pending) {
    const node = ctx.lab.nodes.find((n) => n.name === name);
    if (!node) continue;
    const log = await readFile(nodeFiles(nodeDir(ctx.lab.name, name)).consoleLog, 'utf8').catch(() => '');
    const last = log.slice(-4096).replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, '').trim().split('\n').pop()?.trim().slice(0, 100) ?? '';
    ctx.reporter.info(pendingLine(name, Math.round((Date.now() - t0) / 1000), kindOf(node).ready(ctx.lab, node), ctx.state.guests[name]?.start, last));
  }
}

// What an undo's command says when what it removes is already gone: a later step's undo can take it along (giving
// the uplink back deletes the host bridge that the bridge step's own undo deletes again). Absence is what an undo is
// for, so such a failure is not one.
const GONE = /Cannot find device|No such file or directory|No such device|No such process/;

/** True when every error line of a command's stderr says that what it removes does not exist. */
export function onlyAlreadyGone(stderr: string): boolean {
  const errors = stderr.split('\n').filter((l) => /^(Error|RTNETLINK|Cannot)/.test(l));
  return errors.length > 0 && errors.every((l) => GONE.test(l));
}

/** Undoes the done steps in reverse; returns how many were undone, and the titles of those whose undo failed. */
export async function rollback(done: Step[], ctx: ExecContext): Promise<{ undone: number; failed: string[] }> {
  let undone = 0;
  const failed: string[] = [];
  for (const step of [...done].reverse()) {
    if (!step.undo) continue;
    try {
      if (step.undo.kind === 'exec') {
        // A failed undo does not stop the others (allowFail); it is reported, and `up` no longer says nothing is left.
        const r = await ctx.runner.run(step.undo.argv, { allowFail: true, ...(step.undo.input !== undefined ? { input: step.undo.input } : {}) });
        if (r.code !== 0 && !onlyAlreadyGone(r.stderr)) throw new Error(`${step.undo.argv.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
      } else await execute(step.undo, ctx);
      undone++;
    } catch (e) {
      failed.push(step.title);
      ctx.reporter.info(`rollback of "${step.title}" failed: ${(e as Error).message}`);
    }
  }
  return { undone, failed };
}

/**
 * Refuses (exit 2, before anything is changed) an `up` of a running lab from another file than the one
 * it was brought up from, unless `replace`: two files that give the same name would otherwise silently make one
 * lab the other's. Files are compared by real path (a symlink or another spelling of the same file is that file).
 */
export async function checkSource(running: LabState, source: string | undefined, replace = false): Promise<void> {
  if (!source || !running.source || replace) return;
  const real = (p: string) => realpath(p).catch(() => path.resolve(p));
  const [was, now] = await Promise.all([real(running.source), real(source)]);
  if (was === now) return;
  const name = running.lab.name;
  const gone = existsSync(was) ? '' : ' (no longer there)';
  throw new UserError(
    `lab "${name}" is up from ${was}${gone}, and ${now} also names a lab "${name}": nothing was changed.\n` +
      `\`qnet up ${now} --replace\` makes the running lab what ${now} says (its nodes and networks added, removed or changed in place), or give that lab another name`,
  );
}

/**
 * The change `up` would make to a running lab (also for `--dry-run`): the change set, the nodes it starts again (not
 * running, and neither removed nor changed: `up` makes the lab as its file says) and the steps of both.
 */
export async function prepareChange(running: LabState, next: ResolvedLab, opts: UpOptions): Promise<{ change: ChangeSet; revive: Revived[]; steps: Step[] }> {
  const refusal = ovnChangeRefusal(running.lab, next);
  if (refusal) next = refusal.next;
  const change = diffLabs(running.lab, next);
  if (change.refused.length) return { change, revive: [], steps: [] };
  const touched = new Set([...change.addNodes, ...change.removeNodes, ...change.restartNodes]);
  const revive = await notRunning(running, next.nodes.filter((n) => !touched.has(n.name)).map((n) => n.name));
  if (isEmpty(change) && !revive.length) return { change, revive, steps: [] };
  if (refusal) return { change: { ...change, refused: [refusal.why] }, revive, steps: [] };
  const ctx = await changeContext(running, next, opts);
  const again = next.nodes.filter((n) => revive.some((r) => r.node === n.name));
  return { change, revive, steps: [...(isEmpty(change) ? [] : planChange(running.lab, next, change, ctx)), ...(again.length ? planStart(next, again, ctx) : [])] };
}

/** The nodes of a running lab, among `nodes`, whose guests do not run, with what they are (read from /proc). */
async function notRunning(running: LabState, nodes: string[]): Promise<Revived[]> {
  const states = await Promise.all(nodes.map(async (node) => ({ node, was: await nodeState(running, node) })));
  return states.filter((r): r is Revived => r.was !== 'running');
}

// What planning a change (or a start) of a running lab needs: its image and accelerator, the saved states.
async function changeContext(running: LabState, next: ResolvedLab, opts: UpOptions): Promise<PlanContext> {
  const user = guestUser();
  const image = await ensureImage(opts.runner, (m) => (opts.reporter ?? silentReporter).info(m));
  const snapshots = opts.cold ? undefined : await labSnapshots(next, image, running.accel as Accel, opts.runner);
  const images = await observeImages(next, opts.runner);
  return { image, accel: running.accel as Accel, user, userIds: await userIds(user), guestIds: labIds(next.name), ...(insideHolder() ? { rootless: true } : {}), parallel: bootWindow(opts), restoreParallel: restoreWindow(opts), ...(snapshots ? { snapshots } : {}), ...images };
}

/** What `qnet start` would do to start these nodes of a running lab again (they are not running): its steps. */
export async function prepareStart(running: LabState, revive: Revived[], opts: UpOptions): Promise<Step[]> {
  const refusal = ovnChangeRefusal(running.lab, running.lab);
  if (refusal) throw new RuntimeError(`lab ${running.lab.name}: ${refusal.why}`);
  const ctx = await changeContext(running, running.lab, opts);
  return planStart(running.lab, running.lab.nodes.filter((n) => revive.some((r) => r.node === n.name)), ctx);
}

/** Starts nodes of a running lab again (`qnet start`): as `up` started them; on failure they stay as they were. */
export async function startNodes(running: LabState, revive: Revived[], opts: UpOptions): Promise<UpResult> {
  const steps = await prepareStart(running, revive, opts);
  return runChange(running, running.lab, diffLabs(running.lab, running.lab), revive, steps, opts);
}

/** How `up` and `qnet start` say which nodes they start again: "deb2 was dead", "a and b were stopped". */
export function describeRevived(revive: Revived[]): string {
  const byWas = new Map<string, string[]>();
  for (const r of revive) byWas.set(r.was, [...(byWas.get(r.was) ?? []), r.node]);
  const was = (w: string) => (w === 'unknown' ? 'never started' : w);
  return [...byWas].map(([w, ns]) => `${ns.join(', ')} ${ns.length === 1 ? 'was' : 'were'} ${was(w)}`).join('; ');
}

/**
 * `up` of a running lab: applies what can change in place (nodes, bridge-only networks) without touching the rest,
 * or refuses with the reasons; starts again the nodes that do not run. Nothing to do: says so (`unchanged`).
 */
async function applyChange(running: LabState, next: ResolvedLab, opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const { change, revive, steps } = await prepareChange(running, next, opts);
  if (change.refused.length)
    throw new RuntimeError(`lab "${next.name}" is up and this change cannot be applied in place:\n${formatChange(change)}`);
  if (isEmpty(change) && opts.replace && opts.source && running.source !== path.resolve(opts.source))
    // Replaced by another file that says the same: the lab is that file's from now on.
    await updateState(running, (now) => ({ ...now, source: path.resolve(opts.source!) }));
  if (isEmpty(change) && !revive.length) return { state: running, ms: Date.now() - started, unchanged: true };
  if (!isEmpty(change)) reporter.info(`lab ${next.name} is up; applying the change:\n${formatChange(change)}`);
  if (revive.length) reporter.info(`${describeRevived(revive)}: ${isEmpty(change) ? `lab ${next.name} is otherwise as its file says; ` : ''}starting ${revive.length === 1 ? 'it' : 'them'} again`);
  return runChange(running, next, change, revive, steps, opts);
}

// Carries out the steps of a change and of the nodes it starts again; on failure undoes them (see applyChange).
async function runChange(running: LabState, next: ResolvedLab, change: ChangeSet, revive: Revived[], steps: Step[], opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const live: Live = { pids: new Map(Object.entries(running.guests).map(([n, g]) => [n, g.pid])), control: new Map(), services: await liveServices(running), snapshots: new Map(), ready: new Map(), templates: new Map() };
  // After a replace the lab is the new file's: state and status name it.
  const state: LabState = { ...running, lab: next, guests: { ...running.guests }, ...(opts.source ? { source: path.resolve(opts.source) } : {}) };
  for (const n of [...change.removeNodes, ...change.restartNodes]) delete state.guests[n];
  // A removed or restarted node's NICs come back plugged in (QEMU starts with every link up).
  if (state.links) state.links = Object.fromEntries(Object.entries(state.links).filter(([n]) => !change.removeNodes.includes(n) && !change.restartNodes.includes(n)));
  // Their impairments are the topology's again.
  if (state.impair) state.impair = Object.fromEntries(Object.entries(state.impair).filter(([n]) => !change.removeNodes.includes(n) && !change.restartNodes.includes(n)));
  const ctx: ExecContext = { runner: opts.runner, lab: next, state, live, reporter, readyTimeoutMs: opts.readyTimeoutMs ?? 120_000, slots: windows(opts) };
  const done: Step[] = [];
  let current: Step | undefined;
  try {
    for (const step of steps) {
      current = step;
      const t = Date.now();
      await execute(step.do, ctx);
      done.push(step);
      reporter.step(step.title, Date.now() - t, true);
    }
    await writeState(state);
    return { state, ms: Date.now() - started, ...(revive.length ? { revived: revive } : {}) };
  } catch (err) {
    if (current) reporter.step(current.title, 0, false);
    const { undone, failed } = await rollback(done, ctx);
    // What was stopped stays stopped: the lab keeps its old definition and status shows what runs (nodes being
    // started again keep their old records: dead or stopped as before).
    await writeState({ ...running, guests: Object.fromEntries(Object.entries(running.guests).filter(([n]) => !change.removeNodes.includes(n) && !change.restartNodes.includes(n))) });
    const what = isEmpty(change) ? `starting ${revive.map((r) => r.node).join(', ')} of lab ${next.name}` : `changing lab ${next.name}`;
    const after = isEmpty(change) ? `${revive.length === 1 ? 'it stays' : 'they stay'} as ${revive.length === 1 ? 'it was' : 'they were'}` : 'nodes stopped for the change stay stopped';
    throw new RuntimeError(
      `${what} failed at "${current?.title ?? 'start'}": ${(err as Error).message}\nundid ${undone} step(s)${failed.length ? `, ${failed.length} could not be undone (${failed.join('; ')})` : ''}; ${after} (see \`qnet status ${next.name}\`)`,
      { cause: err },
    );
  } finally {
    for (const s of live.control.values()) s.destroy();
    await closeTemplates(live);
  }
}

// The lab's helper processes that still run as recorded (their marker checked: a pid may be another's by now).
async function liveServices(state: LabState): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [name, s] of Object.entries(state.services ?? {})) {
    const m = await processMarker(s.pid);
    if (m?.lab === state.lab.name && m.service === name) out.set(name, s.pid);
  }
  return out;
}

/**
 * Starts a guest: from the saved state of its shape when the plan says so and the file is there (it boots after
 * all if the state cannot be loaded: the file is then dropped), else by booting.
 */
async function startFromSnapshot(
  a: Extract<Action, { kind: 'start-guest' }>,
  env: NodeJS.ProcessEnv,
  files: ReturnType<typeof nodeFiles>,
  ctx: ExecContext,
  fds: number[] = [],
): Promise<StartedGuest & { how: 'booted' | 'restored'; startedAt: string; control: ControlChannel }> {
  if (a.snapshot?.mode === 'restore') {
    let fd: number | undefined;
    try {
      fd = openSync(a.snapshot.path, 'r');
    } catch {
      fd = undefined; // not saved (the saver failed, or the cache was cleared): boot instead
    }
    if (fd !== undefined) {
      const startedAt = new Date().toISOString();
      let g: StartedGuest | undefined;
      let control: ControlChannel | undefined;
      const own: number[] = [];
      try {
        // RAM: the template of the shape, shared copy-on-write by every guest restored from it in this up.
        const template = await templateOf(ctx, ramOf(a.snapshot.path));
        // An image node's files for its restored form (the saved disk layer, its overlay on it), opened here.
        for (const f of a.snapshot.fds ?? []) own.push(openSync(f.path, f.write ? 'r+' : 'r'));
        g = await startGuest(a.snapshot.argv ?? withIncoming(a.argv), env, files, 15000, fd, [template, ...own]);
        // Connected before the guest runs: with no host on its port, the guest at its snapshot point sees end of
        // file and polls (a fork every 20 ms, cold under TCG), which cost each restored guest 0.1-0.4 s of CPU
        // between its RESUME and qnet connecting, more the busier the host. Connected, its read simply blocks.
        control = await ControlChannel.connect(files.control, 5000);
        // The devices come in on fd 3, RAM left out of the stream (it is the template's): x-ignore-shared both sides.
        await g.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
        // No self-announce after the load: QEMU would broadcast 5 RARPs per NIC and have the guest send gratuitous
        // ARPs, for switches to learn where a migrated guest went. A restored guest is new and has no address yet,
        // and every broadcast wakes every guest on the bridge: with 100 guests, those already up spent ~1 % CPU each
        // receiving the newcomers' announcements (quadratic in the guests of a network).
        await g.qmp.execute('migrate-set-parameters', { 'announce-rounds': 0 });
        await g.qmp.execute('migrate-incoming', { uri: 'fd:3' });
        const lines = resumeLines(files.config, a.node, ctx);
        lines.catch(() => {});
        await waitRestored(g, files);
        // It waits at its snapshot point: its clock and configuration are this run's, told the moment it runs.
        control.send(await lines);
        await touchSnapshot(a.snapshot.path);
        return { ...g, how: 'restored', startedAt, control };
      } catch (e) {
        control?.destroy();
        const why = (e as Error).message.replace(/^the saved state could not be loaded:?\s*/, '').replace(/\s*\n\s*/g, ' ').trim();
        ctx.reporter.info(`${a.node}: the saved state could not be loaded (${why}); booting it instead (the saved state is dropped)`);
        if (g) {
          g.qmp.close();
          await stopGuest(g.pid, files, { acpi: false, graceMs: 0 });
          // Its sockets and taps must be free before the same guest starts again.
          if (g.child.exitCode === null && g.child.signalCode === null) await new Promise((r) => g!.child.once('exit', r));
        }
        await dropSnapshot(a.snapshot.path);
      } finally {
        closeSync(fd);
        for (const o of own) closeSync(o);
      }
    }
  }
  const startedAt = new Date().toISOString();
  const g = await startGuest(a.argv, env, files, 15000, undefined, fds);
  try {
    // Connected at once so that the guest's READY cannot be missed.
    return { ...g, how: 'booted', startedAt, control: await ControlChannel.connect(files.control, 5000) };
  } catch (e) {
    g.qmp.close();
    await stopGuest(g.pid, files, { acpi: false, graceMs: 0 });
    throw e;
  }
}

/**
 * Watches a saving guest's control channel for SNAPSHOT, saves its state there, and resumes it. Resolves once
 * the guest carries on (a failed save is reported, not fatal: the others of its shape boot instead); rejects if
 * the guest fails or goes away before its snapshot point.
 */
async function saveAtSnapshotPoint(ch: ControlChannel, files: ReturnType<typeof nodeFiles>, dest: string, node: string, ctx: ExecContext, disk?: GuestSnapshot['disk']): Promise<void> {
  await ch.waitFor((l) => l === 'SNAPSHOT', (l) => l.startsWith('ERROR'), ctx.readyTimeoutMs, node);
  const t0 = Date.now();
  try {
    const pid = ctx.live.pids.get(node);
    if (pid === undefined) throw new RuntimeError(`${node} has no QEMU process to save`);
    const bytes = await saveGuestState(files.qmp, path.join(files.dir, 'save.sock'), dest, labIds(ctx.lab.name), pid, disk);
    ctx.reporter.step(`save ${node} at its snapshot point (${(bytes / 2 ** 20).toFixed(0)} MiB, for the next guests of its shape)`, Date.now() - t0, true);
  } catch (e) {
    ctx.reporter.info(`${node}: ${(e as Error).message}; guests of its shape boot instead`);
  }
  ch.send(await resumeLines(files.config, node, ctx));
}

// The sealed memfd of a RAM template for this run (made once, shared by every guest restored from it).
function templateOf(ctx: ExecContext, ramFile: string): Promise<number> {
  let t = ctx.live.templates.get(ramFile);
  if (!t) {
    t = sealedTemplate(ramFile);
    t.catch(() => {});
    ctx.live.templates.set(ramFile, t);
  }
  return t;
}

/** Closes a run's template descriptors (the guests that map a template keep it alive). */
async function closeTemplates(live: Live): Promise<void> {
  for (const t of live.templates.values()) await t.then((fd) => closeSync(fd), () => {});
  live.templates.clear();
}

// What a guest waiting at its snapshot point is told to carry on with, as its kind says: this host's clock, in
// seconds, then its configuration (the file QEMU serves it on fw_cfg at boot).
async function resumeLines(config: string, node: string, ctx: ExecContext): Promise<string> {
  const resolved = ctx.lab.nodes.find((n) => n.name === node);
  if (!resolved) throw new RuntimeError(`${node}: not a node of lab ${ctx.lab.name}`);
  return kindOf(resolved).resumeMessage(await readFile(config, 'utf8'), Math.floor(Date.now() / 1000));
}

// How many guests may boot at once: as asked, else one more than the cores.
function bootWindow(opts: UpOptions): number {
  return opts.parallel ?? defaultBootWindow();
}

// How many image nodes may be restored at once: as asked, else one fewer than the cores.
function restoreWindow(opts: UpOptions): number {
  return opts.parallel ?? defaultRestoreWindow();
}

// The executor's two windows, from the options.
function windows(opts: UpOptions): { boot: Slots; restore: Slots } {
  return { boot: new Slots(bootWindow(opts)), restore: new Slots(restoreWindow(opts)) };
}

// Rootless: pasta, or slirp4netns where pasta is missing, as found on PATH (render/uplink-rootless.ts decides).
function chooseUserNatOnPath(): UserNatChoice {
  const find = (tool: string) => (process.env.PATH ?? '').split(':').map((d) => path.join(d || '.', tool)).find((f) => existsSync(f));
  const found = { pasta: find('pasta'), slirp4netns: find('slirp4netns') };
  try {
    return chooseUserNat(Object.fromEntries(Object.entries(found).filter(([, v]) => v)) as { pasta?: string; slirp4netns?: string });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}
