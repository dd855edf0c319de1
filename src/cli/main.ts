// The qnet command line: thin commands over the library API, with exit codes 0 ok, 1 runtime failure, 2 bad input.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { exitCodeOf, UserError } from '../errors.js';
import { RealRunner } from '../host/run.js';
import type { AccelChoice } from '../lab/accel.js';
import type { ResolvedLab } from '../topology/model.js';
import { isLabName, LAB_NAME_RULE, NAME_PATTERN } from '../topology/names.js';
import { fmtMs, green, red, table, yellow } from './term.js';

// Each command loads what it needs when it runs (`qnet --help` and `qnet status` with no labs need little of it):
// the library's modules are imported inside the actions below.

// commander is a CommonJS package: required as one, it loads in 14-15 ms here against 20-22 ms through an ES import
// (node then also runs its CommonJS-to-ES translation), measured in one process each, 5 runs.
const { Command, CommanderError, Option } = createRequire(import.meta.url)('commander') as typeof import('commander');

/** The commands, by their first word: `main` defines only the one it runs. */
export const COMMANDS = ['validate', 'up', 'status', 'down', 'stop', 'start', 'restart', 'demo', 'leases', 'exec', 'ssh', 'console', 'link', 'capture', 'impair', 'web', 'check', 'graph', 'export', 'image', 'agent', 'host', 'doctor', 'schema'];

/** Prints a valid lab's warnings (exposure to a real LAN, adjusted settings) on stderr. */
async function warn(lab: ResolvedLab): Promise<void> {
  const { labWarnings } = await import('../topology/warnings.js');
  for (const w of labWarnings(lab)) process.stderr.write(`${yellow('warning:')} ${w}\n`);
}

/**
 * Refuses (exit 2, before anything happens) what a lab of an ordinary user cannot have: the parts that need the
 * host's own network namespace. As root nothing is asked or loaded.
 */
async function refuseIfRootless(lab: ResolvedLab, source: string): Promise<void> {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return;
  const { refuseRootless } = await import('../topology/rootless.js');
  const { readFile } = await import('node:fs/promises');
  const start = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')).trim());
  refuseRootless(lab, { rootless: true, uid, unprivilegedPortStart: Number.isInteger(start) ? start : 1024 }, source);
}

/** `qnet web`: serves until SIGINT or SIGTERM; with `lab`, opens the page on it (xdg-open where there is a display). */
async function serveWeb(listen: string, lab?: string): Promise<number> {
  const { isLoopback, parseListen, startWeb } = await import('../web/server.js');
  const where = parseListen(listen);
  if (!isLoopback(where.host))
    process.stderr.write(`${yellow('warning:')} listening on ${where.host}, not loopback: anyone who can reach it and has the token can type into the guests' root consoles\n`);
  const web = await startWeb({ listen });
  const url = `${web.loginUrl}${lab ? `#lab=${lab}` : ''}`;
  process.stderr.write(`${green('✓')} qnet web on ${web.url}; open ${url}\n  (the token is in the URL once; the page keeps it in a cookie). Ctrl-C stops it\n`);
  if (lab && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) spawn('xdg-open', [url], { stdio: 'ignore', detached: true }).on('error', () => {}).unref();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await web.close();
  process.stderr.write('qnet web stopped\n');
  return 0;
}

/**
 * The program for these arguments, not yet run: only the command they name is defined (see below); `code` is the
 * exit code its action set.
 */
