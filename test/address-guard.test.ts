import http from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import type { LookupAddress, LookupOptions } from 'node:dns';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressBlockedError, WebhookValidationError } from '../src/errors.js';
import {
  assertAddressAllowed,
  checkAddress,
  checkUrlHost,
  createGuardedLookup,
  type AddressGuardOptions,
} from '../src/transport/address-guard.js';

// ---------------------------------------------------------------------------------------------
// Hostile corpus: every entry must be blocked with default options, for the stated reason.
// ---------------------------------------------------------------------------------------------

/** [url, expected range]. Hosts are IP literals in every spelling, or RFC 6761 localhost names. */
const HOSTILE_URLS: ReadonlyArray<readonly [string, string]> = [
  // IPv4 loopback in the spellings the WHATWG parser (and inet_aton) accept
  ['http://2130706433/', 'loopback'],
  ['http://0x7f000001/', 'loopback'],
  ['http://0177.0.0.1/', 'loopback'],
  ['http://127.1/', 'loopback'],
  ['http://0x7f.1/', 'loopback'],
  ['http://0177.1/', 'loopback'],
  ['http://0x7f.0x0.0x0.0x1/', 'loopback'],
  ['http://017700000001/', 'loopback'],
  ['http://127.000.000.001/', 'loopback'],
  ['http://127.0.0.1./', 'loopback'],
  ['http://127.0.0.1:8080/admin', 'loopback'],
  ['http://evil.example@127.0.0.1/', 'loopback'],
  ['http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/', 'loopback'], // full-width digits
  ['http://127.255.255.254/', 'loopback'],
  ['foo://0x7f.1/', 'loopback'], // non-special scheme: the URL parser leaves the host as is
  // unspecified
  ['http://0/', 'unspecified'],
  ['http://0.0.0.0/', 'unspecified'],
  ['http://[::]/', 'unspecified'],
  // IPv6 loopback
  ['http://[::1]/', 'loopback'],
  ['http://[0::1]/', 'loopback'],
  ['http://[0000:0000:0000:0000:0000:0000:0000:0001]/', 'loopback'],
  // IPv4 embedded in IPv6
  ['http://[::ffff:127.0.0.1]/', 'ipv4Mapped(loopback)'],
  ['http://[::ffff:7f00:1]/', 'ipv4Mapped(loopback)'],
  ['http://[0:0:0:0:0:ffff:169.254.169.254]/', 'ipv4Mapped(metadata)'],
  ['http://[::ffff:a00:1]/', 'ipv4Mapped(private)'],
  ['https://[::ffff:192.168.0.1]:8443/', 'ipv4Mapped(private)'],
  ['http://[::127.0.0.1]/', 'ipv4Compatible(loopback)'],
  ['http://[::ffff:0:127.0.0.1]/', 'rfc6145(loopback)'],
  ['http://[64:ff9b::127.0.0.1]/', 'rfc6052(loopback)'],
  ['http://[64:ff9b::a9fe:a9fe]/', 'rfc6052(metadata)'],
  ['http://[64:ff9b::10.0.0.1]/', 'rfc6052(private)'],
  ['http://[64:ff9b:1::a00:1]/', 'rfc6052(private)'],
  ['http://[64:ff9b:1::808:808]/', 'rfc6052LocalUse'], // local-use NAT64 prefix is non-public itself
  ['http://[2002:7f00:1::]/', '6to4(loopback)'],
  ['http://[2002:a9fe:a9fe::1]/', '6to4(metadata)'],
  ['http://[2002:c0a8:101::]/', '6to4(private)'],
  // Teredo: server 65.54.227.120, client = last 32 bits XOR 0xffffffff
  ['http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', 'teredo(loopback)'], // client 127.0.0.1
  ['http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/', 'teredo(private)'], // client 10.0.0.1
  // cloud metadata
  ['http://169.254.169.254/latest/meta-data/', 'metadata'],
  ['http://0251.0376.0251.0376/', 'metadata'],
  ['http://2852039166/', 'metadata'],
  ['http://0xa9fea9fe/', 'metadata'],
  ['http://169.254.170.2/v2/credentials', 'metadata'],
  ['http://[fd00:ec2::254]/', 'metadata'],
  ['http://100.100.100.200/', 'metadata'],
  ['http://192.0.0.192/', 'metadata'],
  ['http://168.63.129.16/', 'metadata'],
  // private, link-local, CGNAT
  ['http://169.254.0.1/', 'linkLocal'],
  ['http://10.0.0.1/', 'private'],
  ['http://10.1/', 'private'],
  ['http://10.255.255.255/', 'private'],
  ['http://172.16.0.1/', 'private'],
  ['http://172.31.255.255/', 'private'],
  ['http://192.168.1.1/', 'private'],
  ['http://192.168.257/', 'private'],
  ['http://100.64.0.1/', 'carrierGradeNat'],
  ['http://100.127.255.255/', 'carrierGradeNat'],
  // RFC 6761 localhost names
  ['http://localhost/', 'localhost'],
  ['http://foo.localhost/', 'localhost'],
  ['http://LOCALHOST./', 'localhost'],
  ['http://api.localhost./', 'localhost'],
  ['http://a.b.LocalHost:3000/', 'localhost'],
  ['http://localhost../', 'localhost'],
  ['http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/', 'localhost'], // circled letters, IDNA-mapped
  // IPv6 non-public
  ['http://[fe80::1]/', 'linkLocal'],
  ['http://[fc00::1]/', 'uniqueLocal'],
  ['http://[fd12:3456:789a::1]/', 'uniqueLocal'],
  ['http://[fec0::1]/', 'deprecatedSiteLocal'],
  ['http://[100::1]/', 'discard'],
  ['http://[ff02::1]/', 'multicast'],
  ['http://[2001:db8::1]/', 'reserved'],
  ['http://[3fff::1]/', 'reserved'],
  ['http://[2001:2::1]/', 'benchmarking'],
  ['http://[2001:10::1]/', 'deprecatedOrchid'],
  ['http://[2001:20::1]/', 'orchid2'],
  ['http://[5f00::1]/', 'segmentRouting'],
  ['http://[::1:0:0:1]/', 'reserved'], // outside global unicast 2000::/3
  ['http://[4000::1]/', 'reserved'],
  // IPv4 special-purpose
  ['http://224.0.0.1/', 'multicast'],
  ['http://239.255.255.250/', 'multicast'],
  ['http://255.255.255.255/', 'broadcast'],
  ['http://240.0.0.1/', 'reserved'],
  ['http://198.18.0.1/', 'reserved'],
  ['http://198.19.255.255/', 'reserved'],
  ['http://192.0.2.1/', 'reserved'],
  ['http://198.51.100.7/', 'reserved'],
  ['http://203.0.113.9/', 'reserved'],
  ['http://192.0.0.8/', 'reserved'],
  ['http://192.88.99.1/', 'reserved'],
];

