// The libvirt side of the bench's labs comparison (`--with-libvirt`): the plain script's guests as direct-kernel-boot
// domains on an isolated libvirt network, started with `virsh net-start` / `virsh start` and timed the same way.
//
// libvirtd (qemu:///system) runs in a network namespace of its own and a mount namespace in which /etc/libvirt,
// /var, /run, /etc/passwd and /etc/group are private copies under one temporary directory. So its bridge, taps and
// the iptables rules its network driver adds exist only in that namespace, its state files only in that directory,
// and it cannot meet a libvirt the machine may already run. Cleanup is: stop the daemon, kill whatever is left in
// the namespace (only the bench's own processes can be there), delete the namespace, delete the directory.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scriptGuestConfig } from './script-config.js';
import type { ResolvedLab } from '../src/topology/model.js';
import { IMAGE_TB_MIB } from '../src/guest/image-node.js';

/** Prefix of everything the libvirt side creates: namespace, directory, network, bridge, domains. */
export const LV_TAG = 'qnetbench-lv';
/** The libvirt network's /24 (bridge .1, guests .10 on, as on the script side); used by nothing else here. */
export const LV_NET = '10.213.0';
/** Debian's packages the libvirt side needs: the daemon with its network driver, the QEMU driver, virsh, and the
 * iptables that the network driver of libvirt 9 calls for every network (even an isolated one). */
export const LV_PACKAGES = ['libvirt-daemon', 'libvirt-daemon-driver-qemu', 'libvirt-clients', 'iptables'];

const NETWORK = LV_TAG;
// Files under /var that programs run in the daemon's namespaces read (copied into its private /var).
const VAR_FILES = ['/var/lib/usbutils/usb.ids'];
const BRIDGE = `${LV_TAG}0`;

/** The bench's readiness loop: resolves once every address answers a ping from inside namespace `ns`. */
export type PingWait = (ns: string, addrs: string[], timeoutMs: number) => Promise<void>;
/** The script side's guest: Debian's bzImage, the built-in initramfs and its kernel command line. */
export interface LvImage {
  bzImage: string;
  initrd: string;
  cmdline: string;
}

/** The three files of a NoCloud seed, as qnet renders them (renderSeed). */
export type LvSeed = Record<'meta-data' | 'user-data' | 'network-config', string>;
/** One image guest as virt-install made it: its domain, serial log, overlay, and when its commands began. */
export interface LvImageGuest {
  node: string;
  domain: string;
  serial: string;
  overlay: string;
  /** process.hrtime.bigint() before its qemu-img create and virt-install. */
  calledAt: bigint;
}

