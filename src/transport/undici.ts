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
import type { LookupFunction } from 'node:net';
import { Pool } from 'undici';
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

  constructor(options: UndiciTransportOptions = {}) {
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
      const response = await this.pool(url, request.tls).request({
        path: `${url.pathname}${url.search}`,
        method: request.method as 'POST',
        headers: request.headers,
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
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
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
