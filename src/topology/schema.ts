// The topology file's schema: the single source of truth for validation and the generated JSON Schema.
import { z } from 'zod';
import { IMPAIR_DIRECTIONS, parseRate, parseShare, parseTime, RATE_UNITS } from './impair.js';
import { LAB_NAME_MAX, NAME_PATTERN } from './names.js';

export { NIC_MODELS, type NicModel } from './nic-models.js';
import { NIC_MODELS, type NicModel } from './nic-models.js';

export const LIMITS = {
  labName: LAB_NAME_MAX,
  objectName: 32,
  ifName: 15,
  memoryMinMiB: 104, // measured: the Debian kernel with the built-in image does not boot in less
  memoryMaxMiB: 16384,
  cpusMax: 16,
  nodesMax: 250,
  networksMax: 64,
  nicsPerNode: 16,
  addressesPerNic: 16,
} as const;

const NAME = NAME_PATTERN;
// Interface names: what the kernel accepts and no shell would split or expand.
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A lab-wide object name (node, network): a DNS label, so it can be a guest's hostname. */
export const objectName = (what: string) =>
  z
    .string()
    .max(LIMITS.objectName, { error: `${what} names are at most ${LIMITS.objectName} characters` })
    .regex(NAME, {
      error: `${what} names use lower-case letters, digits and inner hyphens (like "deb2" or "lan-a")`,
    });

const ifName = z
  .string()
  .refine((s) => Buffer.byteLength(s) <= LIMITS.ifName, {
    error: `interface names are at most ${LIMITS.ifName} bytes (a kernel limit)`,
  })
  .refine((s) => IFNAME.test(s), {
    error: 'interface names use letters, digits, "_", "." and "-" and start with a letter or digit',
  });

const ipv4Text = z.string().max(18, { error: 'expected an IPv4 address like 192.168.1.2' });

const port = (what: string) =>
  z
    .number()
    .int({ error: `${what} is a whole number` })
    .min(1, { error: `${what} is a port from 1 to 65535` })
    .max(65535, { error: `${what} is a port from 1 to 65535` });

export const HostFwdSchema = z.strictObject({
  proto: z.enum(['tcp', 'udp']).default('tcp'),
  host: port('host').describe('port on the lab namespace\'s loopback (127.0.0.1)'),
  guest: port('guest').describe('port in the guest'),
});

export const UserNetSchema = z.strictObject({
  hostfwd: z.array(HostFwdSchema).max(64).default([]).describe('host port forwards into the guest'),
});

// Link impairments of a NIC: each value checked where it is written (the numbers are in impair.ts).
const time = (what: string) =>
  z
    .string()
    .max(16)
    .refine((t) => parseTime(t) !== undefined, { error: `${what} is a time like 20ms, 500us or 1s` })
    .refine((t) => (parseTime(t) ?? 0) <= 60_000_000, { error: `${what} is at most 60s` });
const share = (what: string) =>
  z
    .string()
    .max(16)
    .refine((t) => parseShare(t) !== undefined, { error: `${what} is a share like 1% or 0.5%` })
    .refine((t) => (parseShare(t) ?? 0) <= 100, { error: `${what} is at most 100%` });

/** The `impair` block of a NIC in a topology file (and of `qnet impair`'s options). */
export const ImpairSchema = z
  .strictObject({
    delay: time('delay').optional().describe('added latency, e.g. 20ms'),
    jitter: time('jitter').optional().describe('random variation of the delay, e.g. 5ms (needs delay)'),
    loss: share('loss').optional().describe('share of packets dropped, e.g. 1%'),
    rate: z
      .string()
      .max(16)
      .refine((t) => parseRate(t) !== undefined, { error: `rate is a rate like 10mbit, 512kbit or 1gbit, in tc's units: ${RATE_UNITS}`, abort: true })
      .refine((t) => (parseRate(t) ?? 0) >= 8000, { error: 'rate is at least 8kbit (1kbps)' })
      .optional()
      .describe('bandwidth limit, e.g. 10mbit; in tc\'s units, where "bps" is bytes per second (1mbps is 8mbit)'),
    duplicate: share('duplicate').optional().describe('share of packets sent twice, e.g. 0.5%'),
    corrupt: share('corrupt').optional().describe('share of packets with a bit flipped, e.g. 0.1%'),
    direction: z
      .enum(IMPAIR_DIRECTIONS)
      .default('egress')
      .describe('from the guest\'s side: egress (what it sends, the default), ingress (what it receives) or both'),
  })
  .refine((i) => i.jitter === undefined || i.delay !== undefined, { error: 'jitter needs a delay', path: ['jitter'] });



