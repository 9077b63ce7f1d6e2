/**
 * Outbound address guard (SSRF defence).
 *
 * Webhook URLs are typed in by merchants, so every delivery is a request made from inside the
 * host's network. This module decides which destination addresses may be dialled:
 *
 * - {@link checkAddress} classifies one IP address (IPv4 or IPv6, any spelling ipaddr.js parses).
 *   IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64,
 *   6to4, Teredo) are judged by the embedded address, so `::ffff:127.0.0.1` is as blocked as
 *   `127.0.0.1`.
 * - {@link checkUrlHost} checks a URL whose host is an IP literal (Node does not call `lookup`
 *   for those) and refuses `localhost` / `*.localhost` names outright.
 * - {@link createGuardedLookup} wraps `dns.lookup` for the `lookup` option of `net.connect`,
 *   `http.request` or an `http.Agent`: the address that is checked is the address that is dialled,
 *   so a DNS name cannot be validated once and resolved again to something else (DNS rebinding).
 *
 * A transport must use both: `checkUrlHost` before sending (IP literals) and the guarded lookup
 * when connecting (names). Redirects must not be followed (the Node transport never does).
 *
 * Policy, in order of precedence:
 * 1. `blockedCidrs` blocks, whatever else says (range `custom`).
 * 2. `allowedCidrs` allows, even inside a blocked default range (including cloud metadata).
 * 3. Cloud metadata endpoints are blocked (range `metadata`), even with `allowPrivateNetworks`.
 * 4. `allowPrivateNetworks` allows every other non-public range.
 * 5. Otherwise only public unicast is allowed: IPv4 that ipaddr.js calls `unicast`, IPv6 that
 *    ipaddr.js calls `unicast` and that is inside global unicast `2000::/3`.
 *
 * Addresses that embed IPv4 are judged by the embedded address under the same options (so
 * `allowedCidrs: ['127.0.0.1/32']` also allows `::ffff:127.0.0.1`); an `allowedCidrs` entry that
 * only matches the outer IPv6 form does not lift a block on the embedded IPv4 address.
 *
 * @module
 */
import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AddressBlockedError, WebhookValidationError } from '../errors.js';

/** Options of the address guard. Every function of this module takes the same options. */
export interface AddressGuardOptions {
  /**
   * Allow every non-public range (loopback, RFC 1918, link-local, unique-local, CGNAT, ...).
   * For tests and internal deployments. Cloud metadata endpoints (see {@link METADATA_CIDRS})
   * stay blocked; list them in `allowedCidrs` to reach them. Default false.
   */
  allowPrivateNetworks?: boolean;
  /**
   * CIDRs that are allowed even though they are in a blocked range, e.g.
   * `['10.1.0.0/16', '127.0.0.1/32', '::1/128']`. A single host needs `/32` or `/128`.
   */
  allowedCidrs?: readonly string[];
  /** Extra CIDRs to block on top of the defaults. They win over everything else. */
  blockedCidrs?: readonly string[];
}

/** The guard's decision about one address. */
export interface AddressVerdict {
  /** Whether a connection to this address may be made. */
  allowed: boolean;
  /**
   * The address normalized by ipaddr.js (`127.0.0.1`, `::ffff:7f00:1`), the lower-cased host
   * name for `localhost` names, or the input unchanged when it is not an IP address.
   */
  address: string;
  /**
   * Why: an ipaddr.js range name (`unicast`, `loopback`, `private`, `linkLocal`, `uniqueLocal`,
   * `carrierGradeNat`, `reserved`, ...) or one of our labels: `metadata` (cloud metadata
   * endpoint), `custom` (a `blockedCidrs` entry), `localhost` (RFC 6761 name), `invalid` (not an
   * IP address), `rfc6052LocalUse` (local-use NAT64 prefix). For IPv6 forms that embed IPv4 the
   * label is `outer(inner)`, e.g. `ipv4Mapped(loopback)`, `rfc6052(private)`, `teredo(unicast)`.
   */
  range: string;
}

/**
 * Cloud metadata endpoints, labelled `metadata`. Blocked even with `allowPrivateNetworks`:
 * AWS IMDS (IPv4 and IPv6), AWS ECS task credentials, AWS EKS Pod Identity agent (IPv4 and
 * IPv6), Alibaba Cloud, Oracle Cloud, Azure WireServer. GCP, Azure IMDS, DigitalOcean, OpenStack
 * and others use 169.254.169.254 too.
 */
export const METADATA_CIDRS: readonly string[] = Object.freeze([
  '169.254.169.254/32',
  '169.254.170.2/32',
  '169.254.170.23/32',
  'fd00:ec2::254/128',
  'fd00:ec2::23/128',
  '100.100.100.200/32',
  '192.0.0.192/32',
  '168.63.129.16/32',
]);

