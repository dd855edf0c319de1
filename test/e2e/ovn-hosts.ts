// Simulated hosts for multi-host tests: each a network namespace and a mount namespace of its own, kept by a holder
// process, with private tmpfs over /run and the OVS, OVN and qnet directories (so every default path works inside
// and nothing reaches the real ones), an underlay veth at MTU 1600 to a bridge in a namespace of the fixture's,
// and optionally its own sshd on its underlay address with a throwaway key. `remove()` takes everything away (also
// after a failure, and at process exit), and says what it had to kill that `qnet host stop` should have stopped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QNET } from './helpers.js';

/** The directories each simulated host has of its own (/var/run is /run on Debian). */
export const PRIVATE_DIRS = ['/run', '/var/lib/openvswitch', '/etc/openvswitch', '/var/lib/ovn', '/etc/ovn', '/var/log/openvswitch', '/var/log/ovn', '/var/lib/qnet'];
/** The daemons a simulated host may run. */
export const DAEMON_NAMES = ['ovsdb-server', 'ovs-vswitchd', 'ovn-controller', 'ovn-northd', 'sshd'];

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SimHost {
  name: string;
  /** The holder's pid: `nsenter -t PID -m -n` enters the host. */
  pid: number;
  /** Its underlay address (on `ul0` until `qnet host setup` moves it onto br-phy). */
  ip: string;
  /** Runs argv inside the host (its mount and network namespaces), bounded. */
  exec(argv: string[], timeoutMs?: number): Run;
  /** Runs the real CLI inside the host, with the default qnet directories (the host's own), and `env` added. */
  qnet(args: string[], timeoutMs?: number, env?: Record<string, string>): Promise<Run>;
  /** The daemons running inside it now: comm → pid. */
  daemons(): Array<{ comm: string; pid: number; rssKiB: number }>;
}

export interface SimHosts {
  hosts: SimHost[];
  /** The namespace of the underlay bridge; the driving side sits in it at `driverIp`. */
  underlay: string;
  driverIp: string;
  /** Runs argv in the underlay namespace (the driving side: ssh, ovn-nbctl over tcp). */
  drive(argv: string[], timeoutMs?: number): Run;
  /** ssh from the driving side to a host, as `up` will reach hosts (BatchMode, the fixture's key). */
  ssh(host: SimHost, command: string): Run;
  /**
   * Runs the real CLI on the driving side (the underlay namespace, this machine's mount namespace), reaching hosts over
   * SSH with the fixture's key, qnet run there from this checkout, its own run directory `runDir`.
   */
  driveQnet(args: string[], runDir: string, timeoutMs?: number, env?: Record<string, string>): Promise<Run> & { child?: ChildProcess };
  /** Removes everything; returns the daemons it had to kill (none when `qnet host stop` did its job). */
  remove(): Promise<string[]>;
}

function run(argv: string[], timeoutMs = 30000): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function must(argv: string[], timeoutMs?: number): Run {
  const r = run(argv, timeoutMs);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}

const nsOf = (pid: number | string, kind: string) => {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return '';
  }
};

