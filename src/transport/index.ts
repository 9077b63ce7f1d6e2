/**
 * `webhook-dispatcher/transport`: choosing or writing the HTTP client that sends deliveries.
 *
 * The dispatcher's default ({@link AutoTransport}) is right for almost every host: undici pools,
 * and node:http while msw or nock intercepts. Import from here to force one client
 * (`transport: new NodeHttpTransport()`), to tune one, or to write your own {@link Transport}:
 * a transport on another client must keep the outbound address guard, with {@link checkUrlHost}
 * for IP-literal hosts and {@link createGuardedLookup} for names (see `docs/security.md`), and must
 * not follow redirects.
 *
 * @module
 */
export { AutoTransport } from './auto.js';
export type { AutoTransportOptions } from './auto.js';
export { UndiciTransport } from './undici.js';
export type { UndiciTransportOptions } from './undici.js';
export { NodeHttpTransport } from './node-http.js';
export type { NodeHttpTransportOptions } from './node-http.js';
export { checkUrlHost, createGuardedLookup } from './address-guard.js';
export type { AddressGuardOptions, AddressVerdict } from './address-guard.js';
export type { Transport, TransportRequest, TransportResponse } from './types.js';