/** [raw address, expected range] judged by checkAddress. */
const HOSTILE_ADDRESSES: ReadonlyArray<readonly [string, string]> = [
  ['127.0.0.1', 'loopback'],
  ['0x7f.1', 'loopback'],
  ['2130706433', 'loopback'],
  ['[::1]', 'loopback'],
  ['::ffff:127.0.0.1', 'ipv4Mapped(loopback)'],
  ['::FFFF:7F00:1', 'ipv4Mapped(loopback)'],
  ['::7f00:1', 'ipv4Compatible(loopback)'],
  ['::2', 'ipv4Compatible(unspecified)'],
  ['::ffff:0:a9fe:a9fe', 'rfc6145(metadata)'],
  ['64:ff9b::7f00:1', 'rfc6052(loopback)'],
  ['2002:a00:1::', '6to4(private)'],
  ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'teredo(private)'], // public client 8.8.8.8, private server 10.0.0.1
  ['fe80::1%eth0', 'linkLocal'],
  ['169.254.169.254', 'metadata'],
  ['169.254.170.23', 'metadata'],
  ['fd00:ec2::23', 'metadata'],
  ['::', 'unspecified'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['192.175.48.1', 'as112'],
  ['192.52.193.1', 'amt'],
  ['2001:3::1', 'amt'],
  ['2620:4f:8000::1', 'as112v6'],
  ['2001:30::1', 'droneRemoteIdProtocolEntityTags'],
  ['2001:4:112::1', 'as112v6'],
  ['not-an-ip', 'invalid'],
  ['', 'invalid'],
  [' 8.8.8.8', 'invalid'],
  ['8.8.8.8 ', 'invalid'],
  ['256.1.1.1', 'invalid'],
  ['1.2.3.4/32', 'invalid'],
  ['example.com', 'invalid'],
];

