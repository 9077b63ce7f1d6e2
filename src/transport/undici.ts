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
import { parseInput } from '../input/parse.js';
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
   * unlimited, as undici. The dispatcher sets its `perOriginConcurrency`: without a cap undici
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

/** Joins repeated headers; undici's own object is kept when every value is a single string (the common case). */
function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  let simple = true;
  for (const name in headers) {
    if (typeof headers[name] !== 'string') {
      simple = false;
      break;
    }
  }
  if (simple) return headers as Record<string, string>;
  const result: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) result[name] = typeof value === 'string' ? value : value.join(', ');
  }
  return result;
}

/** Why an exchange was cut short by us rather than failing on its own. */
type StopReason = { kind: 'deadline' } | { kind: 'shutdown'; reason: unknown } | { kind: 'truncated' };

/**
 * One request on undici's low-level `dispatch` API, which is the handler and the promise's
 * settlement at once: no response stream, no body mixin and no AbortSignal per attempt (cheaper
 * than `request()`, measured in an earlier session: bench/README.md, "Earlier sessions"). It
 * reads at most the cap, and settles exactly once: at the end of the response, on an error, or
 * at once when the deadline or shutdown stops it (even while the request still waits in the pool
 * for a connection).
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private stopped: StopReason | null = null;
  private settled = false;
  private status = 0;
  private headers: Record<string, string> = {};
  private chunks: Buffer[] = [];
  private received = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly request: TransportRequest,
    private readonly resolve: (response: TransportResponse) => void,
    private readonly reject: (error: TransportError) => void,
    /** The attempts in flight under the same shutdown signal: this one leaves it when settled. */
    private readonly attempts: Set<Exchange> | null,
  ) {
    this.timer = setTimeout(() => this.stop({ kind: 'deadline' }), request.timeoutMs);
  }

  /** Ends the exchange now (deadline, shutdown, or the response cap reached). */
  stop(reason: StopReason): void {
    if (this.settled || this.stopped) return;
    this.stopped = reason;
    // Settle first: undici reports the abort back synchronously, as an error.
    if (reason.kind === 'truncated') this.succeed(true);
    else this.fail(null);
    // Before a connection is assigned there is no controller yet: onRequestStart aborts then.
    this.controller?.abort(new Error(reason.kind));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.stopped) controller.abort(new Error(this.stopped.kind));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.status = statusCode;
    this.headers = flatten(headers);
    // A fresh array only when an earlier response start left something: usually none did.
    if (this.chunks.length > 0) this.chunks = [];
    this.received = 0;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.stopped) return;
    const room = this.request.maxResponseBodyBytes - this.received;
    if (chunk.length > room) {
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.received += Math.max(room, 0);
      // An endless or huge response must not grow memory: stop reading and drop the socket.
      this.stop({ kind: 'truncated' });
      return;
    }
    this.chunks.push(chunk);
    this.received += chunk.length;
  }

  onResponseEnd(): void {
    this.succeed(false);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error);
  }

  private succeed(truncated: boolean): void {
    if (this.settled) return;
    this.settle();
    const { chunks } = this;
    const body = chunks.length === 0 ? '' : chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, this.received).toString('utf8');
    this.resolve({ status: this.status, headers: this.headers, body, bodyTruncated: truncated });
  }

  /** Fails with the stop reason when there is one, else with `cause` classified. */
  fail(cause: unknown): void {
    if (this.settled) return;
    this.settle();
    const stopped = this.stopped;
    if (stopped?.kind === 'deadline') {
      this.reject(new TransportError(`no complete response within ${this.request.timeoutMs} ms`, { code: 'timeout', cause }));
    } else if (stopped?.kind === 'shutdown') {
      this.reject(new TransportError('attempt aborted', { code: 'timeout', cause: stopped.reason }));
    } else {
      this.reject(transportErrorOf(cause));
    }
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.attempts?.delete(this);
  }
}

