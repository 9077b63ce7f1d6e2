/**
 * Transport on `node:http` / `node:https` with keep-alive agents.
 *
 * `http.request` is looked up on the module object at call time, never destructured at import:
 * msw (and nock) intercept by replacing it, so deliveries made through this transport are
 * interceptable in a host's tests with no setup.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { AddressBlockedError, TransportError } from '../errors.js';
import { checkUrlHost, createGuardedLookup, type AddressGuardOptions } from './address-guard.js';
import type { Transport, TransportRequest, TransportResponse } from './types.js';

/** Options of {@link NodeHttpTransport}. */
export interface NodeHttpTransportOptions {
  /** Sockets kept per origin. Default: unlimited (the dispatcher caps concurrency per endpoint). */
  maxSockets?: number;
  /**
   * The outbound address guard (SSRF protection), on by default: loopback, private, link-local,
   * metadata and other non-public addresses are refused, checked on the address actually dialled.
   * Pass options to allow some ranges, or `false` to turn it off entirely.
   */
  addressGuard?: AddressGuardOptions | false;
  /** DNS lookup to resolve through (wrapped by the guard when it is on). Default `dns.lookup`. */
  lookup?: LookupFunction;
}

function flattenHeaders(raw: http.IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Sends with Node's built-in HTTP client. Never follows redirects; enforces an overall deadline. */
export class NodeHttpTransport implements Transport {
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #lookup: LookupFunction | undefined;
  readonly #guard: AddressGuardOptions | null;

  constructor(options: NodeHttpTransportOptions = {}) {
    this.#guard = options.addressGuard === false ? null : (options.addressGuard ?? {});
    // The guarded lookup validates every resolved address, and the socket connects to exactly
    // the address it returned: no second resolution for a rebinding DNS server to exploit.
    this.#lookup = this.#guard ? createGuardedLookup(this.#guard, options.lookup) : options.lookup;
    const agentOptions: http.AgentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? Infinity,
      scheduling: 'lifo',
      ...(this.#lookup ? { lookup: this.#lookup } : {}),
    };
    this.#httpAgent = new http.Agent(agentOptions);
    this.#httpsAgent = new https.Agent(agentOptions);
  }

  send(request: TransportRequest): Promise<TransportResponse> {
    return new Promise<TransportResponse>((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(request.url);
      } catch (cause) {
        reject(new TransportError(`invalid URL ${request.url}`, { cause }));
        return;
      }
      if (this.#guard) {
        // Node skips `lookup` for IP-literal hosts, so those are checked here.
        const verdict = checkUrlHost(url, this.#guard);
        if (verdict && !verdict.allowed) {
          const cause = new AddressBlockedError(verdict.address, verdict.range, { hostname: url.hostname });
          reject(new TransportError(cause.message, { cause, code: 'address_blocked' }));
          return;
        }
      }
      const isHttps = url.protocol === 'https:';
      let settled = false;
      const fail = (error: TransportError) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        request.signal?.removeEventListener('abort', onAbort);
        req.destroy();
        reject(error);
      };
      const succeed = (response: TransportResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        request.signal?.removeEventListener('abort', onAbort);
        resolve(response);
      };

      const options: http.RequestOptions = {
        method: request.method,
        headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
        agent: isHttps ? this.#httpsAgent : this.#httpAgent,
      };
      if (this.#lookup) options.lookup = this.#lookup;
      if (isHttps && request.tls) {
        // https.Agent keys its socket pool by these options, so each TLS identity gets its own sockets.
        const tls = options as https.RequestOptions;
        if (request.tls.cert) tls.cert = request.tls.cert;
        if (request.tls.key) tls.key = request.tls.key;
        if (request.tls.ca) tls.ca = request.tls.ca;
        tls.rejectUnauthorized = request.tls.rejectUnauthorized;
      }
      const client = isHttps ? https : http;
      const req = client.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        let truncated = false;
        const finish = () =>
          succeed({
            status: res.statusCode ?? 0,
            headers: flattenHeaders(res.headers),
            body: Buffer.concat(chunks).toString('utf8'),
            bodyTruncated: truncated,
          });
        res.on('data', (chunk: Buffer) => {
          if (truncated) return;
          const room = request.maxResponseBodyBytes - received;
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, Math.max(room, 0)));
            received += Math.max(room, 0);
            truncated = true;
            // Stop reading: an endless or huge response must not grow memory. The socket is not reusable.
            res.destroy();
            finish();
            return;
          }
          chunks.push(chunk);
          received += chunk.length;
        });
        res.on('end', finish);
        res.on('error', (cause) => {
          if (!truncated) fail(new TransportError(`response failed: ${cause.message}`, { cause }));
        });
      });
      req.on('error', (cause: NodeJS.ErrnoException) => {
        if (cause instanceof AddressBlockedError || cause.code === 'address_blocked') {
          fail(new TransportError(cause.message, { cause, code: 'address_blocked' }));
          return;
        }
        fail(new TransportError(cause.code ? `${cause.code}: ${cause.message}` : cause.message, { cause }));
      });
      const deadline = setTimeout(
        () => fail(new TransportError(`no complete response within ${request.timeoutMs} ms`, { code: 'timeout' })),
        request.timeoutMs,
      );
      const onAbort = () => fail(new TransportError('attempt aborted', { code: 'timeout', cause: request.signal?.reason }));
      if (request.signal?.aborted) {
        onAbort();
        return;
      }
      request.signal?.addEventListener('abort', onAbort, { once: true });
      req.end(request.body);
    });
  }

  async close(): Promise<void> {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
