/**
 * The default transport: undici pools for speed, and node:http whenever an HTTP interceptor
 * (msw, nock, @mswjs/interceptors) is active, so hosts' tests intercept deliveries with no setup.
 * The check is made per request, so an interceptor installed after the dispatcher was created is
 * still honoured, and one removed again gives the fast path back.
 *
 * How an interceptor is recognised, without reading any function's source text:
 *
 * 1. @mswjs/interceptors (which msw and nock 14+ are built on) keeps its applied ClientRequest
 *    interceptor on `globalThis[Symbol.for('client-request-interceptor')]` from `apply()` to
 *    `dispose()`, whichever copy of the library installed it.
 * 2. `http.request`, `https.request` and `http.ClientRequest` are no longer the functions this module
 *    saw when it was loaded: something replaced Node's client later (nock, a hand-made wrapper).
 * 3. Already at load, `http.ClientRequest` is not Node's own class (Node's extends `OutgoingMessage`
 *    directly; nock's replacement subclasses it), or a client function is a `Proxy`: an interceptor
 *    installed before this module was imported.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import { types } from 'node:util';
import type { AddressGuardOptions } from './address-guard.js';
import { NodeHttpTransport } from './node-http.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';
import { UndiciTransport } from './undici.js';

/** Where @mswjs/interceptors registers its applied ClientRequest interceptor (see `Interceptor.apply`). */
const CLIENT_REQUEST_INTERCEPTOR = Symbol.for('client-request-interceptor');

/** Node's HTTP client as this module found it. */
const atLoad = { httpRequest: http.request, httpsRequest: https.request, clientRequest: http.ClientRequest };

/** Node's own ClientRequest extends OutgoingMessage directly (a documented relationship). */
function isNodeClientRequest(candidate: unknown): boolean {
  return (
    typeof candidate === 'function' &&
    !types.isProxy(candidate) &&
    Object.getPrototypeOf((candidate as { prototype: unknown }).prototype) === http.OutgoingMessage.prototype
  );
}

/** An interceptor was already in place when this module loaded (signal 3 above). */
const interceptedAtLoad =
  !isNodeClientRequest(atLoad.clientRequest) || types.isProxy(atLoad.httpRequest) || types.isProxy(atLoad.httpsRequest);

/**
 * True when something intercepts Node's HTTP client (see the module comment). Costs a global
 * lookup and three identity comparisons: it is asked on every request.
 *
 * Internal: not part of any entry point.
 */
export function isHttpIntercepted(): boolean {
  if ((globalThis as Record<symbol, unknown>)[CLIENT_REQUEST_INTERCEPTOR] !== undefined) return true;
  if (http.request !== atLoad.httpRequest || https.request !== atLoad.httpsRequest || http.ClientRequest !== atLoad.clientRequest) {
    return true;
  }
  return interceptedAtLoad;
}

/** Options of {@link AutoTransport}. */
export interface AutoTransportOptions {
  /** The outbound address guard for both paths (on by default). */
  addressGuard?: AddressGuardOptions | false;
  /** Send through this HTTP(S) proxy (undici path; see {@link UndiciTransport}). */
  proxy?: string;
  /** Most connections per origin on the undici path (see `UndiciTransportOptions.connectionsPerOrigin`). */
  connectionsPerOrigin?: number;
}

/** undici normally; node:http while an HTTP interceptor is active. */
export class AutoTransport implements Transport {
  readonly #fast: UndiciTransport;
  readonly #addressGuard: AddressGuardOptions | false | undefined;
  #interceptable: NodeHttpTransport | null = null;

  constructor(options: AutoTransportOptions = {}) {
    this.#addressGuard = options.addressGuard;
    this.#fast = new UndiciTransport({
      ...(options.addressGuard === undefined ? {} : { addressGuard: options.addressGuard }),
      ...(options.proxy ? { proxy: options.proxy } : {}),
      ...(options.connectionsPerOrigin ? { connectionsPerOrigin: options.connectionsPerOrigin } : {}),
    });
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    if (!isHttpIntercepted()) return this.#fast.send(request);
    this.#interceptable ??= new NodeHttpTransport(this.#addressGuard === undefined ? {} : { addressGuard: this.#addressGuard });
    return this.#interceptable.send(request);
  }

  async close(): Promise<void> {
    await Promise.all([this.#fast.close(), this.#interceptable?.close()]);
  }
}