const PUBLIC_ADDRESSES = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '2606:4700:4700::1111',
  '2a00:1450:4001::',
  '2001:4860:4860::8888',
  '9.255.255.255',
  '11.0.0.1',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2001:0:4136:e378:8000:63bf:f7f7:f7f7', // Teredo, client 8.8.8.8, server 65.54.227.120
];

const PUBLIC_URLS = [
  'https://8.8.8.8/',
  'http://134744072/',
  'http://0x08080808/',
  'https://[2606:4700:4700::1111]:8443/hook',
  'http://[::ffff:8.8.8.8]/',
];

const DNS_NAME_URLS = [
  'https://merchant.example/',
  'https://hooks.shop.example.com/webhooks?x=1',
  'http://localhost.example.com/',
  'http://localhostx/',
  'http://my-localhost/',
  'http://127.0.0.1.nip.io/',
];

describe('hostile corpus', () => {
  it('has at least 60 hostile URLs', () => {
    expect(HOSTILE_URLS.length).toBeGreaterThanOrEqual(60);
    expect(new Set(HOSTILE_URLS.map(([url]) => url)).size).toBe(HOSTILE_URLS.length);
  });

  it.each(HOSTILE_URLS)('checkUrlHost blocks %s (%s)', (url, range) => {
    const verdict = checkUrlHost(new URL(url));
    expect(verdict).not.toBeNull();
    expect(verdict?.allowed).toBe(false);
    expect(verdict?.range).toBe(range);
  });

  it.each(HOSTILE_ADDRESSES)('checkAddress blocks %j (%s)', (address, range) => {
    const verdict = checkAddress(address);
    expect(verdict.allowed).toBe(false);
    expect(verdict.range).toBe(range);
  });

  it('normalizes the address in the verdict', () => {
    expect(checkAddress('0x7f.1').address).toBe('127.0.0.1');
    expect(checkAddress('::FFFF:127.0.0.1').address).toBe('::ffff:7f00:1');
    expect(checkAddress('[0:0::1]').address).toBe('::1');
    expect(checkUrlHost(new URL('http://2130706433/'))?.address).toBe('127.0.0.1');
    expect(checkUrlHost(new URL('http://LOCALHOST./'))?.address).toBe('localhost');
  });
});

describe('allowed destinations', () => {
  it.each(PUBLIC_ADDRESSES)('checkAddress allows %s', (address) => {
    const verdict = checkAddress(address);
    expect(verdict.allowed).toBe(true);
    expect(verdict.range).toMatch(/^(unicast|\w+\(unicast\))$/);
  });

  it.each(PUBLIC_URLS)('checkUrlHost allows %s', (url) => {
    expect(checkUrlHost(new URL(url))?.allowed).toBe(true);
  });

  it.each(DNS_NAME_URLS)('checkUrlHost defers the DNS name in %s to connect time', (url) => {
    expect(checkUrlHost(new URL(url))).toBeNull();
  });

  it('labels embedded forms by the embedded address', () => {
    expect(checkAddress('::ffff:8.8.8.8')).toEqual({ allowed: true, address: '::ffff:808:808', range: 'ipv4Mapped(unicast)' });
    expect(checkAddress('8.8.8.8')).toEqual({ allowed: true, address: '8.8.8.8', range: 'unicast' });
  });
});