/** Every process in this mount namespace but the holder (the daemons a host started, whoever their parent is). */
function processesIn(mnt: string, holder: number): Array<{ comm: string; pid: number; rssKiB: number }> {
  const out: Array<{ comm: string; pid: number; rssKiB: number }> = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === holder || nsOf(p, 'mnt') !== mnt) continue;
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      out.push({ comm: readFileSync(`/proc/${p}/comm`, 'utf8').trim(), pid: Number(p), rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const live = new Set<() => void>();
process.once('exit', () => {
  for (const f of live) f();
});

/**
 * Makes simulated hosts named `names` (at most 9), each joined to one underlay bridge at MTU 1600 by a veth (`ul0`
 * inside, address 192.0.2.1N/24), the driving side at 192.0.2.1 in the underlay namespace. With `sshd`, each host
 * runs its own sshd on its underlay address, reached with a key the fixture makes.
 */
export async function makeSimHosts(tag: string, names: string[], opts: { sshd?: boolean } = {}): Promise<SimHosts> {
  const underlay = `qul-${tag}`.slice(0, 15);
  const holders: ChildProcess[] = [];
  const hosts: SimHost[] = [];
  const tmp = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-sim-'));
  const mnts = new Map<number, string>();
  // What must go whatever happens: every process of every host, the holders, the underlay namespace, the key.
  const sweep = (): string[] => {
    const killed: string[] = [];
    for (const [pid, mnt] of mnts) {
      for (const p of processesIn(mnt, pid)) {
        killed.push(`${p.comm}:${p.pid}`);
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    spawnSync('ip', ['netns', 'delete', underlay]);
    rmSync(tmp, { recursive: true, force: true });
    return killed;
  };
  live.add(sweep);
  try {
    must(['ip', 'netns', 'add', underlay]);
    const ul = (...a: string[]) => must(['ip', '-n', underlay, ...a]);
    ul('link', 'set', 'lo', 'up');
    ul('link', 'add', 'br0', 'mtu', '1600', 'type', 'bridge');
    ul('addr', 'add', '192.0.2.1/24', 'dev', 'br0');
    ul('link', 'set', 'br0', 'up');
    // The driving side's TCP would leave with its checksum for a NIC to fill; OVS's userspace datapath (AF_PACKET)
    // passes such a packet on unfilled, and the host's kernel drops it. Checksums are filled before they leave.
    must(['ip', 'netns', 'exec', underlay, 'ethtool', '-K', 'br0', 'tx', 'off']);
    for (const [i, name] of names.entries()) {
      const ip = `192.0.2.${11 + i}`;
      const holder = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--net', '--propagation', 'private', '--', 'sleep', 'infinity'], { stdio: 'ignore' });
      holders.push(holder);
      const pid = holder.pid!;
      // The holder is ours once unshare has made its namespaces and exec'd sleep.
      const own = nsOf('self', 'mnt');
      for (let t = 0; t < 200 && (nsOf(pid, 'mnt') === own || !readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sleep')); t++) await new Promise((r) => setTimeout(r, 10));
      mnts.set(pid, nsOf(pid, 'mnt'));
      const inside = (argv: string[], timeoutMs?: number) => run(['nsenter', '-t', String(pid), '-m', '-n', '--', ...argv], timeoutMs);
      const mustIn = (argv: string[]) => {
        const r = inside(argv);
        if (r.code !== 0) throw new Error(`in host ${name}: ${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
        return r;
      };
      for (const d of PRIVATE_DIRS) mustIn(['mount', '-t', 'tmpfs', '-o', 'mode=0755', `qnet-sim-${name}`, d]);
      // A sysfs of its own: /sys/class/net lists the links of the namespace that mounts it (qnet reads its
      // markers there), so the host's must show the host's links, not this machine's.
      mustIn(['mount', '-t', 'sysfs', `qnet-sim-${name}-sys`, '/sys']);
      mustIn(['ip', 'link', 'set', 'lo', 'up']);
      ul('link', 'add', `u-${name}`, 'mtu', '1600', 'type', 'veth', 'peer', 'name', 'ul0', 'mtu', '1600', 'netns', String(pid));
      ul('link', 'set', `u-${name}`, 'master', 'br0', 'up');
      must(['ip', 'netns', 'exec', underlay, 'ethtool', '-K', `u-${name}`, 'tx', 'off']);
      mustIn(['ethtool', '-K', 'ul0', 'tx', 'off']);
      mustIn(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'ul0']);
      mustIn(['ip', 'link', 'set', 'ul0', 'up']);
      const mnt = mnts.get(pid)!;
      hosts.push({
        name,
        pid,
        ip,
        exec: inside,
        qnet: (args, timeoutMs = 120000, extra = {}) =>
          new Promise((resolve) => {
            const env = { ...process.env, ...extra };
            // The host's own directories: the defaults, which its tmpfs mounts hold.
            delete env.QNET_RUN_DIR;
            delete env.QNET_STATE_DIR;
            const child = spawn('nsenter', ['-t', String(pid), '-m', '-n', '--', process.execPath, QNET, ...args], { env });
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
            child.on('close', (code) => {
              clearTimeout(t);
              resolve({ code: code ?? -1, stdout, stderr });
            });
          }),
        daemons: () => processesIn(mnt, pid).filter((p) => DAEMON_NAMES.includes(p.comm)),
      });
    }
    const key = path.join(tmp, 'id_ed25519');
    if (opts.sshd) {
      // One throwaway client key for all hosts, one host key each; sshd on the underlay address only, root by key.
      must(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
      for (const h of hosts) {
        const dir = '/run/qnet-sshd';
        const mk = h.exec(['sh', '-c', `mkdir -p ${dir} /run/sshd && chmod 700 ${dir} && ssh-keygen -q -t ed25519 -N '' -f ${dir}/host_key`]);
        if (mk.code !== 0) throw new Error(`host ${h.name}: making its sshd key: ${mk.stderr}`);
        writeFileSync(path.join(tmp, `${h.name}.keys`), readFileSync(`${key}.pub`));
        const conf = [
          `ListenAddress ${h.ip}`,
          `HostKey ${dir}/host_key`,
          `PidFile ${dir}/sshd.pid`,
          `AuthorizedKeysFile ${path.join(tmp, `${h.name}.keys`)}`,
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
        ].join('\n');
        const c = h.exec(['sh', '-c', `cat > ${dir}/sshd_config <<'EOF'\n${conf}\nEOF\n/usr/sbin/sshd -f ${dir}/sshd_config`]);
        if (c.code !== 0) throw new Error(`host ${h.name}: sshd did not start: ${c.stderr}`);
      }
    }
    return {
      hosts,
      underlay,
      driverIp: '192.0.2.1',
      drive: (argv, timeoutMs) => run(['ip', 'netns', 'exec', underlay, ...argv], timeoutMs),
      ssh: (h, command) =>
        run(['ip', 'netns', 'exec', underlay, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5', `root@${h.ip}`, command], 20000),
      driveQnet: (args, runDir, timeoutMs = 300000, extra = {}) => {
        const env = {
          ...process.env,
          QNET_RUN_DIR: runDir,
          QNET_SSH_OPTIONS: `-i ${key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`,
          QNET_HOST_QNET: `${process.execPath} ${QNET}`,
          ...extra,
        };
        const child = spawn('ip', ['netns', 'exec', underlay, process.execPath, QNET, ...args], { env });
        const p = new Promise<Run>((resolve) => {
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          child.on('close', (code, sig) => {
            clearTimeout(t);
            resolve({ code: code ?? (sig ? -1 : -1), stdout, stderr });
          });
        }) as Promise<Run> & { child?: ChildProcess };
        p.child = child;
        return p;
      },
      remove: async () => {
        // Each host stops what its setup started, the central (the first) last: the others leave the SB first.
        for (const h of [...hosts].reverse()) if (h.daemons().some((d) => d.comm !== 'sshd')) await h.qnet(['host', 'stop'], 60000);
        for (const h of hosts) {
          const pidfile = '/run/qnet-sshd/sshd.pid';
          const pid = Number(h.exec(['cat', pidfile]).stdout.trim());
          if (pid > 0) h.exec(['kill', String(pid)]);
        }
        for (let t = 0; t < 50 && hosts.some((h) => h.daemons().length); t++) await new Promise((r) => setTimeout(r, 100));
        const killed = sweep();
        live.delete(sweep);
        return killed;
      },
    };
  } catch (e) {
    sweep();
    live.delete(sweep);
    throw e;
  }
}