export type ImpairInput = z.input<typeof ImpairSchema>;

/** An IEEE 802.1Q VLAN id as a switch accepts it (0 and 4095 are reserved). */
export const vlanId = (what: string) =>
  z
    .number({ error: `${what} is a VLAN id from 1 to 4094` })
    .int({ error: `${what} is a VLAN id from 1 to 4094` })
    .min(1, { error: `${what} is a VLAN id from 1 to 4094` })
    .max(4094, { error: `${what} is a VLAN id from 1 to 4094` });

/** A VLAN sub-interface in the guest (eth0.10 on eth0): tagged frames of that VLAN, with addresses of their own. */
export const SubInterfaceSchema = z.strictObject({
  id: vlanId('id').describe('the VLAN id: the guest tags what it sends from this sub-interface with it'),
  ip: z
    .union([ipv4Text, z.array(ipv4Text).max(LIMITS.addressesPerNic)])
    .optional()
    .describe('static IPv4 address(es) of the sub-interface, "a.b.c.d/len" (or without /len when its VLAN has a subnet)'),
});

export const NicSchema = z.strictObject({
  network: z.string().max(64).optional().describe('name of the network this NIC joins'),
  user: UserNetSchema.optional().describe(
    'QEMU user-mode networking (slirp): the guest gets 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3; no bridge, no tap',
  ),
  mac: z.string().max(17).optional().describe('MAC address; derived from the lab, node and NIC index when absent'),
  model: z
    .enum(Object.keys(NIC_MODELS) as [NicModel, ...NicModel[]])
    .default('virtio')
    .describe('emulated NIC model'),
  tap: ifName.optional().describe('name of the tap device on the host side (derived when absent)'),
  dhcp: z.boolean().default(false).describe('get the address by DHCP; with "ip", that address is a static lease for this MAC'),
  ip: z
    .union([ipv4Text, z.array(ipv4Text).max(LIMITS.addressesPerNic)])
    .optional()
    .describe('static IPv4 address(es), "a.b.c.d/len" or "a.b.c.d" (prefix from the network subnet)'),
  impair: ImpairSchema.optional().describe(
    'impair this NIC\'s link (netem and tbf on its tap): delay, jitter, loss, rate, duplicate, corrupt; direction from the guest\'s side',
  ),
  vlan: vlanId('vlan')
    .optional()
    .describe('access port on a network with "vlans": the guest sends and receives untagged frames, which the switch puts in this VLAN (default 1)'),
  trunk: z
    .array(vlanId('trunk'))
    .min(1, { error: 'a trunk carries at least one VLAN' })
    .max(4094)
    .optional()
    .describe('trunk port on a network with "vlans": frames of these VLANs reach the guest tagged'),
  native: vlanId('native').optional().describe('with "trunk": the VLAN of the trunk\'s untagged frames (none by default: untagged frames are dropped)'),
  vlans: z
    .array(SubInterfaceSchema)
    .max(64)
    .optional()
    .describe('VLAN sub-interfaces the guest makes on this NIC (eth0.10 for id 10), each with its own addresses: the guest side of a trunk'),
});