describe('options', () => {
  it('allowPrivateNetworks allows non-public ranges but not cloud metadata', () => {
    const options: AddressGuardOptions = { allowPrivateNetworks: true };
    for (const address of ['127.0.0.1', '10.0.0.1', '192.168.1.1', '::1', 'fe80::1', 'fd12::1', '::ffff:192.168.1.1', '100.64.0.1']) {
      expect(checkAddress(address, options), address).toMatchObject({ allowed: true });
    }
    expect(checkAddress('8.8.8.8', options).allowed).toBe(true);
    for (const address of ['169.254.169.254', '::ffff:169.254.169.254', 'fd00:ec2::254', '100.100.100.200']) {
      expect(checkAddress(address, options).allowed, address).toBe(false);
    }
    expect(checkUrlHost(new URL('http://localhost:3000/'), options)).toBeNull();
    expect(checkUrlHost(new URL('http://127.0.0.1:3000/'), options)?.allowed).toBe(true);
    expect(checkAddress('not-an-ip', options).allowed).toBe(false);
  });

  it('allowedCidrs allows exactly the listed CIDRs', () => {
    const options: AddressGuardOptions = { allowedCidrs: ['127.0.0.1/32'] };
    expect(checkAddress('127.0.0.1', options)).toEqual({ allowed: true, address: '127.0.0.1', range: 'loopback' });
    expect(checkAddress('::ffff:127.0.0.1', options).allowed).toBe(true);
    expect(checkAddress('127.0.0.2', options).allowed).toBe(false);
    expect(checkAddress('10.0.0.1', options).allowed).toBe(false);
    expect(checkAddress('::1', options).allowed).toBe(false);
    expect(checkUrlHost(new URL('http://127.0.0.1:8080/'), options)?.allowed).toBe(true);
    expect(checkUrlHost(new URL('http://127.1/'), options)?.allowed).toBe(true);
    // A loopback address is allowed, so localhost names are left to the connect-time lookup.
    expect(checkUrlHost(new URL('http://localhost/'), options)).toBeNull();

    const subnet: AddressGuardOptions = { allowedCidrs: ['10.1.0.0/16', '::1/128'] };
    expect(checkAddress('10.1.2.3', subnet).allowed).toBe(true);
    expect(checkAddress('10.2.0.1', subnet).allowed).toBe(false);
    expect(checkAddress('::1', subnet).allowed).toBe(true);
    expect(checkAddress('127.0.0.1', subnet).allowed).toBe(false);
  });

  it('allowedCidrs can open a metadata address explicitly', () => {
    expect(checkAddress('169.254.169.254', { allowedCidrs: ['169.254.169.254/32'] })).toEqual({
      allowed: true,
      address: '169.254.169.254',
      range: 'metadata',
    });
  });

  it('an allowedCidrs entry for the outer IPv6 form does not lift a block on the embedded IPv4', () => {
    expect(checkAddress('::ffff:127.0.0.1', { allowedCidrs: ['::ffff:0:0/96'] }).allowed).toBe(false);
    expect(checkAddress('2002:7f00:1::', { allowedCidrs: ['2000::/3'] }).allowed).toBe(false);
    // The local-use NAT64 prefix can be opened, its embedded address is still judged.
    expect(checkAddress('64:ff9b:1::808:808', { allowedCidrs: ['64:ff9b:1::/48'] }).allowed).toBe(true);
    expect(checkAddress('64:ff9b:1::7f00:1', { allowedCidrs: ['64:ff9b:1::/48'] }).allowed).toBe(false);
  });

  it('blockedCidrs blocks public addresses and beats allowedCidrs and allowPrivateNetworks', () => {
    const options: AddressGuardOptions = { blockedCidrs: ['8.8.8.0/24', '2606:4700::/32'] };
    expect(checkAddress('8.8.8.8', options)).toEqual({ allowed: false, address: '8.8.8.8', range: 'custom' });
    expect(checkAddress('::ffff:8.8.8.8', options).range).toBe('ipv4Mapped(custom)');
    expect(checkAddress('64:ff9b::808:808', options).range).toBe('rfc6052(custom)');
    expect(checkAddress('2606:4700:4700::1111', options).range).toBe('custom');
    expect(checkAddress('8.8.4.4', options).allowed).toBe(true);
    expect(checkUrlHost(new URL('https://8.8.8.8/'), options)?.allowed).toBe(false);

    const both: AddressGuardOptions = {
      allowPrivateNetworks: true,
      allowedCidrs: ['10.0.0.0/8'],
      blockedCidrs: ['10.9.0.0/16'],
    };
    expect(checkAddress('10.1.0.1', both).allowed).toBe(true);
    expect(checkAddress('10.9.0.1', both)).toEqual({ allowed: false, address: '10.9.0.1', range: 'custom' });
    // An IPv6 CIDR for the mapped form also covers the plain IPv4 address.
    expect(checkAddress('8.8.8.8', { blockedCidrs: ['::ffff:808:0/112'] }).range).toBe('custom');
  });

  it.each([
    ['allowedCidrs', 'nope'],
    ['allowedCidrs', '10.0.0.0/33'],
    ['allowedCidrs', '10.0.0.1'],
    ['allowedCidrs', ''],
    ['blockedCidrs', '::1/129'],
    ['blockedCidrs', '10.0.0.0/ 8'],
  ] as const)('%s entry %j is rejected with a WebhookValidationError naming it', (key, entry) => {
    const options: AddressGuardOptions = { [key]: ['127.0.0.1/32', entry] };
    expect(() => checkAddress('8.8.8.8', options)).toThrow(WebhookValidationError);
    expect(() => checkAddress('8.8.8.8', options)).toThrow(JSON.stringify(entry));
    expect(() => checkAddress('8.8.8.8', options)).toThrow(expect.objectContaining({ field: `${key}.1` }));
    expect(() => checkUrlHost(new URL('http://8.8.8.8/'), options)).toThrow(WebhookValidationError);
    expect(() => createGuardedLookup(options)).toThrow(WebhookValidationError);
  });
});