type Log = (s: string) => void;

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function must(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${(r.stderr || r.stdout || String(r.error ?? r.signal)).trim()}`);
  return r.stdout;
}

/** True while `pid` is a live process (a zombie counts as gone: it has stopped, only its exit status is unread). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Stops every process in namespace `ns` (TERM, then KILL after 5 s), deletes the namespace and `dir`. Synchronous,
 * so that it also runs from a signal or exit handler. */
function removeAll(ns: string, dir: string): void {
  const pids = () => (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
  // libvirtd first and alone, so that it shuts down in order; then the rest (unshare: its PID namespace dies with it).
  const lvd = pids().find((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'libvirtd';
    } catch {
      return false;
    }
  });
  if (lvd) {
    process.kill(lvd, 'SIGTERM');
    for (let i = 0; i < 100 && alive(lvd); i++) sleepSync(50);
  }
  for (const [sig, rounds] of [['SIGTERM', 100], ['SIGKILL', 100]] as const) {
    let left = pids().filter(alive);
    for (const p of left) {
      try {
        process.kill(p, sig);
      } catch {
        /* gone meanwhile */
      }
    }
    for (let i = 0; i < rounds && left.length; i++, left = left.filter(alive)) sleepSync(50);
    if (!left.length) break;
  }
  if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'delete', ns]);
  rmSync(dir, { recursive: true, force: true });
}

/** Removes what an earlier bench killed before its own cleanup left: namespaces and directories named after a
 * bench process that no longer runs. Those of a bench still running are left alone. */
function sweepStale(log: Log): void {
  const dead = (name: string) => {
    const m = new RegExp(`^${LV_TAG}-(\\d+)$`).exec(name);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  };
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  const dirs = readdirSync('/tmp');
  for (const name of new Set([...namespaces, ...dirs].filter(dead))) {
    log(`libvirt: removing ${name}, left by a bench that was killed`);
    removeAll(name, path.join('/tmp', name));
  }
}

/** Installs those of Debian's packages `pkgs` that are missing (apt-get, no recommends); returns the milliseconds it
 * took (0: nothing to do). */
function aptEnsure(pkgs: readonly string[], what: string, log: Log): number {
  const missing = pkgs.filter((p) => !/^install ok installed$/.test(spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout ?? ''));
  if (!missing.length) return 0;
  log(`${what}: installing ${missing.join(' ')} (apt-get, no recommends)`);
  const t = Date.now();
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  let r = install();
  // A machine whose package lists were never fetched knows no libvirt yet: fetch them once and try again.
  if (r.status !== 0 && /Unable to locate package|has no installation candidate/.test(r.stderr)) {
    must(['apt-get', 'update']);
    r = install();
  }
  if (r.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const ms = Date.now() - t;
  log(`${what}: installed in ${(ms / 1000).toFixed(1)} s`);
  return ms;
}

/** Installs libvirt from Debian's packages when a part is missing; returns the milliseconds it took (0: nothing to do). */
export function ensureLibvirt(log: Log): number {
  return aptEnsure(LV_PACKAGES, 'libvirt', log);
}

/** Installs Debian's virt-install (package virtinst) when it is missing, for the image section's libvirt side. */
export function ensureVirtinst(log: Log): number {
  return aptEnsure(['virtinst'], 'virt-install', log);
}

// qemu.conf of the private daemon. QEMU as root: libvirt 9.0 probes QEMU's capabilities as root (KVM found), then
// checks /dev/kvm (0600 here) as the unprivileged user, finds KVM "gone" and re-probes on every define and start
// (about 40 s each under TCG). As root, like the script side's QEMU. No relabelling and no ownership xattrs: the
// kernel and initrd are the bench's files. Domain output to files in the private /var/log (no virtlogd to run).
const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
`;

/** A private libvirtd (qemu:///system) in namespace `ns`, with the files it needs under `dir`. */
export class Libvirt {
  private cleanup = () => removeAll(this.ns, this.dir);
  private onSignal = (sig: NodeJS.Signals) => {
    this.cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  private closed = false;
  private osName: string | undefined;

  private constructor(readonly ns: string, readonly dir: string, private nsPid: number | undefined, private log: Log, private signals: boolean) {
    process.on('exit', this.cleanup);
    if (signals) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
  }

  /**
   * Installs libvirt if needed and starts the private daemon; resolves once virsh gets an answer from it.
   * `signals: false`: the caller handles Ctrl-C and SIGTERM itself (and calls close()), as the image section does,
   * which has its own labs to remove before the process exits; the exit handler stays either way.
   */
  static async start(log: Log, opts: { signals?: boolean } = {}): Promise<Libvirt> {
    sweepStale(log);
    ensureLibvirt(log);
    const name = `${LV_TAG}-${process.pid}`;
    const dir = path.join('/tmp', name);
    // From here on, whatever fails or interrupts, close() removes what was made.
    const lv = new Libvirt(name, dir, undefined, log, opts.signals ?? true);
    try {
      for (const d of ['etc', 'var/lib/libvirt/dnsmasq', 'var/lib/libvirt/boot', 'var/log/libvirt/qemu', 'var/cache/libvirt', 'var/tmp', 'guests']) mkdirSync(path.join(dir, d), { recursive: true });
      chmodSync(dir, 0o755);
      symlinkSync('/run', path.join(dir, 'var/run'));
      writeFileSync(path.join(dir, 'etc/libvirtd.conf'), '');
      writeFileSync(path.join(dir, 'etc/qemu.conf'), QEMU_CONF);
      // Debian's QEMU driver refuses to start unless its default user exists, even with user = "root" configured
      // (the package that adds it is not installed): it exists in the private /etc/passwd only.
      writeFileSync(path.join(dir, 'passwd'), `${readFileSync('/etc/passwd', 'utf8')}libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n`);
      writeFileSync(path.join(dir, 'group'), `${readFileSync('/etc/group', 'utf8')}libvirt-qemu:x:64055:\n`);
      // libosinfo (virt-install) opens /usr/share/misc/usb.ids, which Debian's usb.ids makes a symlink into /var: the
      // private /var needs its own copy.
      for (const f of VAR_FILES)
        if (existsSync(f)) {
          mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
          copyFileSync(f, path.join(dir, f));
        }
      must(['ip', 'netns', 'add', name]);
      const out = openSync(path.join(dir, 'libvirtd.log'), 'a');
      const script = [
        'set -e',
        'mount -t tmpfs -o mode=0755 qnetbench-lv-run /run',
        'mount --bind "$1/etc" /etc/libvirt',
        'mount --bind "$1/passwd" /etc/passwd',
        'mount --bind "$1/group" /etc/group',
        'mount --bind "$1/var" /var',
        // In a PID namespace whose init (bash) reaps at once the QEMUs libvirt daemonizes. Without it they are
        // reaped by this machine's PID 1, which takes up to 2 s, and `virsh destroy` waits for that: 1.7-2 s
        // per domain measured, a cost of this sandbox's init and not of libvirt. --kill-child: the namespace,
        // with all in it, dies with unshare.
        'exec unshare --pid --fork --mount-proc --kill-child bash -c \'libvirtd & wait $!\'',
      ].join('\n');
      // Its own session: a Ctrl-C at the terminal reaches the bench, which then stops the daemon itself.
      const child = spawn('ip', ['netns', 'exec', name, 'sh', '-c', script, 'sh', dir], { stdio: ['ignore', out, out], detached: true });
      closeSync(out);
      child.unref();
      lv.nsPid = child.pid; // unshare: in the namespaces virsh must enter
      // The first answer waits for libvirt's probe of QEMU's capabilities (seconds under TCG, more under load).
      const deadline = Date.now() + 180_000;
      for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        if (!alive(child.pid!)) throw new Error(`libvirtd exited: ${lv.daemonLog()}`);
        if (lv.virshTry(['version']).status === 0) break;
        if (Date.now() > deadline) throw new Error(`libvirtd gave no answer in 180 s: ${lv.daemonLog()}`);
      }
      if (lv.virsh(['net-list', '--all', '--name']).trim()) throw new Error('the private libvirt has networks defined that the bench did not define');
      return lv;
    } catch (e) {
      lv.close();
      throw e;
    }
  }

  private daemonLog(): string {
    try {
      return readFileSync(path.join(this.dir, 'libvirtd.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  private virshTry(args: string[]) {
    // nsenter: virsh must see the daemon's /run (its socket) and network namespace.
    return spawnSync('nsenter', ['-t', String(this.nsPid), '-m', '-n', 'virsh', '-q', '-c', 'qemu:///system', ...args], { encoding: 'utf8' });
  }

  private virsh(args: string[]): string {
    const r = this.virshTry(args);
    if (r.status !== 0) throw new Error(`virsh ${args.join(' ')}: ${(r.stderr || String(r.error)).trim()}`);
    return r.stdout;
  }

  /** Starts `lab`'s guests (one NIC each, addresses in LV_NET) as libvirt domains and times up → every guest
   * answers ping, then destroy + undefine of everything until nothing is left. */
  async lab(lab: ResolvedLab, image: LvImage, waitPing: PingWait): Promise<{ upMs: number; downMs: number }> {
    const g = path.join(this.dir, 'guests');
    // The guests' files where the daemon's private /var does not hide them (the image cache lives under /var).
    copyFileSync(image.bzImage, path.join(g, 'vmlinuz'));
    copyFileSync(image.initrd, path.join(g, 'initrd.img'));
    chmodSync(path.join(g, 'vmlinuz'), 0o644);
    chmodSync(path.join(g, 'initrd.img'), 0o644);
    const domains = lab.nodes.map((node) => `${LV_TAG}-${node.name}`);
    const t0 = process.hrtime.bigint();
    try {
      writeFileSync(path.join(g, 'net.xml'), networkXml());
      this.virsh(['net-define', path.join(g, 'net.xml')]);
      this.virsh(['net-start', NETWORK]);
      lab.nodes.forEach((node, i) => {
        const conf = path.join(g, `${node.name}.conf`);
        writeFileSync(conf, scriptGuestConfig(lab, node));
        writeFileSync(path.join(g, `${node.name}.xml`), domainXml(domains[i]!, node.nics[0]!.mac, g, image.cmdline, conf));
        this.virsh(['define', path.join(g, `${node.name}.xml`)]);
        this.virsh(['start', domains[i]!]);
      });
      // Where the time goes: libvirt's own work (virsh returned) vs the guests' boot.
      this.log(`libvirt ${lab.nodes.length}: net-start and every virsh start returned after ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s`);
      await waitPing(this.ns, lab.nodes.map((_, i) => `${LV_NET}.${10 + i}`), 300_000);
    } catch (e) {
      this.teardown(domains, false);
      throw e;
    }
    const upMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const t1 = process.hrtime.bigint();
    this.teardown(domains, true);
    return { upMs, downMs: Number(process.hrtime.bigint() - t1) / 1e6 };
  }

  /**
   * `lab`'s nodes as `virt-install --import --cloud-init` makes them, one after the other as a person's loop would:
   * each on a qcow2 overlay of a copy of `base` (the daemon's private /var hides the cache), its seed's three files
   * given to --cloud-init, its serial console to a file, on the isolated network with `net`.1. The clock (`t0`)
   * starts before the network is defined. `measure` runs while the guests run (it waits for them and samples them);
   * then every domain, the network, the overlays and the copy are removed, whatever happened.
   */
  async imageLab<T>(lab: ResolvedLab, base: string, net: string, seeds: Record<string, LvSeed>, measure: (guests: LvImageGuest[], t0: bigint) => Promise<T>): Promise<T> {
    const g = path.join(this.dir, 'guests');
    const copy = path.join(g, 'debian-base.qcow2');
    copyFileSync(base, copy);
    chmodSync(copy, 0o444);
    const domains = lab.nodes.map((node) => `${LV_TAG}-${node.name}`);
    const files: string[] = [copy];
    const t0 = process.hrtime.bigint();
    let result: T;
    try {
      writeFileSync(path.join(g, 'net.xml'), networkXml(net));
      this.virsh(['net-define', path.join(g, 'net.xml')]);
      this.virsh(['net-start', NETWORK]);
      const guests: LvImageGuest[] = [];
      for (const [i, node] of lab.nodes.entries()) {
        const seed = path.join(g, `${node.name}-seed`);
        mkdirSync(seed, { recursive: true });
        const seedFile = (f: keyof LvSeed) => {
          writeFileSync(path.join(seed, f), seeds[node.name]![f]);
          return path.join(seed, f);
        };
        const overlay = path.join(g, `${node.name}.qcow2`);
        const serial = path.join(g, `${node.name}.serial.log`);
        files.push(overlay, serial, seed);
        const calledAt = process.hrtime.bigint();
        must(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', copy, overlay]);
        await this.virtInstall([
          '--name', domains[i]!, '--virt-type', 'qemu', '--import', '--osinfo', this.osinfo(),
          '--memory', '512', '--vcpus', '1',
          '--disk', `path=${overlay},format=qcow2,bus=virtio`,
          '--network', `network=${NETWORK},model=virtio,mac=${node.nics[0]!.mac}`,
          '--cloud-init', `meta-data=${seedFile('meta-data')},user-data=${seedFile('user-data')},network-config=${seedFile('network-config')}`,
          // The agent's port, as qnet's guests and the script's have it: the seed starts qemu-guest-agent.
          '--channel', 'unix,target.type=virtio,target.name=org.qemu.guest_agent.0',
          '--graphics', 'none', '--serial', `file,path=${serial}`,
          // TCG's translation cache as qnet's and the script's (libvirt 8.0 on: <features><tcg><tb-cache>).
          '--xml', `./features/tcg/tb-cache=${IMAGE_TB_MIB}`, '--xml', './features/tcg/tb-cache/@unit=MiB',
          '--noautoconsole',
        ]);
        guests.push({ node: node.name, domain: domains[i]!, serial, overlay, calledAt });
      }
      this.log(`virt-install ${lab.nodes.length}: every virt-install returned after ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s`);
      result = await measure(guests, t0);
    } catch (e) {
      this.teardown(domains, false);
      for (const f of files) rmSync(f, { recursive: true, force: true });
      throw e;
    }
    this.teardown(domains, true);
    for (const f of files) rmSync(f, { recursive: true, force: true });
    return result;
  }

  /** The osinfo name virt-install gets: debian12 where this osinfo-db knows it (Debian 12's 20221130 does not), else
   * debian11, its predecessor (from which virt-install picks q35 and virtio, as qnet has them). */
  osinfo(): string {
    this.osName ??= /^debian12\b/m.test(must(['env', ...this.virtInstallEnv(), 'virt-install', '--osinfo', 'list'])) ? 'debian12' : 'debian11';
    return this.osName;
  }

  /** What virt-install chose for a domain of its own accord (machine, CPU, devices), from `virsh dumpxml`. */
  describeDomain(domain: string): string {
    const x = this.virsh(['dumpxml', domain]);
    const machine = /<type arch='[^']+' machine='([^']+)'/.exec(x)?.[1] ?? '?';
    const cpuMode = /<cpu mode='([^']+)'/.exec(x)?.[1];
    const cpuModel = /<cpu[^>]*>[\s\S]*?<model[^>]*>([^<]+)<\/model>/.exec(x)?.[1];
    const cpu = cpuModel ?? cpuMode ?? 'QEMU default';
    const disk = /<disk type='file' device='disk'>[\s\S]*?<target dev='[^']+' bus='([^']+)'/.exec(x)?.[1] ?? '?';
    const cdrom = /<disk type='file' device='cdrom'>[\s\S]*?<target dev='[^']+' bus='([^']+)'/.exec(x)?.[1];
    const balloon = /<memballoon model='([^']+)'/.exec(x)?.[1] ?? 'none';
    const tb = /<tb-cache unit='([^']+)'>(\d+)</.exec(x);
    const tbMiB = tb ? Number(tb[2]) / ({ KiB: 1024, MiB: 1, GiB: 1 / 1024 } as Record<string, number>)[tb[1]!]! : undefined;
    const os = this.osinfo();
    return `osinfo ${os}${os === 'debian12' ? '' : ' (this osinfo-db knows no debian12)'}, machine ${machine}, CPU ${cpu}, disk on ${disk}, seed ISO on ${cdrom ?? 'no CD-ROM'}, balloon ${balloon}, TCG cache ${tbMiB !== undefined ? `${tbMiB} MiB` : 'QEMU default'}`;
  }

  /** The host's pid of a domain's QEMU (libvirt starts it in the daemon's PID namespace), if it runs. */
  qemuPid(domain: string): number | undefined {
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        if (/qemu-system/.test(argv[0] ?? '') && argv.some((a) => a.startsWith(`guest=${domain},`)) && alive(Number(e))) return Number(e);
      } catch {
        /* gone meanwhile */
      }
    }
    return undefined;
  }

  // virt-install keeps a log in ~/.cache/virt-manager: a home under the private directory, removed with it.
  private virtInstallEnv(): string[] {
    const home = path.join(this.dir, 'home');
    mkdirSync(home, { recursive: true });
    return [`HOME=${home}`, `XDG_CACHE_HOME=${home}/.cache`, `XDG_CONFIG_HOME=${home}/.config`];
  }

  // virt-install in the daemon's mount and network namespaces (its socket, its private /var for the seed ISO it
  // makes), asynchronously (the guests started before it run meanwhile); its log goes under the private directory.
  private virtInstall(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const p = spawn('nsenter', ['-t', String(this.nsPid), '-m', '-n', 'env', ...this.virtInstallEnv(), 'virt-install', '--connect', 'qemu:///system', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.once('error', reject);
      p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`virt-install ${args[1]}: exit ${code}: ${out.trim().split('\n').slice(-12).join(' | ')}`))));
    });
  }

  /** virsh destroy + undefine of each domain, net-destroy + net-undefine, and a check that nothing is left. */
  private teardown(domains: string[], strict: boolean): void {
    const step = (args: string[]) => (strict ? this.virsh(args) : this.virshTry(args));
    for (const d of domains) {
      step(['destroy', d]);
      step(['undefine', d]);
    }
    step(['net-destroy', NETWORK]);
    step(['net-undefine', NETWORK]);
    if (!strict) return;
    const left = [this.virsh(['list', '--all', '--name']), this.virsh(['net-list', '--all', '--name'])].join(' ').trim();
    if (left) throw new Error(`libvirt teardown left ${left}`);
    if (spawnSync('ip', ['-n', this.ns, 'link', 'show', BRIDGE]).status === 0) throw new Error(`libvirt teardown left bridge ${BRIDGE}`);
  }

  /** Stops the daemon, then removes the namespace (with anything still in it) and the directory; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup();
    process.off('exit', this.cleanup);
    if (this.signals) {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    }
  }
}

/** An isolated network (no <forward>): a bridge with the host side's address (.1 of the /24 `net`), no DHCP, no
 * DNS (so no dnsmasq), as the script side's bridge. */
function networkXml(net = LV_NET): string {
  return `<network>
  <name>${NETWORK}</name>
  <bridge name='${BRIDGE}' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='${net}.1' netmask='255.255.255.0'/>
</network>
`;
}

/** A direct-kernel-boot domain as the script's qemu line: TCG, 128 MiB, one vCPU, the boot config by fw_cfg, one
 * virtio NIC, serial to nothing. ACPI on (QEMU's default; the guest finds fw_cfg through it); no USB, no balloon. */
function domainXml(name: string, mac: string, dir: string, cmdline: string, conf: string): string {
  return `<domain type='qemu'>
  <name>${xml(name)}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xml(path.join(dir, 'vmlinuz'))}</kernel>
    <initrd>${xml(path.join(dir, 'initrd.img'))}</initrd>
    <cmdline>${xml(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <sysinfo type='fwcfg'>
    <entry name='opt/qnet/config' file='${xml(conf)}'/>
  </sysinfo>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='network'>
      <source network='${NETWORK}'/>
      <mac address='${mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='null'/>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
