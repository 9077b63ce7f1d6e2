/**
 * OpenTelemetry: a client span per attempt, with the semantic HTTP attributes. The library does
 * not import `@opentelemetry/api`: pass your tracer (`trace.getTracer('webhook-dispatcher')`) as
 * the dispatcher's `tracer` option. Without it, nothing is done and nothing is loaded.
 *
 * @module
 */

/** The slice of an OpenTelemetry `Span` this library uses. */
export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(endTime?: number): void;
}

/** The slice of an OpenTelemetry `Tracer` this library uses (`@opentelemetry/api` `Tracer` fits). */
export interface TracerLike {
  startSpan(name: string, options?: { kind?: number; attributes?: Record<string, string | number | boolean>; startTime?: number }): SpanLike;
}

// Values of @opentelemetry/api's SpanKind.CLIENT and SpanStatusCode.ERROR/OK (stable since 1.0).
const SPAN_KIND_CLIENT = 2;
const STATUS_OK = 1;
const STATUS_ERROR = 2;

/** Starts the span of one attempt. The URL is recorded without its query string (it may carry tokens). */
export function startAttemptSpan(
  tracer: TracerLike,
  attempt: { url: string; method: string; webhookId: string; deliveryId: string; attempt: number; entity: string; event: string },
): SpanLike {
  const url = new URL(attempt.url);
  return tracer.startSpan(`${attempt.method} webhook`, {
    kind: SPAN_KIND_CLIENT,
    attributes: {
      'http.request.method': attempt.method,
      'url.full': `${url.origin}${url.pathname}`,
      'url.scheme': url.protocol.slice(0, -1),
      'server.address': url.hostname,
      'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      'http.request.resend_count': attempt.attempt - 1,
      'webhook.id': attempt.webhookId,
      'webhook.message_id': attempt.deliveryId,
      'webhook.entity': attempt.entity,
      'webhook.event': attempt.event,
    },
  });
}

/** Ends an attempt's span with its status code or error. */
export function endAttemptSpan(span: SpanLike, result: { status: number; success: boolean; errorCode: string | null; errorMessage: string | null }): void {
  if (result.status > 0) span.setAttribute('http.response.status_code', result.status);
  if (result.errorCode) span.setAttribute('error.type', result.errorCode);
  else if (!result.success) span.setAttribute('error.type', String(result.status));
  span.setStatus(result.success ? { code: STATUS_OK } : { code: STATUS_ERROR, ...(result.errorMessage ? { message: result.errorMessage } : {}) });
  span.end();
}