describe('assertAddressAllowed', () => {
  it('throws AddressBlockedError naming host, address and range', () => {
    let caught: unknown;
    try {
      assertAddressAllowed('::ffff:10.0.0.1', undefined, 'shop.example');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AddressBlockedError);
    const error = caught as AddressBlockedError;
    expect(error.code).toBe('address_blocked');
    expect(error.address).toBe('::ffff:a00:1');
    expect(error.range).toBe('ipv4Mapped(private)');
    expect(error.message).toContain('shop.example (::ffff:a00:1)');
    expect(error.message).toContain('ipv4Mapped(private)');
  });

  it('returns for allowed addresses', () => {
    expect(assertAddressAllowed('93.184.216.34')).toBeUndefined();
    expect(assertAddressAllowed('10.0.0.1', { allowPrivateNetworks: true })).toBeUndefined();
    expect(() => assertAddressAllowed('10.0.0.1')).toThrow(AddressBlockedError);
  });
});

// ---------------------------------------------------------------------------------------------
// createGuardedLookup
// ---------------------------------------------------------------------------------------------

interface LookupResult {
  err: NodeJS.ErrnoException | null;
  address: string | LookupAddress[] | undefined;
  family: number | undefined;
}

function runLookup(lookup: LookupFunction, hostname: string, options: LookupOptions): Promise<LookupResult> {
  return new Promise((resolve) => {
    lookup(hostname, options, (err, address, family) => resolve({ err, address, family }));
  });
}