type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = readonly [IPAddress, number];

interface CompiledOptions {
  readonly allowPrivate: boolean;
  readonly allowed: readonly Cidr[];
  readonly blocked: readonly Cidr[];
}

const METADATA: readonly Cidr[] = METADATA_CIDRS.map((c) => ipaddr.parseCIDR(c));
const GLOBAL_UNICAST_V6: Cidr = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN: Cidr = ipaddr.parseCIDR('64:ff9b::/96');

function parseCidrList(list: readonly string[] | undefined, name: string): Cidr[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    throw new WebhookValidationError([{ path: name, message: 'must be an array of CIDR strings' }], { context: 'address guard' });
  }
  return list.map((entry: unknown, index) => {
    const invalid = (cause?: unknown) =>
      new WebhookValidationError(
        [
          {
            path: `${name}.${index}`,
            message: `invalid CIDR ${JSON.stringify(entry)} (expected e.g. "10.0.0.0/8", "127.0.0.1/32" or "::1/128")`,
          },
        ],
        { context: 'address guard', cause },
      );
    if (typeof entry !== 'string' || !entry.includes('/')) throw invalid();
    try {
      return ipaddr.parseCIDR(entry);
    } catch (cause) {
      throw invalid(cause);
    }
  });
}

function compileOptions(options: AddressGuardOptions | undefined): CompiledOptions {
  return {
    allowPrivate: options?.allowPrivateNetworks === true,
    allowed: parseCidrList(options?.allowedCidrs, 'allowedCidrs'),
    blocked: parseCidrList(options?.blockedCidrs, 'blockedCidrs'),
  };
}

/**
 * True when `ip` is inside any CIDR of `list`. With `viaMapped`, an IPv4 address also matches
 * IPv6 CIDRs by its IPv4-mapped form (used for blocking only: a block widens, an allow never does).
 */
function inCidrs(ip: IPAddress, list: readonly Cidr[], viaMapped = false): boolean {
  for (const [network, bits] of list) {
    if (ip.kind() === 'ipv4' && network.kind() === 'ipv4') {
      if ((ip as ipaddr.IPv4).match(network, bits)) return true;
    } else if (ip.kind() === 'ipv6' && network.kind() === 'ipv6') {
      if ((ip as ipaddr.IPv6).match(network, bits)) return true;
    } else if (viaMapped && ip.kind() === 'ipv4' && network.kind() === 'ipv6') {
      if ((ip as ipaddr.IPv4).toIPv4MappedAddress().match(network, bits)) return true;
    }
  }
  return false;
}

function ipv4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([(high >> 8) & 0xff, high & 0xff, (low >> 8) & 0xff, low & 0xff]);
}

interface Embedding {
  /** Label of the outer form, e.g. `ipv4Mapped`. */
  label: string;
  /** Embedded IPv4 addresses; the address is blocked when any of them is. */
  ipv4: ipaddr.IPv4[];
  /** The outer prefix is itself non-public and needs allowPrivateNetworks or allowedCidrs. */
  localUse: boolean;
}

/** The IPv4 address(es) an IPv6 address embeds, or null when it embeds none. */
function embeddedIPv4(ip: ipaddr.IPv6, range: string): Embedding | null {
  const p = ip.parts;
  const w = (i: number): number => p[i] ?? 0;
  const last32 = (): ipaddr.IPv4 => ipv4FromWords(w(6), w(7));
  switch (range) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d (RFC 4291)
    case 'rfc6145': // ::ffff:0:a.b.c.d, IPv4-translated (RFC 6145)
      return { label: range, ipv4: [last32()], localUse: false };
    case 'rfc6052':
      // 64:ff9b::/96 well-known NAT64 prefix: the IPv4 address is the last 32 bits.
      // 64:ff9b:1::/48 local-use prefix (RFC 8215): the operator picks the layout, so the prefix
      // as a whole is non-public; the /96 layout (last 32 bits) is judged as well.
      if (ip.match(NAT64_WELL_KNOWN[0], NAT64_WELL_KNOWN[1])) return { label: 'rfc6052', ipv4: [last32()], localUse: false };
      return { label: 'rfc6052', ipv4: [last32()], localUse: true };
    case '6to4': // 2002:AABB:CCDD::/48 (RFC 3056)
      return { label: '6to4', ipv4: [ipv4FromWords(w(1), w(2))], localUse: false };
    case 'teredo': // 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, client obfuscated with XOR 0xffffffff (RFC 4380)
      return {
        label: 'teredo',
        ipv4: [ipv4FromWords(~w(6) & 0xffff, ~w(7) & 0xffff), ipv4FromWords(w(2), w(3))],
        localUse: false,
      };
    case 'unicast':
      // ::a.b.c.d, deprecated IPv4-compatible (RFC 4291); :: and ::1 have their own ranges.
      if (p.slice(0, 6).every((part) => part === 0)) return { label: 'ipv4Compatible', ipv4: [last32()], localUse: false };
      return null;
    default:
      return null;
  }
}