export function buildProgram(argv: string[]): { program: import('commander').Command; code: () => number } {
  const program = new Command();
  const runner = new RealRunner();
  // Only the command being run is defined: defining all of them took 6-7 ms of every command's start-up here. All
  // are defined for the program's own help and version, `help`, and a name not in COMMANDS (the help lists them, a
  // mistyped name gets "did you mean", and a command left out of COMMANDS is simply always defined).
  const only = COMMANDS.includes(argv[0] ?? '') ? argv[0] : undefined;
  const defines = (name: string) => only === undefined || only === name;
  let code = 0;
  program
    .name('qnet')
    .description('Topology file -> a running, verified network of QEMU guests; and back to nothing.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(red(s)) });

  if (defines('validate'))
    program
      .command('validate')
      .description('check a topology file; exit 2 with every problem and its path if it is invalid')
      .argument('<file>', 'topology file (YAML)')
      .option('--json', 'print the resolved lab as JSON')
      .action(async (file: string, o: { json?: boolean }) => {
        const { loadTopology } = await import('../topology/load.js');
        const { inspectLabImages } = await import('../guest/image-check.js');
        const { formatSize } = await import('../topology/size.js');
        const loaded = await loadTopology(file);
        await refuseIfRootless(loaded, file);
        // Image nodes: each image is read (qemu-img info) and refused if it is not a self-contained disk image.
        const lab = await inspectLabImages(runner, loaded, file);
        await warn(lab);
        if (o.json) process.stdout.write(JSON.stringify(lab, null, 2) + '\n');
        else {
          const nics = lab.nodes.reduce((n, x) => n + x.nics.length, 0);
          process.stdout.write(`${green('✓')} ${file}: lab ${lab.name}, ${lab.nodes.length} node(s), ${lab.networks.length} network(s), ${nics} NIC(s)\n`);
          if (lab.hosts) {
            const { sshDestination } = await import('../topology/ssh-target.js');
            const hosts = lab.hosts.map((h) => `${h.name} (${h.ssh.kind === 'local' ? 'this machine' : sshDestination(h.ssh)})`).join(', ');
            const db = lab.ovn?.central ? `central ${lab.ovn.central}` : `NB ${lab.ovn?.nb}, SB ${lab.ovn?.sb}`;
            process.stdout.write(`  on OVN: hosts ${hosts}; ${db}, gateway ${lab.ovn?.gateway}\n`);
          }
          for (const n of lab.nodes)
            if (n.image) process.stdout.write(`  ${n.name}: ${n.image.path} (${n.image.format}, ${formatSize(n.image.virtualSize!)}), config ${n.image.config}, ready ${n.image.ready.kind}${n.image.persist ? ', kept across down/up' : ''}\n`);
        }
      });

  if (defines('up'))
    program
      .command('up')
      .description('bring a lab up; returns when every guest is booted and configured (rolls back on failure)')
      .argument('<file>', 'topology file (YAML)')
      .option('--dry-run', 'print the planned operations and change nothing')
      .addOption(new Option('--accel <mode>', 'accelerator').choices(['auto', 'kvm', 'tcg']).default('auto'))
      .option('--timeout <seconds>', 'how long to wait for the guests to be ready (default 180; 600 when the lab has image nodes)')
      .option('--parallel <n>', 'at most n guests booting at once, and n image nodes being restored, the next as soon as one is ready (default: cores + 1 booting, cores - 1 restored, at least 1; 0: no limit); restored built-in guests are not limited')
      .option('--cold', 'boot every guest: do not start guests from the saved state of their shape, nor save one')
      .option('--replace', 'the lab of this name is up from another file: make it this file\'s lab (without it, refused with exit 2)')
      .option('--check', 'once the lab is up, run its declared checks (`checks:`); exit 1 naming each that fails (the lab stays up)')
      .option('--web', 'once the lab is up, serve the web view (as `qnet web`) and open it on this lab; until Ctrl-C (the lab stays up)')
      .action(async (file: string, o: { dryRun?: boolean; accel: AccelChoice; timeout?: string; parallel?: string; cold?: boolean; replace?: boolean; check?: boolean; web?: boolean }) => {
        const { loadTopology } = await import('../topology/load.js');
        const { checkSource, prepareChange, prepareUp, up } = await import('../lab/up.js');
        const { formatChange, isEmpty } = await import('../plan/change.js');
        const { formatPlan } = await import('../plan/plan.js');
        const { readState } = await import('../lab/state.js');
        const { inspectLabImages } = await import('../guest/image-check.js');
        const { consoleReporter, vncHint } = await import('./output.js');
        const lab = await loadTopology(file);
        await refuseIfRootless(lab, file);
        await warn(lab);
        if (lab.fabric === 'ovn') {
          // Over several hosts: the plan only, for now (a lab on this one host is made as any other).
          const { ovnOnThisHost, previewOvn } = await import('../lab/ovn.js');
          if (!ovnOnThisHost(lab)) {
            if (o.dryRun) return void process.stdout.write(await previewOvn(lab));
            // Over several hosts: each host's part made by qnet there (lab/multihost.ts).
            const { upHosts } = await import('../lab/multihost.js');
            const t = Number(o.timeout ?? 180);
            if (!Number.isFinite(t) || t <= 0) throw new UserError(`--timeout: expected a number of seconds, got "${o.timeout}"`);
            const r = await upHosts(lab, { reporter: consoleReporter(), readyTimeoutMs: t * 1000, cold: !!o.cold });
            const on = [...new Set(Object.values(r.placement))].map((h) => `${h}: ${Object.entries(r.placement).filter(([, x]) => x === h).map(([n]) => n).join(', ')}`).join('; ');
            process.stderr.write(`${green('✓')} lab ${lab.name} is up over ${new Set(Object.values(r.placement)).size} hosts (${on}; guests' MTU ${r.mtu}) in ${fmtMs(r.ms)}; \`qnet status ${lab.name}\`, \`qnet down ${lab.name}\`\n`);
            if (!o.check) return;
            if (!lab.checks?.length) return void process.stderr.write(`${yellow('warning:')} --check: ${file} declares no checks (\`checks:\`)\n`);
            const { checkWith } = await import('../lab/check.js');
            const { hostsAccess } = await import('../lab/multihost.js');
            const { readHostsState } = await import('../lab/hosts-state.js');
            const { declaredText } = await import('./check.js');
            const report = await checkWith(hostsAccess((await readHostsState(lab.name))!), { declaredOnly: true });
            process.stdout.write(declaredText(report.declared));
            const failed = report.declared.filter((d) => !d.ok);
            if (failed.length) {
              process.stderr.write(`${red('✗')} ${failed.length} of ${report.declared.length} declared checks failed: ${failed.map((f) => f.label).join('; ')}\n`);
              code = 1;
            } else process.stderr.write(`${green('✓')} all ${report.declared.length} declared checks passed in ${fmtMs(report.ms)}\n`);
            return;
          }
        }
        // A real OS under TCG takes one to three minutes to cloud-init's end (more when several boot at once).
        const timeout = Number(o.timeout ?? (lab.nodes.some((n) => n.image) ? 600 : 180));
        if (!Number.isFinite(timeout) || timeout <= 0) throw new UserError(`--timeout: expected a number of seconds, got "${o.timeout}"`);
        const parallel = o.parallel === undefined ? undefined : Number(o.parallel);
        if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 0))
          throw new UserError(`--parallel: expected a whole number of guests (0: no limit), got "${o.parallel}"`);
        const reporter = consoleReporter();
        const boot = { ...(parallel !== undefined ? { parallel } : {}), cold: !!o.cold, replace: !!o.replace };
        if (o.dryRun) {
          const running = await readState(lab.name);
          if (running?.status === 'up') {
            await checkSource(running, file, !!o.replace);
            const { change, revive, steps } = await prepareChange(running, await inspectLabImages(runner, lab, file), { runner, reporter, ...boot });
            const { describeRevived } = await import('../lab/up.js');
            const what = (isEmpty(change) ? '  nothing differs' : formatChange(change)) + (revive.length ? `\n  ${describeRevived(revive)}: started again` : '');
            process.stdout.write(`lab ${lab.name} is up${running.source ? ` from ${running.source}` : ''}; the change${change.refused.length ? ' would be refused' : ''}:\n${what}\n`);
            if (steps.length) process.stdout.write(`${formatPlan(steps)}\n`);
            process.stdout.write('nothing was changed\n');
            return;
          }
          const plan = await prepareUp(lab, { runner, reporter, accel: o.accel, source: file, ...boot });
          process.stdout.write(`plan for lab ${lab.name} (${plan.accel}: ${plan.why}); nothing was changed\n${formatPlan(plan.steps)}\n`);
          return;
        }
        const r = await up(lab, { runner, reporter, accel: o.accel, source: file, readyTimeoutMs: timeout * 1000, ...boot });
        if (r.unchanged) return void process.stderr.write(`lab ${lab.name} is already up and unchanged; nothing to do (\`qnet status ${lab.name}\`)\n`);
        const { describeRevived } = await import('../lab/up.js');
        if (r.revived) process.stderr.write(`${green('✓')} ${describeRevived(r.revived)}: started again\n`);
        for (const n of r.state.lab.nodes) if (n.image?.vnc) process.stderr.write(`· ${n.name}'s screen: ${vncHint(r.state.lab.name, n)}\n`);
        process.stderr.write(`${green('✓')} lab ${lab.name} is up in ${fmtMs(r.ms)}; \`qnet status ${lab.name}\`, \`qnet down ${lab.name}\`\n`);
        if (o.check) {
          const { checkLab } = await import('../lab/check.js');
          const { declaredText } = await import('./check.js');
          if (!lab.checks?.length) return void process.stderr.write(`${yellow('warning:')} --check: ${file} declares no checks (\`checks:\`)\n`);
          const report = await checkLab(lab.name, { declaredOnly: true });
          process.stdout.write(declaredText(report.declared));
          const failed = report.declared.filter((d) => !d.ok);
          if (failed.length) {
            process.stderr.write(`${red('✗')} ${failed.length} of ${report.declared.length} declared checks failed: ${failed.map((f) => f.label).join('; ')} (the lab is up: \`qnet check ${lab.name}\` for the whole matrix)\n`);
            code = 1;
          } else process.stderr.write(`${green('✓')} all ${report.declared.length} declared checks passed in ${fmtMs(report.ms)}\n`);
        }
        if (o.web) {
          const c = await serveWeb('127.0.0.1:8707', lab.name);
          if (c) code = c;
        }
      });

  if (defines('status'))
    program
      .command('status')
      .description('show labs: nodes, their state, pids and addresses, networks and taps')
      .argument('[lab]', 'lab name (all labs when absent)')
      .option('--json', 'machine-readable output')
      .option('--monitor', 'add each running guest\'s QEMU monitor view of its network (`info network`)')
      .action(async (lab: string | undefined, o: { json?: boolean; monitor?: boolean }) => {
        if (lab && isLabName(lab)) {
          // A lab over several hosts: each host's part, as its agent sees it.
          // Only a lab the driver's state names loads what reaches hosts.
          const over = (await (await import('../lab/hosts-state.js')).readHostsState(lab)) ? await (await import('../lab/multihost.js')).hostsOf(lab) : null;
          if (over) {
            const parts = await Promise.all(over.hosts.map(async (h) => ({ host: h.name, status: await h.call({ op: 'status', lab }).catch((e: Error) => ({ error: e.message })) })));
            if (o.json) return void process.stdout.write(JSON.stringify({ lab, status: over.state?.status, placement: over.state?.placement, hosts: parts }, null, 2) + '\n');
            const { renderStatus } = await import('./output.js');
            for (const p of parts) {
              const s = p.status as import('../lab/status.js').LabStatus | { error: string } | null;
              process.stdout.write(`host ${p.host}: ${s === null ? 'nothing of the lab' : 'error' in s ? s.error : `\n${renderStatus(s)}`}\n`);
            }
            return;
          }
        }
        const { keptLabs, listLabs } = await import('../lab/discover.js');
        const { labStateDir } = await import('../dirs.js');
        // What reads and shows a lab is loaded only when there is one: with no labs, most of the command's start-up.
        const state = lab ? await import('../lab/state.js') : undefined;
        const names = lab ? [state!.checkLabName(lab)] : await listLabs();
        const list = names.length ? await (await import('../lab/status.js')).allStatus(names) : [];
        if (o.monitor && list.length) {
          const { monitorNetwork } = await import('../lab/exec.js');
          for (const s of list)
            for (const n of s.nodes)
              if (n.state === 'running') n.monitorNetwork = await monitorNetwork(s.lab, n.name).catch((e: Error) => `unavailable: ${e.message}`);
        }
        // An unknown lab is bad input, as for every command that names one.
        if (lab && !list.length && !(await keptLabs()).includes(lab)) throw state!.noSuchLab(lab, 'on this host');
        if (o.json) process.stdout.write(JSON.stringify(lab ? (list[0] ?? null) : list, null, 2) + '\n');
        else {
          if (list.length) {
            const { renderStatus } = await import('./output.js');
            process.stdout.write(list.map(renderStatus).join('\n\n') + '\n');
          }
          const driven = lab ? undefined : await import('../lab/hosts-state.js');
          const drivenNames = driven ? await driven.drivenLabs() : [];
          if (!lab && !list.length && !drivenNames.length) process.stdout.write('no labs\n');
          // Labs over several hosts driven from here: named, each host's part is shown by `status LAB`.
          if (driven)
            for (const d of drivenNames) {
              const st = await driven.readHostsState(d);
              if (st) process.stdout.write(`lab ${d} (${st.status}) over hosts ${(st.lab.hosts ?? []).map((h) => h.name).join(', ')}: \`qnet status ${d}\`\n`);
            }
          // Disks kept by persist: true outlive their lab: say where they are and how they go.
          const up = new Set(list.map((x) => x.lab));
          const kept = (await keptLabs()).filter((k) => !up.has(k) && (!lab || k === lab));
          for (const k of kept) process.stdout.write(`lab ${k} is down; its kept disks are in ${labStateDir(k)} (\`qnet down ${k} --purge\` removes them)\n`);
        }
      });

  if (defines('down'))
    program
      .command('down')
      .description('stop every guest and remove everything a lab made; a no-op when nothing is left')
      .argument('[target]', 'lab name or topology file')
      .option('--all', 'every lab on this host, found by ownership marker')
      .option('--grace <seconds>', 'how long image guests get to power off after the ACPI power button before QEMU quits (built-in guests have no disk and stop at once)', '30')
      .option('--purge', 'also remove the kept disks of nodes with persist: true (and the lab\'s kept SSH key)')
      .action(async (target: string | undefined, o: { all?: boolean; grace: string; purge?: boolean }) => {
        const { down } = await import('../lab/down.js');
        const { listLabs, keptLabs } = await import('../lab/discover.js');
        const { loadTopology } = await import('../topology/load.js');
        const { consoleReporter } = await import('./output.js');
        let labs: string[];
        let topology: ResolvedLab | undefined;
        if (o.all) {
          // With the labs over several hosts this machine drives (their driver's state).
          const { drivenLabs } = await import('../lab/hosts-state.js');
          labs = [...new Set([...(await listLabs({ tables: true })), ...(await drivenLabs()), ...(o.purge ? await keptLabs() : [])])].sort();
        }
        else if (!target) throw new UserError('down: name a lab or a topology file, or use --all');
        else if (isLabName(target) && !existsSync(target)) labs = [target];
        else if (existsSync(target)) labs = [(topology = await loadTopology(target)).name];
        else throw new UserError(`'${target}' is neither a topology file nor a lab name (${LAB_NAME_RULE})`);
        const graceMs = Number(o.grace) * 1000;
        if (!Number.isFinite(graceMs) || graceMs < 0) throw new UserError(`--grace: expected a number of seconds, got "${o.grace}"`);
        const reporter = consoleReporter();
        for (const lab of labs) {
          // A lab over several hosts (by the driver's state, or the topology file given): removed on every host.
          const driven = (await (await import('../lab/hosts-state.js')).readHostsState(lab)) || topology?.hosts;
          const { downHosts, hostsOf } = driven ? await import('../lab/multihost.js') : { downHosts: undefined, hostsOf: undefined };
          const over = hostsOf ? await hostsOf(lab, topology) : null;
          if (over && downHosts) {
            const r = await downHosts(lab, over.hosts, { reporter });
            for (const [h, what] of Object.entries(r.removed)) process.stderr.write(`${green('✓')} ${h}: ${what.length ? `removed ${what.join(', ')}` : 'nothing of the lab there'}\n`);
            for (const u of r.unreachable) process.stderr.write(`${red('✗')} ${u}\n`);
            if (r.unreachable.length) {
              process.stderr.write(`lab ${lab} is down on ${Object.keys(r.removed).length} of ${over.hosts.length} hosts; run \`qnet down ${lab}\` again once the others are reachable\n`);
              code = 1;
            } else process.stderr.write(`${green('✓')} lab ${lab} is down on ${over.hosts.length} hosts in ${fmtMs(r.ms)}\n`);
            continue;
          }
          const r = await down(lab, { runner, reporter, graceMs, purge: !!o.purge });
          for (const w of r.warnings) process.stderr.write(`! ${w}\n`);
          if (r.removed.length) process.stderr.write(`${green('✓')} lab ${lab} is down in ${fmtMs(r.ms)}: removed ${r.removed.join(', ')}\n`);
          else if (r.found) process.stderr.write(`lab ${lab}: nothing to remove\n`);
          else {
            // Nothing of it on the host: taken down before (say so, exit 0), or never a lab here (a typo: exit 2).
            const { takenDownAt } = await import('../lab/tombstones.js');
            const at = await takenDownAt(lab);
            if (!at) throw (await import('../lab/state.js')).noSuchLab(lab, 'on this host');
            process.stderr.write(`lab ${lab} is already down (taken down at ${at.slice(0, 19).replace('T', ' ')} UTC): nothing to remove\n`);
          }
        }
        if (o.all && !labs.length) process.stderr.write('no labs on this host\n');
      });

  // One node's life: stop, start, restart (the rest of the lab untouched).
  const parseGrace = (g: string) => {
    const ms = Number(g) * 1000;
    if (!Number.isFinite(ms) || ms < 0) throw new UserError(`--grace: expected a number of seconds, got "${g}"`);
    return ms;
  };
  const parseTimeout = (t: string | undefined, image: boolean) => {
    const s = Number(t ?? (image ? 600 : 180));
    if (!Number.isFinite(s) || s <= 0) throw new UserError(`--timeout: expected a number of seconds, got "${t}"`);
    return s * 1000;
  };
  const GRACE_HELP = 'how long an image node gets to power off after the ACPI power button before QEMU quits (a built-in guest stops at once)';
  const TIMEOUT_HELP = 'how long to wait for the node to be ready (default 180; 600 for an image node)';
  const started = async (lab: string, node: string, r: import('../lab/up.js').UpResult & { already?: boolean }) => {
    if (r.already) return void process.stderr.write(`${lab}/${node} is already running; nothing to do\n`);
    const { describeRevived } = await import('../lab/up.js');
    process.stderr.write(`${green('✓')} ${describeRevived(r.revived ?? [])}: running again in ${fmtMs(r.ms)}\n`);
  };
  const stopped = (lab: string, r: import('../lab/lifecycle.js').StopResult) => {
    if (r.was === 'running') process.stderr.write(`${green('✓')} ${r.node} is stopped (${r.how}); its taps and the rest of lab ${lab} stay (\`qnet start ${lab} ${r.node}\`)\n`);
    else if (r.was === 'dead') process.stderr.write(`${r.node} was not running (dead): marked stopped (\`qnet start ${lab} ${r.node}\`)\n`);
    else process.stderr.write(`${r.node} is already ${r.was === 'stopped' ? 'stopped' : 'not running (never started)'}; nothing to do\n`);
  };

  if (defines('stop'))
    program
      .command('stop')
      .description('power one node of a running lab off, as `down` stops guests; its taps and the rest of the lab stay, status shows it stopped')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .option('--grace <seconds>', GRACE_HELP, '30')
      .action(async (lab: string, node: string, o: { grace: string }) => {
        const { stopNode } = await import('../lab/lifecycle.js');
        const { consoleReporter } = await import('./output.js');
        stopped(lab, await stopNode(lab, node, { reporter: consoleReporter(), graceMs: parseGrace(o.grace) }));
      });

  if (defines('start'))
    program
      .command('start')
      .description('start a stopped or dead node of a running lab again, as `up` started it (rolls back on failure)')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .option('--timeout <seconds>', TIMEOUT_HELP)
      .option('--cold', 'boot it: do not start it from the saved state of its shape')
      .action(async (lab: string, node: string, o: { timeout?: string; cold?: boolean }) => {
        const { labNode, startNode } = await import('../lab/lifecycle.js');
        const { consoleReporter } = await import('./output.js');
        const readyTimeoutMs = parseTimeout(o.timeout, !!(await labNode(lab, node)).node.image);
        await started(lab, node, await startNode(lab, node, { runner, reporter: consoleReporter(), readyTimeoutMs, cold: !!o.cold }));
      });

  if (defines('restart'))
    program
      .command('restart')
      .description('stop a node of a running lab (if it runs) and start it again')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .option('--grace <seconds>', GRACE_HELP, '30')
      .option('--timeout <seconds>', TIMEOUT_HELP)
      .option('--cold', 'boot it: do not start it from the saved state of its shape')
      .action(async (lab: string, node: string, o: { grace: string; timeout?: string; cold?: boolean }) => {
        const { labNode, stopNode, startNode } = await import('../lab/lifecycle.js');
        const { consoleReporter } = await import('./output.js');
        const reporter = consoleReporter();
        const graceMs = parseGrace(o.grace);
        const readyTimeoutMs = parseTimeout(o.timeout, !!(await labNode(lab, node)).node.image);
        stopped(lab, await stopNode(lab, node, { reporter, graceMs }));
        await started(lab, node, await startNode(lab, node, { runner, reporter, readyTimeoutMs, cold: !!o.cold }));
      });

  if (defines('demo'))
    program
      .command('demo')
      .description('bring up the seed lab (examples/seed-lab.yaml), check it end to end, tear it down; exit 1 if a check fails')
      .option('--image <file>', 'run the seed lab on real Debian guests from this disk image (examples/seed-lab-debian.yaml; make one with `qnet image create debian`)')
      .option('--json', 'print the checks as JSON (name, ok, ms, detail) instead of a table')
      .action(async (o: { image?: string; json?: boolean }) => {
        const { runDemo } = await import('../lab/demo.js');
        const { consoleReporter } = await import('./output.js');
        const t = Date.now();
        const checks = await runDemo({ runner, reporter: consoleReporter(), ...(o.image ? { image: o.image } : {}) });
        code = checks.some((c) => !c.ok) ? 1 : 0;
        if (o.json) return void process.stdout.write(JSON.stringify({ checks, passed: checks.filter((c) => c.ok).length, failed: checks.filter((c) => !c.ok).length, ms: Date.now() - t }, null, 2) + '\n');
        process.stdout.write(
          '\n' +
            table(
              ['CHECK', 'RESULT', 'TIME', 'DETAIL'],
              // Checks measured together (the declared ones, in one batch) show the batch's time once, on the first.
              checks.map((c, i) => [c.name, c.ok ? green('pass') : red('FAIL'), c.batch && checks[i - 1]?.batch === c.batch ? '' : fmtMs(c.ms), c.detail]),
            ) +
            '\n',
        );
        const failed = checks.filter((c) => !c.ok).length;
        process.stdout.write(
          failed ? `${red(`${failed} of ${checks.length} checks failed`)}\n` : `${green(`all ${checks.length} checks passed`)} in ${fmtMs(Date.now() - t)}; the lab is gone\n`,
        );
        code = failed ? 1 : 0;
      });

  if (defines('leases'))
    program
      .command('leases')
      .description('show the current DHCP leases of a lab (from its dnsmasq instances)')
      .argument('<lab>', 'lab name')
      .option('--json', 'machine-readable output')
      .action(async (lab: string, o: { json?: boolean }) => {
        const { labLeases } = await import('../lab/leases.js');
        const leases = await labLeases(lab);
        if (o.json) process.stdout.write(JSON.stringify(leases, null, 2) + '\n');
        else if (!leases.length) process.stdout.write(`lab ${lab}: no leases\n`);
        else process.stdout.write(table(['NETWORK', 'MAC', 'IP', 'HOSTNAME', 'EXPIRES'], leases.map((l) => [l.network, l.mac, l.ip, l.hostname || '-', l.expires])) + '\n');
      });

  if (defines('exec'))
    program
      .command('exec')
      .description('run a command in a guest (through the QEMU guest agent, not the network); exits with its exit code')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .argument('<command...>', 'the command and its arguments (put them after --)')
      .option('--timeout <seconds>', 'kill the command after this long and exit 124', '60')
      .action(async (lab: string, node: string, command: string[], o: { timeout: string }) => {
        const { execInGuest } = await import('../lab/exec.js');
        const timeout = Number(o.timeout);
        if (!Number.isFinite(timeout) || timeout <= 0) throw new UserError(`--timeout: expected a number of seconds, got "${o.timeout}"`);
        // A lab over several hosts: run by the agent of the node's host.
        const { readHostsState } = await import('../lab/hosts-state.js');
        const over = isLabName(lab) ? await readHostsState(lab) : null;
        const r = over ? await (await import('../lab/multihost.js')).execOnHost(over, node, command, timeout * 1000) : await execInGuest(lab, node, command, { timeoutMs: timeout * 1000 });
        process.stdout.write(r.stdout);
        process.stderr.write(r.stderr);
        if (r.timedOut) process.stderr.write(`qnet exec: ${command[0]} timed out after ${timeout} s and was killed\n`);
        code = r.code;
      });

  if (defines('ssh'))
    program
      .command('ssh')
      .description('a shell (or a command) in an image node over SSH, as root with the lab key, from the lab namespace; checks the host key qnet gave the node')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .argument('[command...]', 'a command to run instead of a shell (put it after --)')
      .action(async (lab: string, node: string, command: string[]) => {
        const { sshArgv } = await import('../lab/ssh.js');
        const argv = await sshArgv(lab, node, command, { tty: !command.length && process.stdin.isTTY === true });
        code = await new Promise<number>((resolve) => {
          const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
          child.once('error', (e) => {
            process.stderr.write(`${red('error:')} ssh: ${e.message} (install openssh-client)\n`);
            resolve(1);
          });
          child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : 1)));
        });
      });

  if (defines('console'))
    program
      .command('console')
      .description('attach the terminal to a guest\'s serial console (a root shell); detach with Ctrl-]')
      .argument('<lab>', 'lab name')
      .argument('<node>', 'node name')
      .action(async (lab: string, node: string) => {
        const { liveNode } = await import('../lab/exec.js');
        const { attachConsole } = await import('./console.js');
        const files = await liveNode(lab, node);
        code = await attachConsole(files.console, `${lab}/${node}`);
      });

  if (defines('link'))
    program
      .command('link')
      .description('pull or plug a NIC\'s cable on a running lab: the guest sees its carrier go (or come back), no frame passes meanwhile')
      .argument('<lab>', 'lab name')
      .argument('<nic>', 'NODE:NIC (a NIC by position, 0 for the first, or by name, eth1); NODE alone for a node with one NIC')
      .argument('<state>', 'down or up')
      .action(async (lab: string, ref: string, st: string) => {
        if (st !== 'down' && st !== 'up') throw new UserError(`link: the state is "down" or "up", got "${st}"`);
        const { setLink } = await import('../lab/link.js');
        process.stderr.write(`${green('✓')} ${await setLink(lab, ref, st === 'up')}\n`);
      });

  if (defines('capture'))
    program
      .command('capture')
      .description('the packets of one NIC (NODE[:NIC]) or one network (NETWORK) of a running lab: pcap to a file or stdout, or one line each')
      .argument('<lab>', 'lab name')
      .argument('<target>', 'NODE:NIC (a NIC by position or name; NODE alone for a node with one NIC), or a network\'s name')
      .option('-w, --write <file>', 'write pcap to this file ("-": to stdout, e.g. `| wireshark -k -i -`); without it, one line of text per packet')
      .option('--count <n>', 'stop after this many packets')
      .option('--filter <bpf>', 'a tcpdump filter expression, e.g. "icmp or arp"')
      .option('--network', 'the target is a network even if a node has the same name')
      .option('--json', 'print the summary (what, interface, packets, how it stopped) as JSON (on stderr when pcap goes to stdout)')
      .action(async (lab: string, target: string, o: { write?: string; count?: string; filter?: string; network?: boolean; json?: boolean }) => {
        const { capture } = await import('../lab/capture.js');
        // `2>&1 | head`: once the reader is gone there is no one left to tell; its EPIPE is no crash.
        process.stderr.on('error', () => {});
        const count = o.count === undefined ? undefined : Number(o.count);
        if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new UserError(`--count: expected a whole number of packets (1 or more), got "${o.count}"`);
        const s = await capture(lab, target, {
          ...(o.write !== undefined ? { write: o.write } : {}),
          ...(count !== undefined ? { count } : {}),
          ...(o.filter ? { filter: [o.filter] } : {}),
          network: !!o.network,
          stdout: process.stdout,
          stderr: process.stderr,
        });
        const how = { count: 'after the count', interrupted: 'on Ctrl-C', 'lab down': 'as the lab went down', 'reader closed': 'as its reader closed', ended: 'at the end of the stream' }[s.stopped];
        // A closed reader is a normal end (exit 0), and stdout is gone with it: the summary goes to stderr then.
        if (o.json) (o.write === '-' || s.stopped === 'reader closed' ? process.stderr : process.stdout).write(JSON.stringify(s) + '\n');
        else process.stderr.write(`${green('✓')} ${s.packets} packet${s.packets === 1 ? '' : 's'} of ${s.what} (${s.via} on ${s.interface}), stopped ${how}${s.file ? `; written to ${s.file}` : ''}\n`);
      });

  if (defines('impair'))
    program
      .command('impair')
      .description('change the impairments of a NIC on a running lab (netem and tbf on its tap), without restarting anything; exit 1, changing nothing, if this kernel lacks netem for delay, jitter, loss, duplicate or corrupt')
      .argument('<lab>', 'lab name')
      .argument('<nic>', 'NODE:NIC (a NIC by position or name; NODE alone for a node with one NIC)')
      .option('--delay <time>', 'added latency, e.g. 50ms')
      .option('--jitter <time>', 'random variation of the delay, e.g. 5ms')
      .option('--loss <share>', 'share of packets dropped, e.g. 1%')
      .option('--rate <rate>', 'bandwidth limit in tc\'s units, e.g. 10mbit (bit, kbit, mbit, gbit); bps, kbps, mbps, gbps are bytes per second, as in tc: 2mbps is 16mbit')
      .option('--duplicate <share>', 'share of packets sent twice, e.g. 0.5%')
      .option('--corrupt <share>', 'share of packets with a bit flipped, e.g. 0.1%')
      .addOption(new Option('--direction <dir>', 'from the guest\'s side').choices(['egress', 'ingress', 'both']).default('egress'))
      .option('--clear', 'take every impairment off the NIC')
      .action(async (lab: string, ref: string, o: { delay?: string; jitter?: string; loss?: string; rate?: string; duplicate?: string; corrupt?: string; direction: 'egress' | 'ingress' | 'both'; clear?: boolean }) => {
        const { setImpairment } = await import('../lab/impair.js');
        const { clear, direction, ...values } = o;
        if (clear && Object.keys(values).length) throw new UserError('impair: --clear takes no other impairment');
        process.stderr.write(`${green('✓')} ${await setImpairment(lab, ref, clear ? 'clear' : { ...values, direction }, runner)}\n`);
      });

  if (defines('web'))
    program
      .command('web')
      .description('serve a page of the running labs: each lab drawn live, consoles and screens in the browser, capture, link, impair and check; until Ctrl-C')
      .option('--listen <host:port>', 'address to listen on (any address but loopback exposes root consoles to whoever has the token: a warning is printed)', '127.0.0.1:8707')
      .action(async (o: { listen: string }) => {
        code = await serveWeb(o.listen);
      });

  if (defines('check'))
    program
      .command('check')
      .description('who reaches whom: every pair of endpoints predicted by the reachability model and measured from inside the guests (ping, TCP); exit 1 where they disagree or a declared check fails')
      .argument('<target>', 'lab name (a running lab: predicted and measured) or topology file (with --predict)')
      .option('--predict', 'only the prediction, from the topology (no lab needed)')
      .addOption(new Option('--only <probe>', 'one kind of probe').choices(['ping', 'tcp']))
      .option('--as-declared', 'predict from the topology as written, not as `qnet link` and `qnet impair` have changed it')
      .option('--json', 'machine-readable output')
      .action(async (target: string, o: { predict?: boolean; only?: 'ping' | 'tcp'; asDeclared?: boolean; json?: boolean }) => {
        const { readState } = await import('../lab/state.js');
        const probes = o.only ? [o.only] : (['ping', 'tcp'] as const);
        const byName = NAME_PATTERN.test(target) && !existsSync(target);
        if (o.predict) {
          const { loadTopology } = await import('../topology/load.js');
          const { predict } = await import('../check/model.js');
          const { liveFacts, predictDeclared } = await import('../lab/check.js');
          const { printPrediction } = await import('./check.js');
          const state = byName ? await readState(target) : null;
          if (byName && !state) throw new UserError(`no lab named "${target}" is up, and no file "${target}" exists`);
          const lab = state ? state.lab : await loadTopology(target);
          const live = state ? await liveFacts(state, { asDeclared: !!o.asDeclared }) : {};
          code = printPrediction(lab.name, predict(lab, live), predictDeclared(lab), probes, !!o.json);
          return;
        }
        if (!byName) throw new UserError(`"${target}" is a file: \`qnet check FILE --predict\` predicts from it; measuring needs a running lab (\`qnet up ${target}\`, then \`qnet check LAB\`)`);
        const { checkLab, checkWith } = await import('../lab/check.js');
        const { printReport } = await import('./check.js');
        const copts = { ...(o.only ? { only: o.only } : {}), asDeclared: !!o.asDeclared, progress: o.json ? undefined : (l: string) => process.stderr.write(`· ${l}\n`) };
        // A lab over several hosts: each guest probed through its host's agent, the lab namespace the gateway's.
        const over = await (await import('../lab/hosts-state.js')).readHostsState(target);
        const report = over ? await checkWith((await import('../lab/multihost.js')).hostsAccess(over), copts) : await checkLab(target, copts);
        code = printReport(report, probes, !!o.json);
      });

  if (defines('graph'))
    program
      .command('graph')
      .description('draw a lab: nodes (role, and state when it is up), networks by mode, the host side, NICs with addresses and MACs on the edges')
      .argument('<target>', 'lab name (a running lab: with each node\'s state) or topology file')
      .option('--format <format>', 'svg (by Graphviz), dot, mermaid or json (default: by the --out extension, else dot)')
      .option('--out <file>', 'write to this file instead of stdout')
      .action(async (target: string, o: { format?: string; out?: string }) => {
        const { readState } = await import('../lab/state.js');
        const { loadTopology } = await import('../topology/load.js');
        const { drawLab, graphFormat, liveOf } = await import('../lab/graph.js');
        const { labStatus } = await import('../lab/status.js');
        const { writeFile } = await import('node:fs/promises');
        const format = graphFormat(o.format, o.out);
        const byName = NAME_PATTERN.test(target) && !existsSync(target);
        const state = byName ? await readState(target) : null;
        // A lab over several hosts: drawn from the driver's state, each node in the host it was placed on, its state as
        // that host's agent reports it.
        const over = byName && !state ? await (await import('../lab/hosts-state.js')).readHostsState(target) : null;
        if (byName && !state && !over) throw new UserError(`no lab named "${target}" is up, and no file "${target}" exists`);
        const lab = state ? state.lab : over ? over.lab : await loadTopology(target);
        const status = state ? await labStatus(lab.name) : null;
        let live = status ? liveOf(status) : undefined;
        if (over) {
          const reached = await (await import('../lab/multihost.js')).hostsOf(lab.name);
          const parts = await Promise.all((reached?.hosts ?? []).map(async (h) => ({ host: h.name, st: (await h.call({ op: 'status', lab: lab.name }).catch(() => null)) as import('../lab/status.js').LabStatus | null })));
          const states: Record<string, import('../render/graph.js').NodeState> = {};
          // Each node's state from the host it runs on (a host it cannot reach leaves its nodes unknown).
          for (const { host, st } of parts) for (const n of st?.nodes ?? []) if (over.placement[n.name] === host) states[n.name] = n.state;
          live = { states, placement: over.placement };
        }
        const text = await drawLab(lab, format, live);
        if (o.out && o.out !== '-') {
          await writeFile(o.out, text);
          process.stderr.write(`${green('✓')} wrote the ${format} graph of lab ${lab.name} to ${o.out}\n`);
        } else process.stdout.write(text);
      });

  if (defines('export'))
    program
      .command('export')
      .description(
        'write a lab as plain shell scripts (ifup.sh, start.sh, ifdown.sh) that reproduce it by hand, or the host side of its bridged networks as persistent configuration',
      )
      .argument('<target>', 'lab name (a running lab) or topology file')
      .requiredOption('--format <format>', 'output format: sh (the whole lab), ifupdown (/etc/network/interfaces) or networkd (systemd-networkd files)')
      .option('--out <dir>', 'directory to write into (default: ./<lab>-<format>)')
      .action(async (target: string, o: { format: string; out?: string }) => {
        const { readState } = await import('../lab/state.js');
        const { loadTopology } = await import('../topology/load.js');
        const { exportLab } = await import('../lab/export.js');
        const state = NAME_PATTERN.test(target) && !existsSync(target) ? await readState(target) : null;
        if (NAME_PATTERN.test(target) && !existsSync(target) && !state) throw new UserError(`no lab named "${target}" is up, and no file "${target}" exists`);
        const lab = state ? state.lab : await loadTopology(target);
        const dir = o.out ?? `${lab.name}-${o.format}`;
        const { files, notes } = await exportLab(lab, {
          runner,
          format: o.format,
          dir,
          ...(state?.accel === 'kvm' ? { accel: 'kvm' as const } : {}),
          ...(state?.lan ? { lan: state.lan } : {}),
          ...(state ? { state } : {}),
        });
        for (const n of notes) process.stderr.write(`· ${n}\n`);
        const next =
          o.format === 'sh'
            ? 'run ifup.sh, then start.sh; ifdown.sh removes it all'
            : o.format === 'ifupdown'
              ? 'put its stanzas in /etc/network/interfaces (see the comments in it)'
              : 'copy them to /etc/systemd/network/ and `networkctl reload`';
        process.stdout.write(`${green('✓')} wrote ${files.length} file${files.length === 1 ? '' : 's'} to ${dir}: ${next}\n`);
      });

  if (defines('image')) {
    const image = program.command('image').description('guest images: the built-in one, and Debian disk images for image nodes');
    image
      .command('build')
      .description('build the guest image now (otherwise built on first use); cached until its inputs change')
      .option('--force', 'rebuild even if the cached image is current')
      .action(async (o: { force?: boolean }) => {
        const { ensureImage } = await import('../guest/image.js');
        const t = Date.now();
        const m = await ensureImage(runner, (s) => process.stderr.write(`· ${s}\n`), o.force === true, true);
        process.stdout.write(`${green('✓')} image ${m.key}: ${m.kernelPackage}, busybox ${m.busyboxVersion} (${fmtMs(Date.now() - t)})\n  kernel ${m.kernel}\n  initrd ${m.initrd}\n`);
      });

    image
      .command('create')
      .description('make a bootable Debian 12 disk image from Debian packages (GRUB, systemd, cloud-init, qemu-guest-agent, sshd), for `image:` nodes')
      .argument('<distribution>', 'the system to install: debian')
      .requiredOption('--out <file>', 'where to write it: qcow2 (default), or raw when the name ends in .raw or .img')
      .option('--packages <list>', 'more Debian packages, comma-separated (frr,tcpdump,...)')
      .option('--size <size>', 'virtual disk size (like 4G; default 2G); nodes can grow it with disk.size')
      .option('--force', 'build again even if the cache has it, and replace --out if it exists')
      .action(async (dist: string, o: { out: string; packages?: string; size?: string; force?: boolean }) => {
        const { checkDebianOptions, ensureDebianImage, writeDebianImage } = await import('../guest/debian-image.js');
        const { formatSize, parseSize } = await import('../topology/size.js');
        if (dist !== 'debian') throw new UserError(`image create: "${dist}" is not a system qnet can install; it makes debian (Debian 12)`);
        const size = o.size === undefined ? undefined : parseSize(o.size);
        if (size === null) throw new UserError(`--size: expected a size like 4G or 2048M, got "${o.size}"`);
        const packages = o.packages === undefined ? [] : o.packages.split(',').map((p) => p.trim()).filter(Boolean);
        const opts = { packages, ...(size !== undefined ? { size } : {}), force: !!o.force };
        checkDebianOptions(opts);
        if (!o.force && existsSync(o.out)) throw new UserError(`--out: ${o.out} exists; choose another name or add --force to replace it`);
        const t = Date.now();
        const img = await ensureDebianImage(runner, opts, (s) => process.stderr.write(`· ${s}\n`));
        const { format } = await writeDebianImage(runner, img, o.out, !!o.force);
        process.stdout.write(
          `${green('✓')} ${o.out}: Debian 12, ${format}, ${formatSize(img.size)} virtual, ${img.packages.length} packages (${img.buildMs ? `built in ${fmtMs(img.buildMs)}` : 'from the cache'}; ${fmtMs(Date.now() - t)} in all)\n` +
            `  use it as a node's image: nodes: { a: { image: ${o.out} } }\n`,
        );
      });
  }

  if (defines('agent'))
    program
      .command('agent', { hidden: true })
      .description('qnet\'s side on a host of a lab over several hosts: one JSON request on stdin, JSON lines back (run by the driving qnet over SSH)')
      .action(async () => {
        const { runAgent } = await import('../lab/agent.js');
        code = await runAgent(runner, process.stdin, process.stdout);
      });

  if (defines('host')) {
    const host = program
      .command('host')
      .description('this machine as a host of multi-host labs: Open vSwitch and OVN (Debian packages openvswitch-switch and ovn-host; ovn-central on the central)');
    host
      .command('setup')
      .description(
        'install (apt) and start Open vSwitch and ovn-controller, and register this machine as an OVN chassis; with --central also the OVN northbound and southbound databases (listening on the underlay address, tcp 6641 and 6642) and ovn-northd. Uses the kernel datapath where the openvswitch and geneve modules load, the userspace one (netdev) otherwise. Works without systemd (Debian\'s ovs-ctl and ovn-ctl). Idempotent',
      )
      .option('--name <name>', 'this host\'s name in the topology (its OVN chassis name, the OVS system-id)')
      .option('--underlay <ip>', 'this host\'s IPv4 address that the other hosts reach: Geneve tunnels end on it (ovn-encap-ip)')
      .option('--underlay-dev <dev>', 'userspace datapath: the interface that has the underlay address, for the underlay alone; it goes into the OVS bridge br-phy and its address onto br-phy (put back by `qnet host stop`)')
      .option('--central', 'also run the OVN databases and ovn-northd here (package ovn-central)')
      .option('--remote <db>', 'the central\'s southbound DB (tcp:IP:6642, or its IP); default on the central: tcp:UNDERLAY:6642')
      .addOption(new Option('--datapath <type>', 'Open vSwitch datapath').choices(['auto', 'system', 'netdev']).default('auto'))
      .option('--dry-run', 'print what would be done and change nothing')
      .option('--json', 'print the result (datapath, steps, status) as JSON')
      .action(async (o: { name?: string; underlay?: string; underlayDev?: string; central?: boolean; remote?: string; datapath: string; dryRun?: boolean; json?: boolean }) => {
        const { checkSetupRequest, runSetup } = await import('../host/ovn-setup.js');
        const req = checkSetupRequest(o);
        const r = await runSetup(runner, req, { dryRun: !!o.dryRun, progress: (s) => process.stderr.write(`· ${s}\n`) });
        if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        if (o.dryRun) {
          process.stdout.write(`host ${req.name} (datapath ${r.datapath}); nothing was changed:\n${r.steps.map((s) => `  ${s.what}: ${s.argv.join(' ')}`).join('\n') || '  nothing to do'}\n`);
          return;
        }
        process.stderr.write(`${green('✓')} host ${req.name} is an OVN chassis${req.central ? ' and the central' : ''} (datapath ${r.datapath}, encap geneve ${req.underlay}, SB ${req.remote}) in ${fmtMs(r.ms)}${r.steps.length ? '' : '; nothing needed doing'}\n`);
      });
    host
      .command('status')
      .description('whether Open vSwitch and ovn-controller run here and this chassis is registered in the southbound DB with its encap IP (what `up` checks on every host); exit 1 if not')
      .option('--json', 'machine-readable output')
      .action(async (o: { json?: boolean }) => {
        const { hostStatus } = await import('../host/ovn-setup.js');
        const s = await hostStatus(runner);
        code = s.ready ? 0 : 1;
        if (o.json) return void process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        const yes = (b: boolean) => (b ? green('running') : red('not running'));
        const rows = [
          ['chassis', s.chassis ?? '-'],
          ['encap ip', s.encapIp ?? '-'],
          ['southbound', s.remote ?? '-'],
          ['datapath', s.datapath ?? '-'],
          ['ovsdb-server', yes(s.running.ovsdbServer)],
          ['ovs-vswitchd', yes(s.running.ovsVswitchd)],
          ['ovn-controller', yes(s.running.ovnController)],
          ...(s.running.nb || s.running.sb || s.running.northd ? [['NB / SB / northd', [s.running.nb, s.running.sb, s.running.northd].map(yes).join(' / ')]] : []),
          ['registered', s.sbEncaps.length ? green(s.sbEncaps.map((e) => `${e.type} ${e.ip}`).join(', ')) : red(s.sbError ? `unknown (${s.sbError})` : 'no')],
        ];
        process.stdout.write(table(['', ''], rows) + '\n');
        for (const p of s.problems) process.stdout.write(`${red('→')} ${p}\n`);
      });
    host
      .command('stop')
      .description('stop what `qnet host setup` started (ovn-controller, and ovn-northd and the OVN databases where they run, then Open vSwitch) and put the underlay address back; the packages and their configuration stay')
      .action(async () => {
        const { runStop } = await import('../host/ovn-setup.js');
        const steps = await runStop(runner, { progress: (s) => process.stderr.write(`· ${s}\n`) });
        process.stderr.write(steps.length ? `${green('✓')} stopped\n` : 'nothing of Open vSwitch or OVN runs here; nothing to do\n');
      });
  }

  if (defines('doctor'))
    program
      .command('doctor')
      .description('check what the host needs (tools, tun, bridges, namespaces, nftables, KVM that really works, forward policies); exit 1 if something is missing, 0 with warnings for features only some labs use (impairments, VLANs, links, UEFI); run by an ordinary user, what rootless labs need (user namespaces, /dev/net/tun, /dev/kvm, pasta, kernel modules)')
      .option('--json', 'print the findings as JSON (check, ok, detail, fix) instead of a table')
      .action(async (o: { json?: boolean }) => {
        const { doctor, doctorFails } = await import('../lab/doctor.js');
        const findings = await doctor(runner);
        // A warning (a feature some labs use cannot work here) is said, with its fix, but does not fail.
        code = doctorFails(findings) ? 1 : 0;
        if (o.json) return void process.stdout.write(JSON.stringify(findings, null, 2) + '\n');
        process.stdout.write(table(['CHECK', 'RESULT', 'DETAIL'], findings.map((f) => [f.check, f.ok ? green('ok') : f.warn ? yellow('warn') : red('FIX'), f.detail])) + '\n');
        for (const f of findings.filter((x) => !x.ok && x.fix)) process.stdout.write(`${f.warn ? yellow('→') : red('→')} ${f.check}: ${f.fix}\n`);
      });

  if (defines('schema'))
    program
      .command('schema')
      .description('print the JSON Schema of topology files (for editor completion)')
      .action(async () => {
        const { topologyJsonSchema } = await import('../topology/schema.js');
        process.stdout.write(JSON.stringify(topologyJsonSchema(), null, 2) + '\n');
      });

  return { program, code: () => code };
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { program, code } = buildProgram(argv);
  try {
    // An ordinary user's labs live in user namespaces of their own: the commands on them go there (cli/rootless.ts).
    if ((process.geteuid?.() ?? 0) !== 0) {
      const c = await (await import('./rootless.js')).rootlessFront(argv);
      if (c !== undefined) return c;
    }
    // A per-node command on a lab over several hosts runs on the node's host (cli/hosts-front.ts).
    // (Loaded only for those commands: the others start without it.)
    if (['link', 'impair', 'capture', 'console', 'ssh', 'stop', 'start', 'restart'].includes(argv[0] ?? '')) {
      const h = await (await import('./hosts-front.js')).hostsFront(argv);
      if (h !== undefined) return h;
    }
    await program.parseAsync(argv, { from: 'user' });
    return code();
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${red('error:')} ${msg}\n`);
    if (process.env.QNET_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}