export const NetworkSchema = z.strictObject({
  mode: z
    .enum(['bridge', 'isolated', 'nat', 'routed', 'socket', 'link', 'bridged', 'macnat'])
    .default('bridge')
    .describe(
      'bridge: a Linux bridge with a tap per NIC (optional host address); isolated: a switch and nothing else; ' +
        'nat: the host side is the gateway and traffic is masqueraded out of the lab uplink; routed: the same without NAT, ' +
        'with a route to the subnet on the host; socket: a point-to-point QEMU socket link between exactly two NICs; ' +
        'link: a transparent point-to-point link between exactly two NICs on taps in the lab namespace (every frame, LLDP, LACP and STP included; capture and impairments apply); ' +
        'bridged: guests are on the LAN of the host interface "uplink" as themselves (wired uplinks); ' +
        'macnat: the same for uplinks that cannot be bridged (Wi-Fi): every frame leaves with the uplink\'s MAC',
    ),
  uplink: ifName
    .optional()
    .describe(
      'bridged and macnat: the host interface whose LAN the guests join (bridged: an Ethernet interface, which qnet puts ' +
        'into a bridge of its own with the host\'s addresses and routes, or an existing bridge, which qnet joins)',
    ),
  stp: z.boolean().optional().describe('spanning tree protocol on the bridge (default off)'),
  vlans: z
    .union([
      z.boolean(),
      z.record(z.string().max(4), z.strictObject({ subnet: ipv4Text.optional().describe('the VLAN\'s IPv4 subnet "a.b.c.d/len": addresses in the VLAN must lie in it') })),
    ])
    .optional()
    .describe('a VLAN-aware switch (the bridge\'s VLAN filtering): NICs are access ports ("vlan", default 1) or trunks ("trunk", "native"); true, or a map of VLAN id to {subnet}'),
  hostVlan: vlanId('hostVlan').optional().describe('on a network with "vlans": the VLAN the host side ("address") sits in (default 1)'),
  forwardDelay: z
    .number()
    .min(0, { error: 'forwardDelay is 0 to 30 seconds' })
    .max(30, { error: 'forwardDelay is 0 to 30 seconds' })
    .optional()
    .describe('bridge forward delay in seconds (default 0; with STP on, the kernel uses at least 2)'),
  helloTime: z
    .number()
    .min(1, { error: 'helloTime is 1 to 10 seconds' })
    .max(10, { error: 'helloTime is 1 to 10 seconds' })
    .optional()
    .describe('STP hello time in seconds (default 2)'),
  dhcp: z
    .strictObject({
      range: z.string().max(40).describe('first and last address handed out, "a.b.c.d-a.b.c.e"'),
      lease: z
        .string()
        .regex(/^(infinite|\d{1,6}[smhd]?)$/, { error: 'lease times look like 12h, 30m, 3600 or infinite' })
        .default('1h'),
    })
    .optional()
    .describe('DHCP and DNS for this network by dnsmasq, bound to its bridge only'),
  bridge: ifName.optional().describe('name of the Linux bridge (derived from the network name when absent)'),
  subnet: ipv4Text.optional().describe('IPv4 subnet "a.b.c.d/len"; addresses on this network must lie in it'),
  address: ipv4Text.optional().describe('address of the host side on the bridge, inside the lab namespace'),
  antispoof: z
    .boolean()
    .optional()
    .describe('drop frames whose source MAC or IPv4 is not the sending NIC\'s own (default: on for nat and routed networks)'),
  dhcpGuard: z
    .boolean()
    .optional()
    .describe('drop DHCP server replies sent by guests, so no guest can hand out leases (default: on where qnet serves DHCP)'),
});

/** Disk buses an image node's disk may sit on (Windows 7 has no virtio driver: sata). */
export const DISK_BUSES = ['virtio', 'sata', 'ide', 'scsi'] as const;
export type DiskBus = (typeof DISK_BUSES)[number];

const PATH_TEXT = z.string().min(1, { error: 'expected a file name' }).max(4096, { error: 'paths are at most 4096 characters' });

export const ReadySchema = z.union([
  z.enum(['agent', 'lease', 'none']),
  z.strictObject({ console: z.string().min(1).max(512).describe('a regular expression the serial console shows when the guest is ready') }),
  z.strictObject({ tcp: port('tcp').describe('a TCP port that answers on the node\'s first address, from the lab namespace') }),
]);