/** Default range name: ipaddr.js's, plus IPv6 outside global unicast 2000::/3 is `reserved`. */
function defaultRange(ip: IPAddress): string {
  const range: string = ip.range();
  if (range === 'unicast' && ip.kind() === 'ipv6' && !(ip as ipaddr.IPv6).match(GLOBAL_UNICAST_V6[0], GLOBAL_UNICAST_V6[1])) {
    return 'reserved';
  }
  return range;
}

function judge(ip: IPAddress, options: CompiledOptions): AddressVerdict {
  const address = ip.toString();
  if (inCidrs(ip, options.blocked, true)) return { allowed: false, address, range: 'custom' };

  if (ip.kind() === 'ipv6') {
    const embedding = embeddedIPv4(ip as ipaddr.IPv6, ip.range());
    if (embedding) {
      let innerRange = '';
      for (const inner of embedding.ipv4) {
        const verdict = judge(inner, options);
        if (!verdict.allowed) return { allowed: false, address, range: `${embedding.label}(${verdict.range})` };
        innerRange ||= verdict.range;
      }
      if (embedding.localUse && !options.allowPrivate && !inCidrs(ip, options.allowed)) {
        return { allowed: false, address, range: 'rfc6052LocalUse' };
      }
      return { allowed: true, address, range: `${embedding.label}(${innerRange})` };
    }
  }

  const isMetadata = inCidrs(ip, METADATA);
  const range = isMetadata ? 'metadata' : defaultRange(ip);
  if (inCidrs(ip, options.allowed)) return { allowed: true, address, range };
  if (isMetadata) return { allowed: false, address, range };
  if (range === 'unicast' || options.allowPrivate) return { allowed: true, address, range };
  return { allowed: false, address, range };
}

function parseAddress(address: string): IPAddress | null {
  const bare = address.length > 2 && address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  try {
    return ipaddr.parse(bare);
  } catch {
    return null;
  }
}

function judgeString(address: string, options: CompiledOptions): AddressVerdict {
  const ip = typeof address === 'string' ? parseAddress(address) : null;
  if (!ip) return { allowed: false, address: String(address), range: 'invalid' };
  return judge(ip, options);
}

/**
 * Classifies one IP address string (IPv4 or IPv6, any spelling ipaddr.js parses, e.g.
 * `127.0.0.1`, `2130706433`, `0x7f.1`, `::ffff:7f00:1`, `[::1]`, `fe80::1%eth0`).
 *
 * IPv6 forms that embed IPv4 — IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
 * IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
 * `2002::/16`, Teredo `2001::/32` (client IPv4 XOR 0xffffffff in the last 32 bits; the server
 * IPv4 is judged too) — are blocked when an embedded address is blocked. The local-use NAT64
 * prefix `64:ff9b:1::/48` is non-public itself and is blocked unless allowed by options.
 *
 * Never throws for a bad address: a string that is not an IP address is blocked with range
 * `invalid`. Throws a `WebhookValidationError` naming the entry when an option CIDR is invalid.
 *
 * @param address - The address to judge.
 * @param options - Guard options; blocks every non-public range by default.
 * @returns The verdict, with the normalized address and the range that decided it.
 */
export function checkAddress(address: string, options?: AddressGuardOptions): AddressVerdict {
  return judgeString(address, compileOptions(options));
}

/**
 * Like {@link checkAddress} but throws when the address is blocked.
 *
 * @param address - The address to judge.
 * @param options - Guard options.
 * @param hostname - The name the address was resolved from, quoted in the error message.
 * @throws AddressBlockedError (code `address_blocked`) when the address is blocked.
 * @throws {WebhookValidationError} when an option CIDR is invalid.
 */
export function assertAddressAllowed(address: string, options?: AddressGuardOptions, hostname?: string): void {
  const verdict = checkAddress(address, options);
  if (!verdict.allowed) {
    throw new AddressBlockedError(verdict.address, verdict.range, hostname === undefined ? {} : { hostname });
  }
}

