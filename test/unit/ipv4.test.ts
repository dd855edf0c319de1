// Unit tests for the pure IPv4 / MAC helpers: strict parsing, subnet arithmetic, formatting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  broadcastOf,
  contains,
  formatCidr,
  formatIPv4,
  isHostAddress,
  isUsableMac,
  maskOf,
  networkOf,
  overlaps,
  parseCidr,
  parseIPv4,
  parseMac,
  type Cidr,
} from '../../src/topology/ipv4.js';

/** Parses a CIDR that the test knows is valid. */
function cidr(text: string): Cidr {
  const c = parseCidr(text);
  assert.ok(c, `test setup: ${text} should parse`);
  return c;
}

function ip(text: string): number {
  const v = parseIPv4(text);
  assert.ok(v !== null, `test setup: ${text} should parse`);
  return v;
}

describe('parseIPv4', () => {
  test('accepts well-formed dotted quads', () => {
    assert.equal(parseIPv4('0.0.0.0'), 0);
    assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
    assert.equal(parseIPv4('192.168.1.2'), 0xc0a80102);
    assert.equal(parseIPv4('10.0.0.1'), 0x0a000001);
    assert.equal(parseIPv4('1.2.3.4'), 0x01020304);
    assert.equal(parseIPv4('249.250.199.100'), (249 * 2 ** 24 + 250 * 2 ** 16 + 199 * 256 + 100) >>> 0);
  });

  test('returns an unsigned 32-bit value even for high addresses', () => {
    const v = parseIPv4('200.0.0.1');
    assert.ok(v !== null && v > 0 && v <= 0xffffffff);
  });

  const bad = [
    ['leading zero', '192.168.01.2'],
    ['leading zero in first octet', '010.0.0.1'],
    ['double zero', '00.0.0.0'],
    ['octet 256', '192.168.1.256'],
    ['octet 300', '300.1.1.1'],
    ['octet 999', '1.1.1.999'],
    ['three octets', '192.168.1'],
    ['five octets', '1.2.3.4.5'],
    ['trailing dot', '1.2.3.4.'],
    ['leading dot', '.1.2.3.4'],
    ['empty octet', '1..2.3'],
    ['empty string', ''],
    ['leading space', ' 1.2.3.4'],
    ['trailing space', '1.2.3.4 '],
    ['inner space', '1.2. 3.4'],
    ['trailing newline', '1.2.3.4\n'],
    ['sign', '+1.2.3.4'],
    ['negative', '-1.2.3.4'],
    ['hex', '0x1.2.3.4'],
    ['letters', 'a.b.c.d'],
    ['with prefix', '1.2.3.4/24'],
    ['single number', '16909060'],
    ['non-ASCII digits', '١.2.3.4'],
    ['exponent', '1e2.1.1.1'],
  ] as const;
  for (const [why, text] of bad)
    test(`rejects ${why}: ${JSON.stringify(text)}`, () => {
      assert.equal(parseIPv4(text), null);
    });

  test('formatIPv4 inverts parseIPv4 (property)', () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        const v = parseIPv4(text);
        assert.ok(v !== null);
        assert.equal(formatIPv4(v), text);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        assert.equal(parseIPv4(formatIPv4(n)), n);
      }),
    );
  });
});

