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
import { AddressBlockedError, TransportError } from '../errors.js';
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
   * Send through this HTTP(S) proxy (`http://proxy.internal:3128`, credentials allowed in the URL).
   * The target name is resolved here, through the guard, and the proxy is asked to CONNECT to
   * exactly that address, so the proxy never resolves it: the guard still applies to the target.
   */
  proxy?: string;
}

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) result[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
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
  private readonly proxy: string | null;
  private readonly proxies = new Map<string, ProxyAgent>();

  constructor(options: UndiciTransportOptions = {}) {
    this.proxy = options.proxy ?? null;
    this.guard = options.addressGuard === false ? null : (options.addressGuard ?? {});
    this.lookup = this.guard ? createGuardedLookup(this.guard, options.lookup) : options.lookup;
    this.keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
  }

  async send(request: TransportRequest): Promise<TransportResponse> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch (cause) {
      throw new TransportError(`invalid URL ${request.url}`, { cause });
    }
    if (this.guard) {
      // IP-literal hosts never go through lookup: check them here.
      const verdict = checkUrlHost(url, this.guard);
      if (verdict && !verdict.allowed) {
        const cause = new AddressBlockedError(verdict.address, verdict.range, { hostname: url.hostname });
        throw new TransportError(cause.message, { cause, code: 'address_blocked' });
      }
    }

    const controller = new AbortController();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, request.timeoutMs);
    const onAbort = () => controller.abort();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) controller.abort();
    try {
      const target = this.proxy ? await this.viaProxy(url, request) : null;
      const dispatcher: Dispatcher = target ? target.agent : this.pool(url, request.tls);
      const response = await dispatcher.request({
        ...(target ? { origin: target.origin } : {}),
        path: `${url.pathname}${url.search}`,
        method: request.method as 'POST',
        headers: target ? { ...request.headers, host: url.host } : request.headers,
        body: request.body,
        signal: controller.signal,
        // The overall deadline above is the authority; these only must not fire first.
        headersTimeout: request.timeoutMs + 1_000,
        bodyTimeout: request.timeoutMs + 1_000,
      });
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
      request.signal?.removeEventListener('abort', onAbort);
    }
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
  private pool(url: URL, tls: TransportRequest['tls']): Pool {
    const key = tls
      ? `${url.origin}\0${tls.rejectUnauthorized}\0${tls.cert ?? ''}\0${tls.key ?? ''}\0${tls.ca ?? ''}`
      : url.origin;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(url.origin, {
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