export const NodeSchema = z.strictObject({
  host: z.string().max(64).optional().describe('the host (of "hosts") this node runs on; without it, qnet places the node by memory and CPUs'),
  image: PATH_TEXT.optional().describe(
    'a disk image to boot (qcow2, raw, vmdk, vdi or vhdx; relative to the topology file): the node runs it on a copy-on-write overlay of its own. Without it, the built-in guest',
  ),
  disk: z
    .strictObject({
      size: z.string().max(20).optional().describe('grow the overlay to this size (like 8G; the guest\'s growpart does the rest)'),
      bus: z.enum(DISK_BUSES).default('virtio').describe('the bus the disk sits on (virtio; sata or ide for guests without virtio drivers; scsi: virtio-scsi)'),
    })
    .optional()
    .describe('image nodes: the disk'),
  persist: z.boolean().optional().describe('image nodes: keep the overlay (and UEFI variables) across down/up, under QNET_STATE_DIR; `qnet down LAB --purge` removes it'),
  config: z
    .enum(['cloud-init', 'none'])
    .optional()
    .describe('image nodes: cloud-init (default: a NoCloud seed with hostname, addresses, routes, DNS, hosts, SSH key, router) or none (qnet only wires the NICs)'),
  cloudInit: z
    .strictObject({
      userData: z.record(z.string(), z.unknown()).default({}).describe('cloud-config merged into qnet\'s (packages, users, runcmd, write_files, ...)'),
    })
    .optional()
    .describe('image nodes with config: cloud-init: what to add to the seed'),
  ready: ReadySchema.optional().describe(
    'image nodes: when the node counts as up: agent (qemu-guest-agent answers after cloud-init\'s final stage), lease (each DHCP NIC has its lease), {console: REGEX}, {tcp: PORT}, none. Default: agent with cloud-init, lease (or none) without',
  ),
  machine: z.enum(['q35', 'pc']).optional().describe('image nodes: the emulated chipset (default q35)'),
  firmware: z.enum(['bios', 'uefi']).optional().describe('image nodes: bios (SeaBIOS, default) or uefi (OVMF from Debian\'s ovmf package, with variables of the node\'s own)'),
  cdrom: PATH_TEXT.optional().describe('image nodes: an ISO image attached read-only as a CD-ROM (booted when the disk does not boot)'),
  display: z
    .union([z.literal('vnc'), z.strictObject({ vnc: z.number().int().min(5900, { error: 'a VNC port is 5900 to 65535' }).max(65535, { error: 'a VNC port is 5900 to 65535' }) })])
    .optional()
    .describe('image nodes: a screen over VNC: on a Unix socket in the run directory ("vnc"), or also on 127.0.0.1:PORT ({vnc: PORT})'),
  routes: z
    .array(z.strictObject({ to: ipv4Text.describe('destination "a.b.c.d/len"'), via: ipv4Text.describe('next hop on one of the node\'s networks') }))
    .max(64)
    .optional()
    .describe('static routes besides the default one'),
  memory: z
    .number()
    .int({ error: 'memory is a whole number of MiB' })
    .min(LIMITS.memoryMinMiB, { error: `memory is at least ${LIMITS.memoryMinMiB} MiB (the kernel and the built-in image need it to boot)` })
    .max(LIMITS.memoryMaxMiB, { error: `memory is at most ${LIMITS.memoryMaxMiB} MiB` })
    .optional()
    .describe('guest RAM in MiB (default 128 for the built-in guest, 512 for image nodes)'),
  cpus: z
    .number()
    .int({ error: 'cpus is a whole number' })
    .min(1, { error: 'cpus is at least 1' })
    .max(LIMITS.cpusMax, { error: `cpus is at most ${LIMITS.cpusMax}` })
    .optional()
    .describe('virtual CPUs'),
  gateway: ipv4Text.optional().describe('default gateway; must be on the subnet of one of the node\'s NICs'),
  nics: z.array(NicSchema).max(LIMITS.nicsPerNode).default([]),
  router: z
    .strictObject({
      forward: z.boolean().default(true).describe('turn on IPv4 forwarding in the guest'),
      masquerade: z
        .array(
          z.strictObject({
            from: z.string().max(64).describe('network whose subnet is masqueraded'),
            out: z.number().int().min(0).max(LIMITS.nicsPerNode - 1).describe('index of the NIC traffic leaves by'),
          }),
        )
        .max(16)
        .default([]),
    })
    .optional()
    .describe('make this node a router: forwarding, masquerade, FORWARD accept from the masqueraded networks'),
});

/** One declared expectation: a probe from a node (or `host`, `upstream`) to an endpoint, and whether it must pass. */
export const CheckSchema = z
  .strictObject({
    from: z.string().min(1).max(64).describe('a node, "host" (the lab namespace) or "upstream" (the host beyond the uplink)'),
    to: z.string().min(1).max(100).describe('a node (its first address), NODE:NIC (eth1, or nic1 on image nodes), "host:NETWORK" (the host side) or "upstream"'),
    ping: z.literal(true, { error: 'ping is true (or leave it out)' }).optional().describe('an ICMP echo'),
    tcp: port('tcp').optional().describe('a TCP connection to this port (qnet listens there for the check)'),
    expect: z.enum(['pass', 'fail']).default('pass'),
  })
  .refine((c) => (c.ping === undefined) !== (c.tcp === undefined), { error: 'a check is either "ping: true" or "tcp: PORT"' });