function transportErrorOf(cause: unknown): TransportError {
  const blocked = blockedCause(cause);
  if (blocked) return new TransportError(blocked.message, { cause: blocked, code: 'address_blocked' });
  const code = (cause as { code?: string } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new TransportError(code ? `${code}: ${message}` : message, { cause });
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
  readonly #pools = new Map<string, Pool>();
  readonly #guard: AddressGuardOptions | null;
  readonly #lookup: LookupFunction | undefined;
  readonly #keepAliveTimeout: number;
  readonly #connections: number | null;
  readonly #proxy: string | null;
  readonly #proxies = new Map<string, ProxyAgent>();
  /** Parsed URL, its origin and path, and the IP-literal guard verdict per URL string: endpoints repeat, parsing need not. */
  readonly #targets = new Map<string, Target>();
  /** Attempts in flight per shutdown signal: one listener on the signal, not one per attempt. */
  readonly #inFlight = new WeakMap<AbortSignal, Set<Exchange>>();

  constructor(options: UndiciTransportOptions = {}) {
    parseInput(scalarOptionsSchema, options, 'UndiciTransport');
    this.#proxy = options.proxy ?? null;
    this.#guard = options.addressGuard === false ? null : (options.addressGuard ?? {});
    this.#lookup = this.#guard ? createGuardedLookup(this.#guard, options.lookup) : options.lookup;
    this.#keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
    this.#connections = options.connectionsPerOrigin ?? null;
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    let target: Target;
    try {
      target = this.#target(request.url);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (target.blocked) {
      return Promise.reject(new TransportError(target.blocked.message, { cause: target.blocked, code: 'address_blocked' }));
    }
    return new Promise<TransportResponse>((resolve, reject) => {
      const signal = request.signal;
      const attempts = signal ? this.#attemptsOf(signal) : null;
      const exchange = new Exchange(request, resolve, reject, attempts);
      attempts?.add(exchange);
      if (signal?.aborted) {
        exchange.stop({ kind: 'shutdown', reason: signal.reason });
        return;
      }
      const { url, origin, path } = target;
      const options = {
        path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        // The exchange's own deadline is the authority; these only must not fire first.
        headersTimeout: request.timeoutMs + 1_000,
        bodyTimeout: request.timeoutMs + 1_000,
      };
      if (!this.#proxy) {
        this.#dispatch(this.#pool(origin, request.tls), options, exchange);
        return;
      }
      this.#viaProxy(url, request).then(
        (via) => this.#dispatch(via.agent, { ...options, origin: via.origin, headers: { ...request.headers, host: url.host } }, exchange),
        (error: unknown) => exchange.fail(error),
      );
    });
  }

  #dispatch(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, exchange: Exchange): void {
    try {
      dispatcher.dispatch(options, exchange);
    } catch (error) {
      exchange.fail(error);
    }
  }

  #target(raw: string): Target {
    let target = this.#targets.get(raw);
    if (!target) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch (cause) {
        throw new TransportError(`invalid URL ${raw}`, { cause });
      }
      // IP-literal hosts never go through lookup: check them here (names are checked on connect).
      const verdict = this.#guard ? checkUrlHost(url, this.#guard) : null;
      const blocked =
        verdict && !verdict.allowed ? new AddressBlockedError(verdict.address, verdict.range, { hostname: url.hostname }) : null;
      target = { url, origin: url.origin, path: `${url.pathname}${url.search}`, blocked };
      if (this.#targets.size >= 10_000) this.#targets.clear();
      this.#targets.set(raw, target);
    }
    return target;
  }

  #attemptsOf(signal: AbortSignal): Set<Exchange> {
    let attempts = this.#inFlight.get(signal);
    if (!attempts) {
      const set = new Set<Exchange>();
      attempts = set;
      this.#inFlight.set(signal, set);
      signal.addEventListener('abort', () => {
        for (const exchange of [...set]) exchange.stop({ kind: 'shutdown', reason: signal.reason });
      }, { once: true });
    }
    return attempts;
  }

  async close(): Promise<void> {
    const dispatchers: Dispatcher[] = [...this.#pools.values(), ...this.#proxies.values()];
    this.#pools.clear();
    this.#proxies.clear();
    await Promise.all(dispatchers.map((d) => d.destroy()));
  }

  /**
   * Resolves the target through the guarded lookup and returns the proxy agent and the origin to
   * CONNECT to: the approved IP, with TLS verified against the original name.
   */
  async #viaProxy(url: URL, request: TransportRequest): Promise<{ agent: ProxyAgent; origin: string }> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const address = isIP(host) ? host : await this.#resolve(host);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const origin = `${url.protocol}//${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
    const tls = request.tls;
    const key = `${host}\0${tls ? `${tls.rejectUnauthorized}\0${tls.cert ?? ''}\0${tls.key ?? ''}\0${tls.ca ?? ''}` : ''}`;
    let agent = this.#proxies.get(key);
    if (!agent) {
      agent = new ProxyAgent({
        uri: this.#proxy!,
        keepAliveTimeout: this.#keepAliveTimeout,
        requestTls: {
          // The connection goes to an IP: SNI and certificate verification use the original name.
          ...(isIP(host) ? {} : { servername: host }),
          ...(tls?.cert ? { cert: tls.cert } : {}),
          ...(tls?.key ? { key: tls.key } : {}),
          ...(tls?.ca ? { ca: tls.ca } : {}),
          ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
        },
      });
      this.#proxies.set(key, agent);
    }
    return { agent, origin };
  }

  /** One address for a name, through the guard (which rejects blocked answers). */
  #resolve(hostname: string): Promise<string> {
    const lookup = this.#lookup ?? (dnsLookup as unknown as LookupFunction);
    return new Promise((resolve, reject) => {
      lookup(hostname, { all: true }, (error, addresses) => {
        const first = Array.isArray(addresses) ? addresses[0]?.address : (addresses as unknown as string);
        if (error || !first) reject(error ?? new Error(`${hostname} did not resolve`));
        else resolve(first);
      });
    });
  }

  /** The pool for an origin and TLS identity (a client certificate must never be reused for another). */
  #pool(origin: string, tls: TransportRequest['tls']): Pool {
    const key = tls
      ? `${origin}\0${tls.rejectUnauthorized}\0${tls.cert ?? ''}\0${tls.key ?? ''}\0${tls.ca ?? ''}`
      : origin;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(origin, {
        ...(this.#connections !== null ? { connections: this.#connections } : {}),
        keepAliveTimeout: this.#keepAliveTimeout,
        connect: {
          ...(this.#lookup ? { lookup: this.#lookup } : {}),
          ...(tls?.cert ? { cert: tls.cert } : {}),
          ...(tls?.key ? { key: tls.key } : {}),
          ...(tls?.ca ? { ca: tls.ca } : {}),
          ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
        },
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }
}