function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Checks the host of a parsed WHATWG URL before connecting.
 *
 * - IP literal host (including bracketed IPv6; the URL parser already normalizes decimal, octal,
 *   hex and short IPv4 such as `http://2130706433/`, `http://0x7f.1/`, `http://0177.0.0.1/`,
 *   `http://127.1/`): returns the verdict of {@link checkAddress}. Hosts of non-special schemes
 *   are not normalized by the URL parser, so any host ipaddr.js can parse as an address is
 *   treated as an IP literal too. Node does not call `lookup` for IP literals, so this check is
 *   the only one they get.
 * - `localhost` and `*.localhost` (RFC 6761; case and trailing dots ignored): blocked with range
 *   `localhost`, unless the options allow a loopback address (`127.0.0.1` or `::1`), in which
 *   case `null` is returned and the connect-time lookup decides.
 * - Empty host: blocked with range `invalid`.
 * - Any other DNS name: `null` — check it at connect time with {@link createGuardedLookup}.
 *
 * @param url - The destination URL.
 * @param options - Guard options.
 * @returns The verdict, or null when the host is a DNS name to be checked at connect time.
 * @throws {WebhookValidationError} when an option CIDR is invalid.
 */
export function checkUrlHost(url: URL, options?: AddressGuardOptions): AddressVerdict | null {
  const compiled = compileOptions(options);
  const host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) return judgeString(host.slice(1, -1), compiled);
  const name = host.toLowerCase().replace(/\.+$/, '');
  if (name === '') return { allowed: false, address: host, range: 'invalid' };
  if (ipaddr.isValid(name)) return judgeString(name, compiled);
  if (isLocalhostName(name)) {
    const loopbackAllowed =
      judgeString('127.0.0.1', compiled).allowed || judgeString('::1', compiled).allowed;
    return loopbackAllowed ? null : { allowed: false, address: name, range: 'localhost' };
  }
  return null;
}

type LookupCallback = Parameters<LookupFunction>[2];

/**
 * Creates a `lookup` function for the `lookup` option of `net.connect`, `tls.connect`,
 * `http.request` or an `http.Agent`. It resolves through `baseLookup` (default `dns.lookup`,
 * read at call time) and checks every returned address:
 *
 * - single form `(err, address, family)` and the `all: true` form `(err, addresses)` that Node's
 *   happy-eyeballs (`autoSelectFamily`, on by default in Node 20) uses are both supported;
 * - if ANY returned address is blocked the callback gets an {@link AddressBlockedError} (code
 *   `address_blocked`, message naming the host name, the address and the range). Blocked
 *   addresses are not filtered out: a name that resolves to a mix of public and internal
 *   addresses is a rebinding trick, not a destination;
 * - otherwise the result is passed through unchanged, so the socket connects to exactly the
 *   address(es) that were checked — there is no second resolution.
 *
 * Node does not call `lookup` for IP-literal hosts: check those with {@link checkUrlHost}.
 *
 * @param options - Guard options, validated now.
 * @param baseLookup - The resolver to wrap. Default `dns.lookup`.
 * @returns A lookup function compatible with `dns.lookup`'s callback signature.
 * @throws {WebhookValidationError} when an option CIDR is invalid.
 */
export function createGuardedLookup(
  options?: AddressGuardOptions,
  baseLookup?: typeof dns.lookup | LookupFunction,
): LookupFunction {
  const compiled = compileOptions(options);

  const guardedLookup = (
    hostname: string,
    lookupOptions: LookupOptions | number | LookupCallback | undefined,
    callback?: LookupCallback,
  ): void => {
    let cb = callback;
    let opts: LookupOptions | number = {};
    if (typeof lookupOptions === 'function') cb = lookupOptions;
    else if (lookupOptions !== undefined) opts = lookupOptions;
    if (typeof cb !== 'function') throw new TypeError('address guard: lookup requires a callback');
    const done = cb;
    const resolve = (baseLookup ?? dns.lookup) as (
      hostname: string,
      options: LookupOptions | number,
      callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => void;

    resolve(hostname, opts, (err, address, family) => {
      if (err) {
        done(err, address, family);
        return;
      }
      const addresses = Array.isArray(address) ? address.map((entry) => entry.address) : [address];
      for (const candidate of addresses) {
        const verdict = judgeString(candidate, compiled);
        if (!verdict.allowed) {
          const error = new AddressBlockedError(verdict.address, verdict.range, { hostname });
          // Same shape as a dns.lookup failure: an empty result of the requested form.
          done(error, Array.isArray(address) ? [] : '', undefined);
          return;
        }
      }
      if (Array.isArray(address)) done(null, address);
      else done(null, address, family);
    });
  };

  return guardedLookup as LookupFunction;
}
