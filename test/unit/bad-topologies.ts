// A shared table of invalid topologies: each one YAML text and where the error must point.
// Used by topology.test.ts (library) and cli-validate.test.ts (the real CLI). Not a test file itself.

export interface BadTopology {
  /** What is wrong, as the test's name. */
  why: string;
  yaml: string;
  /** The dotted path (or location) the error must name: exact string, or a pattern for YAML-level errors. */
  path: string | RegExp;
  /** A fragment of the message for that problem, when it is worth pinning down. */
  message?: string | RegExp;
  /** Suitable for the CLI test (small, quick to parse). */
  cli?: boolean;
}

const LAN = 'networks:\n  lan: {subnet: 192.168.1.0/24}\n';

/** A topology with the given lab name, networks block and nodes block. */
function topo(nodes: string, networks = LAN, name = 'lab'): string {
  return `name: ${name}\n${networks}nodes:\n${nodes}`;
}

/** Two well-formed nodes on `lan` with `extra1` / `extra2` merged into their first NIC. */
function pair(extra1 = '', extra2 = '', node1 = '', node2 = ''): string {
  return topo(
    `  deb1: {${node1}nics: [{network: lan, ip: 192.168.1.1${extra1}}]}\n` +
      `  deb2: {${node2}nics: [{network: lan, ip: 192.168.1.2${extra2}}]}\n`,
  );
}

/** A lab on hosts a and b (or the given `hosts` block) with the given nodes (and networks). */
function onHosts(nodes: string, hosts = '  a: {ssh: root@192.0.2.10}\n  b: {ssh: root@192.0.2.11}\n', networks = LAN): string {
  return `${topo(nodes, networks)}hosts:\n${hosts}`;
}

/** A lab name in YAML double quotes (escapes as given). */
const named = (yamlName: string) => topo('  deb1: {}\n', '', yamlName);