/** A base lookup answering from a fixed table, asynchronously, like dns.lookup. Records calls. */
function fakeLookup(records: LookupAddress[], calls: Array<{ hostname: string; options: LookupOptions }> = []): LookupFunction {
  return (hostname, options, callback) => {
    calls.push({ hostname, options });
    process.nextTick(() => {
      if (options.all) {
        callback(null, records);
        return;
      }
      const first = records[0];
      if (!first) {
        const error: NodeJS.ErrnoException = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
        callback(error, '', undefined);
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}

function expectBlocked(result: LookupResult, hostname: string, range: string): AddressBlockedError {
  expect(result.err).toBeInstanceOf(AddressBlockedError);
  const error = result.err as AddressBlockedError;
  expect(error.code).toBe('address_blocked');
  expect(error.range).toBe(range);
  expect(error.message).toContain(hostname);
  expect(error.message).toContain(`the ${range} range`);
  return error;
}

describe('createGuardedLookup with a fake base lookup', () => {
  it('fails with AddressBlockedError when the name resolves to a blocked address (single form)', async () => {
    const lookup = createGuardedLookup({}, fakeLookup([{ address: '10.0.0.5', family: 4 }]));
    const result = await runLookup(lookup, 'internal.shop.example', {});
    const error = expectBlocked(result, 'internal.shop.example', 'private');
    expect(error.address).toBe('10.0.0.5');
    expect(error.message).toContain('internal.shop.example (10.0.0.5)');
  });

  it('fails with AddressBlockedError when the name resolves to a blocked address (all: true form)', async () => {
    const lookup = createGuardedLookup(undefined, fakeLookup([{ address: '169.254.169.254', family: 4 }]));
    const result = await runLookup(lookup, 'rebind.attacker.example', { all: true });
    expectBlocked(result, 'rebind.attacker.example', 'metadata');
  });

  it('passes a public address through unchanged (single form)', async () => {
    const calls: Array<{ hostname: string; options: LookupOptions }> = [];
    const lookup = createGuardedLookup(undefined, fakeLookup([{ address: '93.184.216.34', family: 4 }], calls));
    const options: LookupOptions = { family: 4, hints: 0 };
    const result = await runLookup(lookup, 'merchant.example', options);
    expect(result).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(calls).toEqual([{ hostname: 'merchant.example', options }]);
  });

  it('passes public addresses through unchanged (all: true form)', async () => {
    const records: LookupAddress[] = [
      { address: '2606:4700:4700::1111', family: 6 },
      { address: '93.184.216.34', family: 4 },
    ];
    const lookup = createGuardedLookup(undefined, fakeLookup(records));
    const result = await runLookup(lookup, 'merchant.example', { all: true });
    expect(result.err).toBeNull();
    expect(result.address).toBe(records);
    expect(result.address).toEqual([
      { address: '2606:4700:4700::1111', family: 6 },
      { address: '93.184.216.34', family: 4 },
    ]);
  });

  it.each([
    [[{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }], 'loopback'],
    [[{ address: '2606:4700:4700::1111', family: 6 }, { address: '::ffff:169.254.169.254', family: 6 }], 'ipv4Mapped(metadata)'],
    [[{ address: '8.8.8.8', family: 4 }, { address: 'fd00::1', family: 6 }, { address: '1.1.1.1', family: 4 }], 'uniqueLocal'],
  ] as Array<[LookupAddress[], string]>)('fails when any address of a mixed answer is blocked (%j)', async (records, range) => {
    const lookup = createGuardedLookup(undefined, fakeLookup(records));
    expectBlocked(await runLookup(lookup, 'mixed.attacker.example', { all: true }), 'mixed.attacker.example', range);
  });

  it('fails closed on an answer that is not an IP address', async () => {
    const lookup = createGuardedLookup(undefined, fakeLookup([{ address: 'garbage', family: 4 }]));
    expectBlocked(await runLookup(lookup, 'odd.example', {}), 'odd.example', 'invalid');
  });

  it('passes resolution errors through', async () => {
    const lookup = createGuardedLookup(undefined, fakeLookup([]));
    const result = await runLookup(lookup, 'nx.example', {});
    expect(result.err?.code).toBe('ENOTFOUND');
    expect(result.err).not.toBeInstanceOf(AddressBlockedError);
  });

  it('applies the options', async () => {
    const records: LookupAddress[] = [{ address: '10.1.2.3', family: 4 }];
    const allowed = createGuardedLookup({ allowedCidrs: ['10.1.0.0/16'] }, fakeLookup(records));
    expect(await runLookup(allowed, 'intranet.example', { all: true })).toEqual({ err: null, address: records, family: undefined });
    const blocked = createGuardedLookup({ blockedCidrs: ['93.184.216.0/24'] }, fakeLookup([{ address: '93.184.216.34', family: 4 }]));
    expectBlocked(await runLookup(blocked, 'merchant.example', {}), 'merchant.example', 'custom');
  });

  it('accepts the (hostname, callback) call form of dns.lookup', async () => {
    const lookup = createGuardedLookup(undefined, fakeLookup([{ address: '192.168.0.10', family: 4 }]));
    const twoArgs = lookup as unknown as (hostname: string, cb: (err: Error | null) => void) => void;
    const err = await new Promise<Error | null>((resolve) => twoArgs('printer.lan', resolve));
    expect(err).toBeInstanceOf(AddressBlockedError);
  });
});

describe('createGuardedLookup with the real resolver', () => {
  it.each([{}, { all: true }] as LookupOptions[])('blocks the name localhost (options %j)', async (options) => {
    const result = await runLookup(createGuardedLookup(), 'localhost', options);
    const error = expectBlocked(result, 'localhost', 'loopback');
    expect(['127.0.0.1', '::1']).toContain(error.address);
  });

  it('lets localhost through when loopback is allowed', async () => {
    const result = await runLookup(createGuardedLookup({ allowedCidrs: ['127.0.0.0/8', '::1/128'] }), 'localhost', { all: true });
    expect(result.err).toBeNull();
    expect(Array.isArray(result.address)).toBe(true);
    expect((result.address as LookupAddress[]).map((a) => a.address)).toContain('127.0.0.1');
  });
});

describe('end to end through node:http', () => {
  let server: http.Server;
  let port = 0;
  let connections = 0;
  let requests = 0;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      requests += 1;
      res.end('ok');
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  type Outcome = { status: number; body: string } | { error: Error };

  function get(url: string, lookup: LookupFunction, autoSelectFamily: boolean): Promise<Outcome> {
    const agent = new http.Agent({ keepAlive: false, autoSelectFamily });
    return new Promise<Outcome>((resolve) => {
      const req = http.request(url, { lookup, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', (error) => resolve({ error }));
      req.end();
    }).finally(() => agent.destroy());
  }

  function recording(lookup: LookupFunction, calls: LookupOptions[]): LookupFunction {
    return (hostname, options, callback) => {
      calls.push({ ...options });
      lookup(hostname, options, callback);
    };
  }

  it.each([true, false])('refuses http://localhost:<port>/ before connecting (autoSelectFamily %s)', async (autoSelectFamily) => {
    const before = { connections, requests };
    const calls: LookupOptions[] = [];
    const outcome = await get(`http://localhost:${port}/`, recording(createGuardedLookup(), calls), autoSelectFamily);
    expect('error' in outcome).toBe(true);
    const error = (outcome as { error: Error }).error;
    expect(error).toBeInstanceOf(AddressBlockedError);
    expect((error as AddressBlockedError).code).toBe('address_blocked');
    expect(error.message).toContain('localhost');
    expect(error.message).toContain('loopback');
    // Happy eyeballs asks for every address at once; the plain path asks for one.
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((options) => options.all === (autoSelectFamily ? true : undefined))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect({ connections, requests }).toEqual(before);
  });

  it.each([true, false])('connects when loopback is allowed (autoSelectFamily %s)', async (autoSelectFamily) => {
    const before = requests;
    const lookup = createGuardedLookup({ allowedCidrs: ['127.0.0.0/8', '::1/128'] });
    const outcome = await get(`http://localhost:${port}/`, lookup, autoSelectFamily);
    expect(outcome).toEqual({ status: 200, body: 'ok' });
    expect(requests).toBe(before + 1);
  });

  it('is not consulted for IP-literal hosts, which is why checkUrlHost exists', async () => {
    const calls: LookupOptions[] = [];
    const url = `http://127.0.0.1:${port}/`;
    const outcome = await get(url, recording(createGuardedLookup(), calls), true);
    expect(outcome).toEqual({ status: 200, body: 'ok' });
    expect(calls).toEqual([]);
    expect(checkUrlHost(new URL(url))).toMatchObject({ allowed: false, range: 'loopback' });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const byte = fc.integer({ min: 0, max: 255 });
/** Mostly uniform IPv4, plus addresses drawn from the interesting first octets. */
const ipv4Octets = fc.oneof(
  fc.tuple(byte, byte, byte, byte),
  fc.tuple(fc.constantFrom(0, 10, 100, 127, 168, 169, 172, 192, 198, 203, 224, 240, 255), byte, byte, byte),
);
const optionSets: AddressGuardOptions[] = [
  {},
  { allowPrivateNetworks: true },
  { allowedCidrs: ['10.0.0.0/8', '127.0.0.1/32', '169.254.169.254/32'] },
  { blockedCidrs: ['8.0.0.0/7', '1.1.1.0/24'] },
];

const hex = (n: number): string => n.toString(16);

describe('properties', () => {
  it('an IPv4 address and its IPv4-mapped, NAT64, 6to4, Teredo and IPv4-compatible forms agree', () => {
    fc.assert(
      fc.property(ipv4Octets, fc.constantFrom(...optionSets), ([a, b, c, d], options) => {
        const v4 = `${a}.${b}.${c}.${d}`;
        const high = (a << 8) | b;
        const low = (c << 8) | d;
        const plain = checkAddress(v4, options);
        const mapped = checkAddress(`::ffff:${v4}`, options);
        const nat64 = checkAddress(`64:ff9b::${hex(high)}:${hex(low)}`, options);
        const sixToFour = checkAddress(`2002:${hex(high)}:${hex(low)}::1`, options);
        const teredo = checkAddress(`2001:0:4136:e378:8000:63bf:${hex(~high & 0xffff)}:${hex(~low & 0xffff)}`, options);
        const compatible = checkAddress(`::${hex(high)}:${hex(low)}`, options);
        expect(mapped.allowed).toBe(plain.allowed);
        expect(nat64.allowed).toBe(plain.allowed);
        expect(sixToFour.allowed).toBe(plain.allowed);
        expect(teredo.allowed).toBe(plain.allowed);
        expect(compatible.allowed).toBe(plain.allowed);
        expect(mapped.range).toBe(`ipv4Mapped(${plain.range})`);
        expect(nat64.range).toBe(`rfc6052(${plain.range})`);
      }),
      { numRuns: 2000 },
    );
  });

  it('the URL parser and checkAddress agree on integer and hex IPv4 spellings', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(...optionSets), (n, options) => {
        const dotted = [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
        const expected = checkAddress(dotted, options);
        expect(checkUrlHost(new URL(`http://${n}/`), options)).toEqual(expected);
        expect(checkUrlHost(new URL(`http://0x${n.toString(16)}/`), options)).toEqual(expected);
        expect(checkAddress(String(n), options)).toEqual(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('extended IPv4 spellings are judged like their WHATWG-normalized form', () => {
    fc.assert(
      fc.property(fc.ipV4Extended(), (spelling) => {
        const normalized = new URL(`http://${spelling}/`).hostname;
        expect(checkAddress(spelling)).toEqual(checkAddress(normalized));
      }),
      { numRuns: 1000 },
    );
  });

  it('a random IPv6 address is only allowed inside 2000::/3 or through a public embedded IPv4', () => {
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        const verdict = checkAddress(address);
        expect(verdict.range).not.toBe('invalid');
        if (verdict.allowed) {
          expect(verdict.range === 'unicast' || /\(unicast\)$/.test(verdict.range)).toBe(true);
          if (verdict.range === 'unicast') expect(checkAddress(address, { blockedCidrs: ['2000::/3'] }).allowed).toBe(false);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
