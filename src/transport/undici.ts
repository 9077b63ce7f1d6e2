/**
 * Transport on undici connection pools: the fast path (roughly twice node:http's throughput on
 * loopback). Same guarantees as {@link NodeHttpTransport}: never follows redirects, one overall
 * deadline, a response cap, the address guard on the dialled address, per-webhook TLS.
 *
 * It is not interceptable by msw or nock; {@link AutoTransport} (the default) switches to
 * node:http while such an interceptor is active.
 *
 * @module
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Pool, ProxyAgent, type Dispatcher } from 'undici';
import { z } from 'zod';
import { AddressBlockedError, TransportError } from '../errors.js';
import { parseInput } from '../options.js';
import { checkUrlHost, createGuardedLookup, type AddressGuardOptions } from './address-guard.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';

/** Options of {@link UndiciTransport}. */
export interface UndiciTransportOptions {
  /** The outbound address guard, on by default; `false` turns it off (see NodeHttpTransport). */
  addressGuard?: AddressGuardOptions | false;
  /** DNS lookup to resolve through (wrapped by the guard when it is on). */
  lookup?: LookupFunction;
  /** Idle keep-alive sockets are closed after this long. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Most connections per origin; requests beyond wait in the pool for a free one. Default:
   * unlimited, as undici. The dispatcher sets its `perEndpointConcurrency`: without a cap undici
   * opens about two sockets per concurrent request under load (a socket is busy until the tick
   * after its response), and every extra socket costs CPU on both sides.
   */
  connectionsPerOrigin?: number;
  /**
   * Send through this HTTP(S) proxy (`http://proxy.internal:3128`, credentials allowed in the URL).
   * The target name is resolved here, through the guard, and the proxy is asked to CONNECT to
   * exactly that address, so the proxy never resolves it: the guard still applies to the target.
   */
  proxy?: string;
}

/** Scalar options, checked at construction: a bad value names its field instead of failing every send. */
const scalarOptionsSchema = z.object({
  keepAliveTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  connectionsPerOrigin: z.number().int().min(1).max(10_000).optional(),
  proxy: z.string().optional(),
});

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) result[name] = typeof value === 'string' ? value : value.join(', ');
  }
  return result;
}

/**
 * A minimal abort signal for undici (it accepts EventEmitter-like signals): one per attempt, much
 * cheaper than an AbortController and its EventTarget.
 */
class AbortHandle {
  aborted = false;
  reason: unknown = undefined;
  private listener: (() => void) | null = null;

  on(_event: 'abort', listener: () => void): this {
    this.listener = listener;
    return this;
  }

  once(event: 'abort', listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(): this {
    this.listener = null;
    return this;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = null;
    listener?.();
  }
}

interface Target {
  url: URL;
  origin: string;
  /** Path and query, as sent in the request line. */
  path: string;
  blocked: AddressBlockedError | null;
}

function blockedCause(error: unknown): AddressBlockedError | null {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AddressBlockedError) return e;
  }
  return null;
}

/** Sends with undici pools, one per origin and TLS identity. */
export class UndiciTransport implements Transport {
  private readonly pools = new Map<string, Pool>();
  private readonly guard: AddressGuardOptions | null;
  private readonly lookup: LookupFunction | undefined;
  private readonly keepAliveTimeout: number;
  private readonly connections: number | null;
  private readonly proxy: string | null;
  private readonly proxies = new Map<string, ProxyAgent>();
  /** Parsed URL, its origin and path, and the IP-literal guard verdict per URL string: endpoints repeat, parsing need not. */
  private readonly targets = new Map<string, Target>();
  /** Attempts in flight per shutdown signal: one listener on the signal, not one per attempt. */
  private readonly inFlight = new WeakMap<AbortSignal, Set<AbortHandle>>();

  constructor(options: UndiciTransportOptions = {}) {
    parseInput(scalarOptionsSchema, options, 'UndiciTransport');
    this.proxy = options.proxy ?? null;
    this.guard = options.addressGuard === false ? null : (options.addressGuard ?? {});
    this.lookup = this.guard ? createGuardedLookup(this.guard, options.lookup) : options.lookup;
    this.keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
    this.connections = options.connectionsPerOrigin ?? null;
  }

