/**
 * The HTTP sending seam. The dispatcher builds the complete request (body, signed headers) and a
 * transport only moves bytes: swap it to send through a proxy, a different client, or a fake.
 *
 * @module
 */

/** A fully built request. The transport must not follow redirects. */
export interface TransportRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  /** Overall deadline for connect + request + response, in ms. */
  timeoutMs: number;
  /** Read at most this many bytes of the response body, then stop reading. */
  maxResponseBodyBytes: number;
  /** Aborts the attempt (shutdown). */
  signal?: AbortSignal;
  /** Per-webhook TLS: client certificate (mTLS), trusted CAs, and verification (on unless disabled). */
  tls?: {
    cert?: string;
    key?: string;
    ca?: string;
    rejectUnauthorized: boolean;
  };
}

/** What the endpoint answered. Any status is a response; only failures to get one throw. */
export interface TransportResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Body decoded as UTF-8, at most `maxResponseBodyBytes` bytes. */
  body: string;
  /** True when the body was longer than the cap and was cut. */
  bodyTruncated: boolean;
}

/**
 * Sends one HTTP request. Throws a `TransportError` (code `transport_error`, `timeout` or
 * `address_blocked`) when no response was received.
 */
export interface Transport {
  send(request: TransportRequest): Promise<TransportResponse>;
  /** Closes pooled connections. */
  close?(): Promise<void>;
}