describe('parseCidr', () => {
  test('parses address and prefix', () => {
    assert.deepEqual(parseCidr('192.168.1.0/24'), { ip: 0xc0a80100, prefix: 24 });
    assert.deepEqual(parseCidr('10.1.2.3/8'), { ip: 0x0a010203, prefix: 8 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { ip: 0, prefix: 0 });
    assert.deepEqual(parseCidr('1.2.3.4/32'), { ip: 0x01020304, prefix: 32 });
  });

  test('uses the default prefix only when the text has none', () => {
    assert.deepEqual(parseCidr('192.168.1.2', 24), { ip: 0xc0a80102, prefix: 24 });
    assert.deepEqual(parseCidr('192.168.1.2/30', 24), { ip: 0xc0a80102, prefix: 30 });
    assert.equal(parseCidr('192.168.1.2'), null);
  });

  for (const text of ['1.2.3.4/33', '1.2.3.4/', '1.2.3.4/024', '1.2.3.4/00', '1.2.3.4/-1', '1.2.3.4/ 24', '1.2.3.4/24 ', '1.2.3.4/2x', '1.2.3.4/24/24', '1.2.3/24', '256.0.0.0/8', '/24'])
    test(`rejects ${JSON.stringify(text)}`, () => {
      assert.equal(parseCidr(text, 24), null);
    });

  test('formatCidr round-trips', () => {
    for (const t of ['192.168.1.0/24', '10.0.0.1/8', '0.0.0.0/0', '255.255.255.255/32']) assert.equal(formatCidr(cidr(t)), t);
  });
});

describe('subnet arithmetic', () => {
  test('maskOf', () => {
    assert.equal(maskOf(0), 0);
    assert.equal(maskOf(8), 0xff000000);
    assert.equal(maskOf(24), 0xffffff00);
    assert.equal(maskOf(31), 0xfffffffe);
    assert.equal(maskOf(32), 0xffffffff);
  });

  test('networkOf and broadcastOf', () => {
    const c = cidr('192.168.1.77/24');
    assert.equal(formatIPv4(networkOf(c)), '192.168.1.0');
    assert.equal(formatIPv4(broadcastOf(c)), '192.168.1.255');
    const d = cidr('10.20.30.40/12');
    assert.equal(formatIPv4(networkOf(d)), '10.16.0.0');
    assert.equal(formatIPv4(broadcastOf(d)), '10.31.255.255');
    assert.equal(formatIPv4(broadcastOf(cidr('200.1.1.1/0'))), '255.255.255.255');
  });

  test('contains', () => {
    const lan = cidr('192.168.1.0/24');
    assert.equal(contains(lan, ip('192.168.1.0')), true);
    assert.equal(contains(lan, ip('192.168.1.2')), true);
    assert.equal(contains(lan, ip('192.168.1.255')), true);
    assert.equal(contains(lan, ip('192.168.2.1')), false);
    assert.equal(contains(lan, ip('10.0.0.1')), false);
    // A subnet written with host bits set still means its network.
    assert.equal(contains(cidr('192.168.1.77/24'), ip('192.168.1.3')), true);
    assert.equal(contains(cidr('0.0.0.0/0'), ip('250.1.2.3')), true);
    assert.equal(contains(cidr('1.2.3.4/32'), ip('1.2.3.4')), true);
    assert.equal(contains(cidr('1.2.3.4/32'), ip('1.2.3.5')), false);
    // High addresses (sign bit set) must not be mishandled.
    assert.equal(contains(cidr('200.0.0.0/8'), ip('200.255.255.255')), true);
    assert.equal(contains(cidr('200.0.0.0/8'), ip('201.0.0.0')), false);
  });

  test('overlaps', () => {
    assert.equal(overlaps(cidr('10.0.0.0/8'), cidr('10.1.0.0/16')), true);
    assert.equal(overlaps(cidr('10.1.0.0/16'), cidr('10.0.0.0/8')), true);
    assert.equal(overlaps(cidr('192.168.1.0/24'), cidr('192.168.1.0/24')), true);
    assert.equal(overlaps(cidr('192.168.1.0/24'), cidr('192.168.2.0/24')), false);
    assert.equal(overlaps(cidr('192.168.0.0/23'), cidr('192.168.1.0/24')), true);
    assert.equal(overlaps(cidr('192.168.0.0/24'), cidr('192.168.1.0/25')), false);
    assert.equal(overlaps(cidr('0.0.0.0/0'), cidr('203.0.113.0/24')), true);
    assert.equal(overlaps(cidr('10.0.0.0/31'), cidr('10.0.0.2/31')), false);
    assert.equal(overlaps(cidr('200.0.0.0/8'), cidr('100.0.0.0/8')), false);
  });

  test('overlaps is symmetric and agrees with contains (property)', () => {
    const arb = fc.record({ ip: fc.integer({ min: 0, max: 0xffffffff }), prefix: fc.integer({ min: 0, max: 32 }) });
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        assert.equal(overlaps(a, b), overlaps(b, a));
        // Two CIDR blocks overlap exactly when one contains the other's network address.
        assert.equal(overlaps(a, b), contains(a, networkOf(b)) || contains(b, networkOf(a)));
      }),
    );
  });

  test('isHostAddress', () => {
    assert.equal(isHostAddress(cidr('192.168.1.0/24')), false);
    assert.equal(isHostAddress(cidr('192.168.1.255/24')), false);
    assert.equal(isHostAddress(cidr('192.168.1.1/24')), true);
    assert.equal(isHostAddress(cidr('192.168.1.254/24')), true);
    assert.equal(isHostAddress(cidr('10.0.0.0/8')), false);
    assert.equal(isHostAddress(cidr('10.255.255.255/8')), false);
    assert.equal(isHostAddress(cidr('10.0.0.4/30')), false);
    assert.equal(isHostAddress(cidr('10.0.0.5/30')), true);
    assert.equal(isHostAddress(cidr('10.0.0.7/30')), false);
    // RFC 3021 point-to-point links and host routes: every address is usable.
    assert.equal(isHostAddress(cidr('10.0.0.0/31')), true);
    assert.equal(isHostAddress(cidr('10.0.0.1/31')), true);
    assert.equal(isHostAddress(cidr('10.0.0.0/32')), true);
  });
});

describe('MAC addresses', () => {
  test('parseMac normalizes case and surrounding whitespace', () => {
    assert.equal(parseMac('de:ad:be:ef:00:01'), 'de:ad:be:ef:00:01');
    assert.equal(parseMac('DE:AD:BE:EF:00:0A'), 'de:ad:be:ef:00:0a');
    assert.equal(parseMac(' 52:54:00:12:34:56 '), '52:54:00:12:34:56');
  });

  for (const text of ['de:ad:be:ef:00', 'de:ad:be:ef:00:01:02', 'de-ad-be-ef-00-01', 'dead.beef.0001', 'deadbeef0001', 'de:ad:be:ef:00:1', 'de:ad:be:ef:00:001', 'de:ad:be:ef:00:0g', '', 'de:ad:be:ef:00:01;', 'de:ad:be:ef::01'])
    test(`parseMac rejects ${JSON.stringify(text)}`, () => {
      assert.equal(parseMac(text), null);
    });

  test('isUsableMac: unicast and non-zero only', () => {
    assert.equal(isUsableMac('de:ad:be:ef:00:01'), true);
    assert.equal(isUsableMac('52:54:00:12:34:56'), true);
    assert.equal(isUsableMac('02:00:00:00:00:01'), true);
    assert.equal(isUsableMac('00:00:00:00:00:00'), false);
    assert.equal(isUsableMac('01:00:5e:00:00:01'), false); // IPv4 multicast
    assert.equal(isUsableMac('33:33:00:00:00:01'), false); // IPv6 multicast
    assert.equal(isUsableMac('ff:ff:ff:ff:ff:ff'), false); // broadcast
    assert.equal(isUsableMac('df:ad:be:ef:00:01'), false); // group bit set in an otherwise ordinary MAC
  });
});