  async send(request: TransportRequest): Promise<TransportResponse> {
    const { url, origin, path, blocked } = this.target(request.url);
    if (blocked) throw new TransportError(blocked.message, { cause: blocked, code: 'address_blocked' });

    const handle = new AbortHandle();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      handle.abort();
    }, request.timeoutMs);
    const attempts = request.signal ? this.attemptsOf(request.signal) : null;
    attempts?.add(handle);
    if (request.signal?.aborted) handle.abort(request.signal.reason);
    try {
      const target = this.proxy ? await this.viaProxy(url, request) : null;
      const dispatcher: Dispatcher = target ? target.agent : this.pool(origin, request.tls);
      const response = await dispatcher.request({
        ...(target ? { origin: target.origin } : {}),
        path,
        method: request.method as 'POST',
        headers: target ? { ...request.headers, host: url.host } : request.headers,
        body: request.body,
        signal: handle,
        // The overall deadline above is the authority; these only must not fire first.
        headersTimeout: request.timeoutMs + 1_000,
        bodyTimeout: request.timeoutMs + 1_000,
      });
      const declared = Number(response.headers['content-length'] ?? Number.NaN);
      if (Number.isInteger(declared) && declared <= request.maxResponseBodyBytes) {
        // HTTP framing holds the body to its declared length, so it fits the cap: read it whole,
        // which is much cheaper than iterating the stream.
        return { status: response.statusCode, headers: flatten(response.headers), body: await response.body.text(), bodyTruncated: false };
      }
      const chunks: Buffer[] = [];
      let received = 0;
      let truncated = false;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        const room = request.maxResponseBodyBytes - received;
        if (chunk.length > room) {
          if (room > 0) chunks.push(chunk.subarray(0, room));
          received += Math.max(room, 0);
          truncated = true;
          // An endless or huge response must not grow memory: stop reading and drop the socket.
          response.body.destroy();
          break;
        }
        chunks.push(chunk);
        received += chunk.length;
      }
      return {
        status: response.statusCode,
        headers: flatten(response.headers),
        body: Buffer.concat(chunks).toString('utf8'),
        bodyTruncated: truncated,
      };
    } catch (cause) {
      if (timedOut) throw new TransportError(`no complete response within ${request.timeoutMs} ms`, { code: 'timeout', cause });
      if (request.signal?.aborted) throw new TransportError('attempt aborted', { code: 'timeout', cause: request.signal.reason });
      const blocked = blockedCause(cause);
      if (blocked) throw new TransportError(blocked.message, { cause: blocked, code: 'address_blocked' });
      const code = (cause as { code?: string }).code;
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new TransportError(code ? `${code}: ${message}` : message, { cause });
    } finally {
      clearTimeout(deadline);
      attempts?.delete(handle);
    }
  }

  private target(raw: string): Target {
    let target = this.targets.get(raw);
    if (!target) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch (cause) {
        throw new TransportError(`invalid URL ${raw}`, { cause });
      }
      // IP-literal hosts never go through lookup: check them here (names are checked on connect).
      const verdict = this.guard ? checkUrlHost(url, this.guard) : null;
      const blocked =
        verdict && !verdict.allowed ? new AddressBlockedError(verdict.address, verdict.range, { hostname: url.hostname }) : null;
      target = { url, origin: url.origin, path: `${url.pathname}${url.search}`, blocked };
      if (this.targets.size >= 10_000) this.targets.clear();
      this.targets.set(raw, target);
    }
    return target;
  }

  private attemptsOf(signal: AbortSignal): Set<AbortHandle> {
    let attempts = this.inFlight.get(signal);
    if (!attempts) {
      const set = new Set<AbortHandle>();
      attempts = set;
      this.inFlight.set(signal, set);
      signal.addEventListener('abort', () => {
        for (const handle of set) handle.abort(signal.reason);
      }, { once: true });
    }
    return attempts;
  }

  async close(): Promise<void> {
    const dispatchers: Dispatcher[] = [...this.pools.values(), ...this.proxies.values()];
    this.pools.clear();
    this.proxies.clear();
    await Promise.all(dispatchers.map((d) => d.destroy()));
  }

  /**
   * Resolves the target through the guarded lookup and returns the proxy agent and the origin to
   * CONNECT to: the approved IP, with TLS verified against the original name.
   */
  private async viaProxy(url: URL, request: TransportRequest): Promise<{ agent: ProxyAgent; origin: string }> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const address = isIP(host) ? host : await this.resolve(host);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const origin = `${url.protocol}//${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
    const tls = request.tls;
    const key = `${host}\0${tls ? `${tls.rejectUnauthorized}\0${tls.cert ?? ''}\0${tls.key ?? ''}\0${tls.ca ?? ''}` : ''}`;
    let agent = this.proxies.get(key);
    if (!agent) {
      agent = new ProxyAgent({
        uri: this.proxy!,
        keepAliveTimeout: this.keepAliveTimeout,
        requestTls: {
          // The connection goes to an IP: SNI and certificate verification use the original name.
          ...(isIP(host) ? {} : { servername: host }),
          ...(tls?.cert ? { cert: tls.cert } : {}),
          ...(tls?.key ? { key: tls.key } : {}),
          ...(tls?.ca ? { ca: tls.ca } : {}),
          ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
        },
      });
      this.proxies.set(key, agent);
    }
    return { agent, origin };
  }

  /** One address for a name, through the guard (which rejects blocked answers). */
  private resolve(hostname: string): Promise<string> {
    const lookup = this.lookup ?? (dnsLookup as unknown as LookupFunction);
    return new Promise((resolve, reject) => {
      lookup(hostname, { all: true }, (error, addresses) => {
        const first = Array.isArray(addresses) ? addresses[0]?.address : (addresses as unknown as string);
        if (error || !first) reject(error ?? new Error(`${hostname} did not resolve`));
        else resolve(first);
      });
    });
  }

  /** The pool for an origin and TLS identity (a client certificate must never be reused for another). */
  private pool(origin: string, tls: TransportRequest['tls']): Pool {
    const key = tls
      ? `${origin}\0${tls.rejectUnauthorized}\0${tls.cert ?? ''}\0${tls.key ?? ''}\0${tls.ca ?? ''}`
      : origin;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        ...(this.connections !== null ? { connections: this.connections } : {}),
        keepAliveTimeout: this.keepAliveTimeout,
        connect: {
          ...(this.lookup ? { lookup: this.lookup } : {}),
          ...(tls?.cert ? { cert: tls.cert } : {}),
          ...(tls?.key ? { key: tls.key } : {}),
          ...(tls?.ca ? { ca: tls.ca } : {}),
          ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
        },
      });
      this.pools.set(key, pool);
    }
    return pool;
  }
}