/** One host of a lab that spans several (on OVN): how qnet reaches it, its underlay address, what it may hold. */
export const HostSchema = z.strictObject({
  ssh: z
    .string()
    .max(300, { error: 'an SSH target is at most 300 characters' })
    .describe('"local" (the machine qnet runs on) or user@host[:port], reached with OpenSSH in batch mode and the user\'s keys'),
  underlay: ipv4Text
    .optional()
    .describe('the IPv4 address other hosts reach this one at (the Geneve tunnels\' end); default: the address in "ssh"'),
  datapath: z
    .enum(['system', 'netdev'])
    .optional()
    .describe('Open vSwitch datapath: system (the kernel module) or netdev (userspace); default: system where the module loads'),
  memory: z
    .number()
    .int({ error: 'memory is a whole number of MiB' })
    .min(LIMITS.memoryMinMiB, { error: `memory is at least ${LIMITS.memoryMinMiB} MiB` })
    .max(16 * 1024 * 1024, { error: 'memory is at most 16 TiB (16777216 MiB)' })
    .optional()
    .describe('MiB qnet may give guests on this host (each counts its memory and QEMU\'s own); default: what the host has available'),
  cpus: z
    .number()
    .int({ error: 'cpus is a whole number' })
    .min(1, { error: 'cpus is at least 1' })
    .max(4096, { error: 'cpus is at most 4096' })
    .optional()
    .describe('virtual CPUs qnet may place on this host; default: its CPUs times the overcommit qnet allows'),
});

/** Where the lab's OVN databases are: run by qnet on one of its hosts, or an OVN that already runs. */
export const OvnSchema = z.strictObject({
  central: z.string().max(64).optional().describe('the host that runs the OVN northbound and southbound databases and ovn-northd'),
  nb: z.string().max(300).optional().describe('an OVN that already runs (Incus, OpenStack): its northbound database, like tcp:192.0.2.5:6641'),
  sb: z.string().max(300).optional().describe('its southbound database, like tcp:192.0.2.5:6642'),
  gateway: z.string().max(64).optional().describe('the host whose lab namespace holds the host sides and the way out of nat and routed networks (default: the central host, else the first)'),
});

export const TopologySchema = z.strictObject({
  name: z
    .string()
    .max(LIMITS.labName, { error: `lab names are at most ${LIMITS.labName} characters` })
    .regex(NAME, { error: 'lab names use lower-case letters, digits and inner hyphens (like "seed-lab")' })
    .describe('lab name; the lab namespace is qnet-<name>'),
  fabric: z
    .enum(['bridge', 'ovn'])
    .optional()
    .describe('how networks are made: bridge (Linux bridges in the lab namespace, the default) or ovn (OVN logical switches and routers; implied by "hosts")'),
  hosts: z
    .record(objectName('host'), HostSchema)
    .optional()
    .refine((r) => r === undefined || Object.keys(r).length >= 1, { error: 'hosts lists at least one host' })
    .refine((r) => r === undefined || Object.keys(r).length <= 64, { error: 'at most 64 hosts' })
    .describe('the hosts a lab spans (on OVN): name -> { ssh, underlay, datapath, memory, cpus }'),
  ovn: OvnSchema.optional().describe('the OVN databases of a lab on OVN: { central: HOST } or { nb: tcp:IP:6641, sb: tcp:IP:6642 }'),
  networks: z
    .record(objectName('network'), NetworkSchema)
    .default({})
    .refine((r) => Object.keys(r).length <= LIMITS.networksMax, { error: `at most ${LIMITS.networksMax} networks` }),
  forwards: z
    .array(
      z.strictObject({
        proto: z.enum(['tcp', 'udp']).default('tcp'),
        host: port('host').describe('port on the host'),
        node: z.string().max(64).describe('node that receives the traffic'),
        port: port('port').describe('port on the node'),
      }),
    )
    .max(256)
    .default([])
    .describe('host ports forwarded to nodes on nat or routed networks (only these)'),
  checks: z
    .array(CheckSchema)
    .max(256)
    .default([])
    .describe('expectations checked by `qnet check` and `qnet up --check`: { from, to, ping: true | tcp: PORT, expect: pass | fail }'),
  nodes: z
    .record(objectName('node'), NodeSchema)
    .refine((r) => Object.keys(r).length >= 1, { error: 'a lab has at least one node' })
    .refine((r) => Object.keys(r).length <= LIMITS.nodesMax, { error: `at most ${LIMITS.nodesMax} nodes` }),
});

export type TopologyInput = z.input<typeof TopologySchema>;
export type Topology = z.output<typeof TopologySchema>;

/** The JSON Schema of the topology file, for editor completion. */
export function topologyJsonSchema(): unknown {
  const schema = z.toJSONSchema(TopologySchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'qnet topology', $id: 'https://qnet.invalid/topology.schema.json' };
}

export { NAME_PATTERN };
export const IFNAME_PATTERN = IFNAME;
