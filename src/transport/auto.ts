/**
 * The default transport: undici pools for speed, and node:http whenever an HTTP interceptor
 * (msw, nock, @mswjs/interceptors) is active, so hosts' tests intercept deliveries with no setup.
 * The check is made per request (a cached identity comparison), so an interceptor installed after
 * the dispatcher was created is still honoured.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressGuardOptions } from './address-guard.js';
import { NodeHttpTransport } from './node-http.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';
import { UndiciTransport } from './undici.js';

// msw (through @mswjs/interceptors) registers its interceptors under these global symbols.
const INTERCEPTOR_SYMBOLS = [Symbol.for('client-request-interceptor'), Symbol.for('fetch-interceptor')];

let seenRequest: unknown = null;
let seenHttpsRequest: unknown = null;
let patched = false;

/**
 * Node's own `http.request` / `https.request` are plain functions whose source constructs a
 * `ClientRequest`. A Proxy (msw) prints as native code; a wrapper (nock) has its own source.
 */
function isPristine(fn: unknown): boolean {
  if (typeof fn !== 'function') return false;
  const source = Function.prototype.toString.call(fn);
  return /\bClientRequest\b/.test(source) && !source.includes('[native code]');
}

/**
 * True when something intercepts Node's HTTP client: msw's global marker, or `http.request` /
 * `https.request` replaced (msw installs a Proxy, nock a wrapper; neither has Node's source).
 */
export function isHttpIntercepted(): boolean {
  const g = globalThis as Record<symbol, unknown>;
  if (INTERCEPTOR_SYMBOLS.some((s) => g[s] !== undefined)) return true;
  if (http.request !== seenRequest || https.request !== seenHttpsRequest) {
    seenRequest = http.request;
    seenHttpsRequest = https.request;
    patched = !isPristine(http.request) || !isPristine(https.request);
  }
  return patched;
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
  private readonly fast: UndiciTransport;
  private interceptable: NodeHttpTransport | null = null;

  constructor(private readonly options: AutoTransportOptions = {}) {
    this.fast = new UndiciTransport({
      ...(options.addressGuard === undefined ? {} : { addressGuard: options.addressGuard }),
      ...(options.proxy ? { proxy: options.proxy } : {}),
      ...(options.connectionsPerOrigin ? { connectionsPerOrigin: options.connectionsPerOrigin } : {}),
    });
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    if (!isHttpIntercepted()) return this.fast.send(request);
    this.interceptable ??= new NodeHttpTransport(
      this.options.addressGuard === undefined ? {} : { addressGuard: this.options.addressGuard },
    );
    return this.interceptable.send(request);
  }

  async close(): Promise<void> {
    await Promise.all([this.fast.close(), this.interceptable?.close()]);
  }
}