function nested(depth: number): string {
  return `name: lab\nnodes:\n  deb1: {}\nx: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
}

function blockNested(depth: number): string {
  const lines = ['name: lab', 'nodes:', '  deb1: {}', 'x:'];
  for (let i = 1; i < depth; i++) lines.push(`${'  '.repeat(i)}k${i}:`);
  return lines.join('\n') + ' 1\n';
}

function billionLaughs(): string {
  const rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghi';
  for (let i = 1; i < names.length; i++) {
    const prev = `*${names[i - 1]}`;
    rows.push(`${names[i]}: &${names[i]} [${Array(9).fill(prev).join(',')}]`);
  }
  return `name: lab\nnodes:\n  deb1: {}\n${rows.join('\n')}\n`;
}

const manyNics = (n: number) => `  deb1:\n    nics:\n${'      - network: lan\n'.repeat(n)}`;

const YAML_LOCATION = /^line \d+, column \d+$/;

export const BAD_TOPOLOGIES: BadTopology[] = [
  // --- YAML itself ---
  { why: 'malformed YAML (unclosed flow sequence)', yaml: 'name: [lab\nnodes: {\n', path: YAML_LOCATION, cli: true },
  { why: 'malformed YAML (bad indentation)', yaml: 'name: lab\nnodes:\n  deb1:\n     memory: 128\n    cpus: 1\n', path: YAML_LOCATION },
  { why: 'tab indentation', yaml: 'name: lab\nnodes:\n\tdeb1: {}\n', path: YAML_LOCATION },
  { why: 'duplicate top-level YAML key', yaml: 'name: lab\nname: other\nnodes:\n  deb1: {}\n', path: 'line 2, column 1', message: /unique/, cli: true },
  { why: 'duplicate node key', yaml: 'name: lab\nnodes:\n  deb1: {}\n  deb1: {memory: 256}\n', path: 'line 4, column 3', message: /unique/ },
  { why: 'YAML alias bomb (billion laughs)', yaml: billionLaughs(), path: '(yaml)', message: /alias/i, cli: true },
  { why: 'deeply nested flow document', yaml: nested(200), path: '(top level)', message: /nested more than 32 levels/, cli: true },
  { why: 'deeply nested block document', yaml: blockNested(60), path: '(top level)', message: /nested more than 32 levels/ },
  { why: 'pathologically nested document (stack depth)', yaml: nested(20000), path: /^(\(yaml\)|\(top level\)|line \d+, column \d+)$/ },
  { why: 'top level is a sequence', yaml: '- name: lab\n- nodes: {}\n', path: '(top level)', message: /expected a mapping/, cli: true },
  { why: 'top level is a scalar', yaml: 'just a string\n', path: '(top level)', message: /expected a mapping/ },
  { why: 'empty document', yaml: '', path: '(top level)', message: /expected a mapping/ },
  { why: 'document of only a comment', yaml: '# nothing here\n', path: '(top level)' },

  // --- lab name ---
  { why: 'missing name', yaml: 'nodes:\n  deb1: {}\n', path: 'name', message: /required/, cli: true },
  { why: 'name is a number', yaml: 'name: 42\nnodes:\n  deb1: {}\n', path: 'name' },
  { why: 'lab name with upper case', yaml: named('SeedLab'), path: 'name' },
  { why: 'lab name with a space', yaml: named('"seed lab"'), path: 'name' },
  { why: 'lab name with command substitution', yaml: named('"$(reboot)"'), path: 'name', cli: true },
  { why: 'lab name with backticks', yaml: named('"`id`"'), path: 'name' },
  { why: 'lab name ".."', yaml: named('".."'), path: 'name' },
  { why: 'lab name with a slash', yaml: named('"../etc"'), path: 'name', cli: true },
  { why: 'lab name with a newline', yaml: named('"lab\\nx"'), path: 'name' },
  { why: 'lab name with non-ASCII letters', yaml: named('"läb"'), path: 'name' },
  { why: 'lab name with a leading hyphen', yaml: named('"-lab"'), path: 'name' },
  { why: 'lab name with a trailing hyphen', yaml: named('"lab-"'), path: 'name' },
  { why: 'empty lab name', yaml: named('""'), path: 'name' },
  { why: 'lab name longer than 24 characters', yaml: named('a'.repeat(25)), path: 'name', message: /at most 24/ },

  // --- unknown keys and wrong types ---
  { why: 'unknown top-level key', yaml: 'name: lab\nnode: {}\nnodes:\n  deb1: {}\n', path: '(top level)', message: 'unknown key "node"', cli: true },
  { why: 'unknown node key', yaml: topo('  deb1: {ram: 128}\n'), path: 'nodes.deb1', message: 'unknown key "ram"', cli: true },
  { why: 'unknown NIC key', yaml: pair(', addr: 192.168.1.9'), path: 'nodes.deb1.nics[0]', message: 'unknown key "addr"' },
  { why: 'unknown network key', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {subnet: 10.0.0.0/24, vlan: 5}\n'), path: 'networks.lan', message: 'unknown key "vlan"' },
  { why: 'memory as a string', yaml: pair('', '', 'memory: "128", '), path: 'nodes.deb1.memory', cli: true },
  { why: 'memory 10 MiB', yaml: pair('', '', '', 'memory: 10, '), path: 'nodes.deb2.memory', message: /at least 104/ },
  { why: 'memory 1e9 MiB', yaml: pair('', '', 'memory: 1e9, '), path: 'nodes.deb1.memory', message: /at most 16384/ },
  { why: 'memory not a whole number', yaml: pair('', '', 'memory: 128.5, '), path: 'nodes.deb1.memory', message: /whole number/ },
  { why: 'memory negative', yaml: pair('', '', 'memory: -128, '), path: 'nodes.deb1.memory' },
  { why: 'cpus 0', yaml: pair('', '', 'cpus: 0, '), path: 'nodes.deb1.cpus', message: /at least 1/, cli: true },
  { why: 'cpus 17', yaml: pair('', '', 'cpus: 17, '), path: 'nodes.deb1.cpus', message: /at most 16/ },
  { why: 'cpus fractional', yaml: pair('', '', 'cpus: 1.5, '), path: 'nodes.deb1.cpus' },
  { why: 'cpus boolean', yaml: pair('', '', 'cpus: true, '), path: 'nodes.deb1.cpus' },
  { why: 'nics is a mapping', yaml: topo('  deb1: {nics: {network: lan}}\n'), path: 'nodes.deb1.nics' },
  { why: 'NIC without a network', yaml: topo('  deb1: {nics: [{ip: 192.168.1.1}]}\n'), path: /^nodes\.deb1\.nics\[0\](\.network)?$/ },
  { why: 'unknown NIC model', yaml: pair(', model: ne2k_pci'), path: 'nodes.deb1.nics[0].model' },
  { why: 'networks is a sequence', yaml: 'name: lab\nnetworks: [lan]\nnodes:\n  deb1: {}\n', path: 'networks' },
  { why: 'node name with upper case', yaml: topo('  Deb1: {}\n'), path: 'nodes.Deb1' },
  { why: 'node name with a dot', yaml: topo('  deb.1: {}\n'), path: 'nodes["deb.1"]' },
  { why: 'node name longer than 32 characters', yaml: topo(`  ${'n'.repeat(33)}: {}\n`), path: `nodes.${'n'.repeat(33)}` },
  { why: 'network name with a slash', yaml: topo('  deb1: {}\n', 'networks:\n  "a/b": {}\n'), path: 'networks["a/b"]' },

  // --- addresses ---
  { why: 'invalid IP (octet 300)', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.300}'), path: 'nodes.deb2.nics[0].ip', message: /not an IPv4 address/, cli: true },
  { why: 'invalid IP (leading zero)', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.02}'), path: 'nodes.deb2.nics[0].ip', message: /not an IPv4 address/ },
  { why: 'invalid IP (three octets)', yaml: pair('', '').replace('192.168.1.2}', '192.168.1}'), path: 'nodes.deb2.nics[0].ip' },
  { why: 'invalid IP (prefix 33)', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.2/33}'), path: 'nodes.deb2.nics[0].ip' },
  { why: 'invalid IP in a list', yaml: pair('', '').replace('ip: 192.168.1.2}', 'ip: [192.168.1.2, 192.168.1.x]}'), path: 'nodes.deb2.nics[0].ip[1]' },
  { why: 'IP outside the network subnet', yaml: pair('', '').replace('192.168.1.2}', '10.0.0.2}'), path: 'nodes.deb2.nics[0].ip', message: /outside the network's subnet 192\.168\.1\.0\/24/, cli: true },
  { why: 'IP with a prefix other than the subnet', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.2/16}'), path: 'nodes.deb2.nics[0].ip', message: /outside/ },
  { why: 'network address as a host address', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.0}'), path: 'nodes.deb2.nics[0].ip', message: /network or broadcast/ },
  { why: 'broadcast address as a host address', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.255}'), path: 'nodes.deb2.nics[0].ip', message: /network or broadcast/ },
  { why: 'broadcast address on a network without subnet', yaml: topo('  deb1: {nics: [{network: lan, ip: 10.0.0.255/24}]}\n', 'networks:\n  lan: {}\n'), path: 'nodes.deb1.nics[0].ip', message: /network or broadcast/ },
  { why: 'bridge address is the broadcast address', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {subnet: 10.0.0.0/24, address: 10.0.0.255}\n'), path: 'networks.lan.address' },
  { why: 'bridge address outside its subnet', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {subnet: 10.0.0.0/24, address: 10.0.1.1}\n'), path: 'networks.lan.address', message: /outside/ },
  { why: 'invalid subnet (no prefix)', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {subnet: 10.0.0.0}\n'), path: 'networks.lan.subnet' },
  { why: 'duplicate IPs on two nodes', yaml: pair('', '').replace('192.168.1.2}', '192.168.1.1}'), path: 'nodes.deb2.nics[0].ip', message: /already used by nodes\.deb1\.nics\[0\]\.ip/, cli: true },
  { why: 'node IP equal to the bridge address', yaml: pair('').replace(LAN, 'networks:\n  lan: {subnet: 192.168.1.0/24, address: 192.168.1.2}\n'), path: 'nodes.deb2.nics[0].ip', message: /already used by networks\.lan\.address/ },
  { why: 'address without prefix on a network with no subnet', yaml: topo('  deb1: {nics: [{network: lan, ip: 10.0.0.1}]}\n', 'networks:\n  lan: {}\n'), path: 'nodes.deb1.nics[0].ip', message: /needs a prefix length/, cli: true },
  { why: 'overlapping subnets', yaml: topo('  deb1: {}\n', 'networks:\n  a: {subnet: 10.0.0.0/8}\n  b: {subnet: 10.1.0.0/16}\n'), path: 'networks.b.subnet', message: /overlaps networks\.a\.subnet/, cli: true },
  { why: 'identical subnets', yaml: topo('  deb1: {}\n', 'networks:\n  a: {subnet: 10.0.0.0/24}\n  b: {subnet: 10.0.0.0/24}\n'), path: 'networks.b.subnet', message: /overlaps/ },

  // --- MACs ---
  { why: 'duplicate MACs', yaml: pair(', mac: "de:ad:be:ef:00:01"', ', mac: "DE:AD:BE:EF:00:01"'), path: 'nodes.deb2.nics[0].mac', message: /already used by nodes\.deb1\.nics\[0\]/, cli: true },
  { why: 'multicast MAC', yaml: pair(', mac: "01:00:5e:00:00:01"'), path: 'nodes.deb1.nics[0].mac', message: /multicast/, cli: true },
  { why: 'broadcast MAC', yaml: pair(', mac: "ff:ff:ff:ff:ff:ff"'), path: 'nodes.deb1.nics[0].mac', message: /multicast/ },
  { why: 'all-zero MAC', yaml: pair(', mac: "00:00:00:00:00:00"'), path: 'nodes.deb1.nics[0].mac' },
  { why: 'invalid MAC (five octets)', yaml: pair(', mac: "de:ad:be:ef:00"'), path: 'nodes.deb1.nics[0].mac', message: /not a MAC address/ },
  { why: 'invalid MAC (dashes)', yaml: pair(', mac: "de-ad-be-ef-00-01"'), path: 'nodes.deb1.nics[0].mac' },

  // --- references and interface names ---
  { why: 'unknown network reference', yaml: pair('').replace('{network: lan, ip: 192.168.1.2', '{network: wan, ip: 192.168.1.2/24'), path: 'nodes.deb2.nics[0].network', message: /unknown network "wan" \(networks: lan\)/, cli: true },
  { why: 'NIC on a network when no networks exist', yaml: topo('  deb1: {nics: [{network: lan}]}\n', ''), path: 'nodes.deb1.nics[0].network', message: /networks: none/ },
  { why: 'bridge name longer than 15 bytes', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {bridge: bridge-of-the-lab}\n'), path: 'networks.lan.bridge', message: /15 bytes/, cli: true },
  { why: 'bridge name of 15 characters but more than 15 bytes', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {bridge: "brückebrückebr"}\n'), path: 'networks.lan.bridge' },
  { why: 'tap name with a space', yaml: pair(', tap: "tap 1"'), path: 'nodes.deb1.nics[0].tap', cli: true },
  { why: 'tap name with a quote', yaml: pair(`, tap: "tap'1"`), path: 'nodes.deb1.nics[0].tap', cli: true },
  { why: 'tap name with a semicolon', yaml: pair(', tap: "t;reboot"'), path: 'nodes.deb1.nics[0].tap', cli: true },
  { why: 'tap name starting with a hyphen', yaml: pair(', tap: "-tap"'), path: 'nodes.deb1.nics[0].tap' },
  { why: 'tap name with a slash', yaml: pair(', tap: "a/b"'), path: 'nodes.deb1.nics[0].tap' },
  { why: 'tap name with a colon', yaml: pair(', tap: "tap:1"'), path: 'nodes.deb1.nics[0].tap' },
  { why: 'empty tap name', yaml: pair(', tap: ""'), path: 'nodes.deb1.nics[0].tap' },
  { why: 'tap name longer than 15 bytes', yaml: pair(', tap: tap-0123456789ab'), path: 'nodes.deb1.nics[0].tap', message: /15 bytes/ },
  { why: 'duplicate tap names', yaml: pair(', tap: ktap1', ', tap: ktap1'), path: 'nodes.deb2.nics[0].tap', message: /already used by nodes\.deb1\.nics\[0\]\.tap/, cli: true },
  { why: 'explicit tap equal to a derived one', yaml: pair('', ', tap: t-deb1-0'), path: 'nodes.deb2.nics[0].tap', message: /already used/ },
  { why: 'tap name equal to the bridge name', yaml: pair(', tap: br-lan'), path: 'nodes.deb1.nics[0].tap', message: /already used by networks\.lan\.bridge/ },
  { why: 'two networks with the same bridge', yaml: topo('  deb1: {}\n', 'networks:\n  a: {}\n  b: {bridge: br-a}\n'), path: 'networks.b.bridge', message: /already used by networks\.a\.bridge/ },
  { why: 'reserved tap name lo', yaml: pair(', tap: lo'), path: 'nodes.deb1.nics[0].tap', message: /reserved/, cli: true },
  { why: 'reserved bridge name all', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {bridge: all}\n'), path: 'networks.lan.bridge', message: /reserved/ },
  { why: 'reserved bridge name default', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {bridge: default}\n'), path: 'networks.lan.bridge', message: /reserved/ },

  // --- gateways ---
  { why: 'gateway not on any NIC subnet', yaml: pair('', '', '', 'gateway: 10.0.0.1, '), path: 'nodes.deb2.gateway', message: /not on the subnet/, cli: true },
  { why: 'gateway on a node without NICs', yaml: topo('  deb1: {gateway: 192.168.1.254}\n'), path: 'nodes.deb1.gateway', message: /not on the subnet/ },
  { why: 'gateway equal to the own address', yaml: pair('', '', '', 'gateway: 192.168.1.2, '), path: 'nodes.deb2.gateway', message: /own address/ },
  { why: 'gateway not an IPv4 address', yaml: pair('', '', '', 'gateway: 192.168.1.256, '), path: 'nodes.deb2.gateway', message: /not an IPv4 address/ },

  // --- sizes ---
  { why: 'no nodes (empty value)', yaml: topo(''), path: 'nodes', cli: true },
  { why: 'no nodes key', yaml: 'name: lab\nnetworks: {}\n', path: 'nodes', message: /required/ },
  { why: 'empty nodes mapping', yaml: 'name: lab\nnodes: {}\n', path: 'nodes', message: /at least one node/ },
  { why: 'too many NICs (17)', yaml: topo(manyNics(17), 'networks:\n  lan: {}\n'), path: 'nodes.deb1.nics' },
  { why: 'too many addresses on one NIC (17)', yaml: topo(`  deb1: {nics: [{network: lan, ip: [${Array.from({ length: 17 }, (_, i) => `192.168.1.${i + 1}`).join(', ')}]}]}\n`), path: 'nodes.deb1.nics[0].ip' },
  { why: 'too many nodes (251)', yaml: topo(Array.from({ length: 251 }, (_, i) => `  n${i}: {}\n`).join('')), path: 'nodes', message: /at most 250/ },

  // --- bridged and macnat networks ---
  { why: 'bridged network without an uplink', yaml: topo('  deb1: {nics: [{network: lan, dhcp: true}]}\n', 'networks:\n  lan: {mode: bridged}\n'), path: 'networks.lan.uplink', message: /needs "uplink"/, cli: true },
  { why: 'macnat network without an uplink', yaml: topo('  deb1: {nics: [{network: lan, dhcp: true}]}\n', 'networks:\n  lan: {mode: macnat}\n'), path: 'networks.lan.uplink', message: /wlan0/ },
  { why: 'uplink on a nat network', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {mode: nat, subnet: 10.9.0.0/24, address: 10.9.0.1, uplink: eth0}\n'), path: 'networks.lan.uplink', message: /only bridged and macnat/ },
  { why: 'qnet DHCP on a bridged network', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {mode: bridged, uplink: eth0, dhcp: {range: 10.0.0.2-10.0.0.9}}\n'), path: 'networks.lan.dhcp', message: /LAN's own DHCP server/ },
  { why: 'host address on a macnat network', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {mode: macnat, uplink: wlan0, subnet: 10.0.0.0/24, address: 10.0.0.1}\n'), path: 'networks.lan.address', message: /uplink's own address/ },
  { why: 'DHCP NIC with a fixed ip on a bridged network', yaml: topo('  deb1: {nics: [{network: lan, dhcp: true, ip: 10.0.0.5/24}]}\n', 'networks:\n  lan: {mode: bridged, uplink: eth0}\n'), path: 'nodes.deb1.nics[0].ip', message: /LAN's DHCP server chooses/ },
  { why: 'static ip without prefix on a bridged network without subnet', yaml: topo('  deb1: {nics: [{network: lan, ip: 10.0.0.5}]}\n', 'networks:\n  lan: {mode: bridged, uplink: eth0}\n'), path: 'nodes.deb1.nics[0].ip', message: /needs a prefix length/ },
  { why: 'two networks on one uplink', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: bridged, uplink: eth0}\n  b: {mode: macnat, uplink: eth0}\n'), path: 'networks.b.uplink', message: /already used by networks.a/, cli: true },
  { why: 'uplink name too long for the kernel', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: bridged, uplink: abcdefghijklmnop}\n'), path: 'networks.a.uplink', message: /15 bytes/ },
  { why: 'hostile uplink name', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: macnat, uplink: "wlan0; rm -rf /"}\n'), path: 'networks.a.uplink', message: /letters, digits/ },
  { why: 'forward delay out of range', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: bridged, uplink: eth0, forwardDelay: 31}\n'), path: 'networks.a.forwardDelay', message: /0 to 30/ },
  { why: 'hello time out of range', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: bridged, uplink: eth0, helloTime: 0}\n'), path: 'networks.a.helloTime', message: /1 to 10/ },
  { why: 'STP on a socket link', yaml: topo('  deb1: {}\n', 'networks:\n  a: {mode: socket, stp: true}\n'), path: 'networks.a.stp', message: /no bridge/ },

  // --- image nodes (what is wrong in the file itself; what is wrong with the image is found by image-check) ---
  { why: 'persist without image', yaml: topo('  deb1: {persist: true}\n'), path: 'nodes.deb1.persist', message: /only an image node has a disk to keep/, cli: true },
  { why: 'cloud-init settings with config: none', yaml: topo('  deb1: {image: d.qcow2, config: none, cloudInit: {userData: {packages: [frr]}}}\n'), path: 'nodes.deb1.cloudInit', message: /config: none sends nothing/, cli: true },
  { why: 'ready: console with an invalid regular expression', yaml: topo('  deb1: {image: d.qcow2, ready: {console: "login(:"}}\n'), path: 'nodes.deb1.ready.console', message: /not a valid regular expression/, cli: true },
  { why: 'ready: lease without a qnet DHCP network', yaml: topo('  deb1: {image: d.qcow2, config: none, ready: lease, nics: [{network: lan, ip: 192.168.1.5}]}\n'), path: 'nodes.deb1.ready', message: /needs a NIC on a network with "dhcp"/ },
  { why: 'ready: tcp on a node the lab namespace cannot reach', yaml: topo('  deb1: {image: d.qcow2, ready: {tcp: 22}, nics: [{network: lan, ip: 192.168.1.5}]}\n'), path: 'nodes.deb1.ready.tcp', message: /reaches none of this node's addresses/ },
  { why: 'ready: tcp port out of range', yaml: topo('  deb1: {image: d.qcow2, ready: {tcp: 70000}}\n'), path: 'nodes.deb1.ready.tcp', message: /1 to 65535/ },
  { why: 'unknown readiness', yaml: topo('  deb1: {image: d.qcow2, ready: ssh}\n'), path: 'nodes.deb1.ready' },
  { why: 'disk size that is not a size', yaml: topo('  deb1: {image: d.qcow2, disk: {size: big}}\n'), path: 'nodes.deb1.disk.size', message: /not a disk size/ },
  { why: 'unknown disk bus', yaml: topo('  deb1: {image: d.qcow2, disk: {bus: usb}}\n'), path: 'nodes.deb1.disk.bus' },
  { why: 'disk on a built-in node', yaml: topo('  deb1: {disk: {bus: sata}}\n'), path: 'nodes.deb1.disk', message: /for image nodes/ },
  { why: 'firmware on a built-in node', yaml: topo('  deb1: {firmware: uefi}\n'), path: 'nodes.deb1.firmware', message: /for image nodes/ },
  { why: 'cdrom on a built-in node', yaml: topo('  deb1: {cdrom: x.iso}\n'), path: 'nodes.deb1.cdrom', message: /for image nodes/ },
  { why: 'unknown machine type', yaml: topo('  deb1: {image: d.qcow2, machine: isapc}\n'), path: 'nodes.deb1.machine' },
  { why: 'VNC port below 5900', yaml: topo('  deb1: {image: d.qcow2, display: {vnc: 80}}\n'), path: 'nodes.deb1.display.vnc' },
  { why: 'two nodes on one VNC port', yaml: topo('  deb1: {image: d.qcow2, display: {vnc: 5901}}\n  deb2: {image: d.qcow2, display: {vnc: 5901}}\n'), path: 'nodes.deb2.display.vnc', message: /already used by nodes.deb1/ },
  { why: 'empty image path', yaml: topo('  deb1: {image: ""}\n'), path: 'nodes.deb1.image' },
  { why: 'route with host bits set', yaml: pair('', '', '', 'routes: [{to: 10.50.0.1/16, via: 192.168.1.1}], '), path: 'nodes.deb2.routes[0].to', message: /host bits/ },
  { why: 'route via an address off every NIC', yaml: pair('', '', '', 'routes: [{to: 10.50.0.0/16, via: 10.9.9.9}], '), path: 'nodes.deb2.routes[0].via', message: /not on the subnet/ },
  { why: 'route destination without a prefix', yaml: pair('', '', '', 'routes: [{to: 10.50.0.0, via: 192.168.1.1}], '), path: 'nodes.deb2.routes[0].to', message: /not a destination/ },
  // --- hosts and OVN (issue 33) ---
  { why: 'node on a host not declared', yaml: onHosts('  deb1: {host: c}\n'), path: 'nodes.deb1.host', message: 'unknown host "c" (hosts: a, b)', cli: true },
  { why: 'host: without hosts:', yaml: topo('  deb1: {host: a}\n'), path: 'nodes.deb1.host', message: /declare them under "hosts"/, cli: true },
  { why: 'host: on a one-host OVN lab without hosts:', yaml: topo('  deb1: {host: local}\n') + 'fabric: ovn\n', path: 'nodes.deb1.host', message: /declare them under "hosts"/ },
  { why: 'two hosts with one underlay address', yaml: onHosts('  deb1: {}\n', '  a: {ssh: root@192.0.2.10}\n  b: {ssh: root@192.0.2.11, underlay: 192.0.2.10}\n'), path: 'hosts.b.underlay', message: /192\.0\.2\.10 is already the underlay address of hosts\.a/, cli: true },
  { why: 'two hosts with one underlay address, both from ssh', yaml: onHosts('  deb1: {}\n', '  a: {ssh: root@192.0.2.10, underlay: 10.1.0.2}\n  b: {ssh: root@10.1.0.2}\n'), path: 'hosts.b.ssh', message: /already the underlay address of hosts\.a/ },
  { why: 'two hosts on one machine', yaml: onHosts('  deb1: {}\n', '  a: {ssh: root@192.0.2.10}\n  b: {ssh: admin@192.0.2.10:22, underlay: 10.1.0.9}\n'), path: 'hosts.b.ssh', message: /one machine is one host/ },
  { why: 'two local hosts', yaml: onHosts('  deb1: {}\n', '  a: {ssh: local}\n  b: {ssh: local}\n'), path: 'hosts.b.ssh', message: /this machine is already hosts\.a/ },
  { why: 'ssh target starting with "-"', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "-oProxyCommand=reboot"}\n'), path: 'hosts.a.ssh', message: /read as an option/, cli: true },
  { why: 'ssh target with a space', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@192.0.2.10 reboot"}\n'), path: 'hosts.a.ssh', message: /holds a space/ },
  { why: 'ssh target with a semicolon', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@h;reboot"}\n'), path: 'hosts.a.ssh', message: /holds ";"/, cli: true },
  { why: 'ssh target with command substitution', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@$(reboot)"}\n'), path: 'hosts.a.ssh', message: /holds "\$"/ },
  { why: 'ssh target with backticks', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@`id`"}\n'), path: 'hosts.a.ssh', message: /holds "`"/ },
  { why: 'ssh target with a newline', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@h\\nx"}\n'), path: 'hosts.a.ssh', message: /white space/ },
  { why: 'ssh target with a control character', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@h\\x01"}\n'), path: 'hosts.a.ssh', message: /control character/ },
  { why: 'ssh target with a pipe', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@h|x"}\n'), path: 'hosts.a.ssh', message: /holds "\|"/ },
  { why: 'ssh target with a user starting with "-"', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "-l@192.0.2.10"}\n'), path: 'hosts.a.ssh' },
  { why: 'ssh target with two @', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "a@b@192.0.2.10"}\n'), path: 'hosts.a.ssh', message: /not user@host/ },
  { why: 'ssh target port 0', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@192.0.2.10:0"}\n'), path: 'hosts.a.ssh', message: /not a port/ },
  { why: 'ssh target port 70000', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@192.0.2.10:70000"}\n'), path: 'hosts.a.ssh', message: /not a port/ },
  { why: 'ssh target that is an IP with 300 in it', yaml: onHosts('  deb1: {}\n', '  a: {ssh: "root@192.0.2.300"}\n'), path: 'hosts.a.ssh', message: /neither an IPv4 address nor a host name/ },
  { why: 'empty ssh target', yaml: onHosts('  deb1: {}\n', '  a: {ssh: ""}\n'), path: 'hosts.a.ssh', message: /expected "local"/ },
  { why: 'host name target without underlay', yaml: onHosts('  deb1: {}\n', '  a: {ssh: root@lab1.example}\n'), path: 'hosts.a.ssh', message: /give the host "underlay"/, cli: true },
  { why: 'underlay not an IPv4 address', yaml: onHosts('  deb1: {}\n', '  a: {ssh: local, underlay: 10.1.0.300}\n'), path: 'hosts.a.underlay', message: /not an IPv4 address/ },
  { why: 'unknown host key', yaml: onHosts('  deb1: {}\n', '  a: {ssh: local, ram: 4096}\n'), path: 'hosts.a', message: 'unknown key "ram"' },
  { why: 'host name with upper case', yaml: onHosts('  deb1: {}\n', '  A: {ssh: local}\n'), path: 'hosts.A' },
  { why: 'unknown datapath', yaml: onHosts('  deb1: {}\n', '  a: {ssh: local, datapath: dpdk}\n'), path: 'hosts.a.datapath' },
  { why: 'empty hosts', yaml: topo('  deb1: {}\n') + 'hosts: {}\n', path: 'hosts', message: /at least one host/ },
  { why: 'ovn.central naming an undeclared host', yaml: onHosts('  deb1: {}\n') + 'ovn: {central: c}\n', path: 'ovn.central', message: 'unknown host "c" (hosts: a, b)', cli: true },
  { why: 'ovn.gateway naming an undeclared host', yaml: onHosts('  deb1: {}\n') + 'ovn: {gateway: c}\n', path: 'ovn.gateway', message: 'unknown host "c"' },
  { why: 'ovn.central and ovn.nb together', yaml: onHosts('  deb1: {}\n') + 'ovn: {central: a, nb: "tcp:192.0.2.5:6641", sb: "tcp:192.0.2.5:6642"}\n', path: 'ovn.nb', message: /not both/ },
  { why: 'ovn.nb without ovn.sb', yaml: onHosts('  deb1: {}\n') + 'ovn: {nb: "tcp:192.0.2.5:6641"}\n', path: 'ovn', message: /"nb" needs "sb"/ },
  { why: 'ovn.nb not a database address', yaml: onHosts('  deb1: {}\n') + 'ovn: {nb: "tcp:192.0.2.5", sb: "tcp:192.0.2.5:6642"}\n', path: 'ovn.nb', message: /not a database address/ },
  { why: 'ovn.sb over ssl', yaml: onHosts('  deb1: {}\n') + 'ovn: {nb: "tcp:192.0.2.5:6641", sb: "ssl:192.0.2.5:6642"}\n', path: 'ovn.sb', message: /ssl needs keys/ },
  { why: 'fabric bridge with hosts', yaml: onHosts('  deb1: {}\n') + 'fabric: bridge\n', path: 'fabric', message: /hosts" implies fabric ovn/ },
  { why: 'fabric bridge with ovn', yaml: topo('  deb1: {}\n') + 'fabric: bridge\novn: {central: local}\n', path: 'ovn', message: /use "fabric: ovn"/ },
  { why: 'unknown fabric', yaml: topo('  deb1: {}\n') + 'fabric: vxlan\n', path: 'fabric' },
  { why: 'bridged network on OVN', yaml: topo('  deb1: {nics: [{network: lan, dhcp: true}]}\n', 'networks:\n  lan: {mode: bridged, uplink: eth0}\n') + 'fabric: ovn\n', path: 'networks.lan.mode', message: /not on OVN: .*use mode nat/, cli: true },
  { why: 'macnat network on OVN', yaml: topo('  deb1: {nics: [{network: lan, dhcp: true}]}\n', 'networks:\n  lan: {mode: macnat, uplink: wlan0}\n') + 'fabric: ovn\n', path: 'networks.lan.mode', message: /not on OVN: .*macnat/ },
  { why: 'link network on OVN', yaml: topo('  deb1: {nics: [{network: l}]}\n  deb2: {nics: [{network: l}]}\n', 'networks:\n  l: {mode: link}\n') + 'fabric: ovn\n', path: 'networks.l.mode', message: /use mode socket/ },
  { why: 'VLAN-aware network on OVN', yaml: onHosts('  deb1: {nics: [{network: sw, vlan: 10}]}\n', undefined, 'networks:\n  sw: {vlans: true}\n'), path: 'networks.sw.vlans', message: /make a network per VLAN/, cli: true },
  { why: 'VLAN sub-interfaces on OVN', yaml: topo('  deb1: {nics: [{network: lan, vlans: [{id: 10, ip: 10.0.10.1/24}]}]}\n') + 'fabric: ovn\n', path: 'nodes.deb1.nics[0].vlans', message: /drop tagged frames/ },
  { why: 'STP on OVN', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {stp: true}\n') + 'fabric: ovn\n', path: 'networks.lan.stp', message: /no spanning tree/ },
  { why: 'forward delay on OVN', yaml: topo('  deb1: {}\n', 'networks:\n  lan: {forwardDelay: 2}\n') + 'fabric: ovn\n', path: 'networks.lan.forwardDelay', message: /no spanning tree/ },
];
