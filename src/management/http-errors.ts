/**
 * HTTP errors of the management API and the mapping of library errors onto them. Every error
 * answer is `{ error: { code, message, field } }`, plus `issues: [{ field, message }]` listing
 * every problem of a 422; field names are the API's (snake_case), never the dispatcher's (`url`,
 * `triggers`), so clients can point at the input they sent.
 *
 * @module
 */
import type { z } from 'zod';
import { WebhookError, WebhookValidationError, type ValidationIssue } from '../errors.js';

/** Codes the management API answers with, besides the library's {@link WebhookError} codes. */
export type ManagementErrorCode =
  | 'malformed_json'
  | 'malformed_request'
  | 'request_aborted'
  | 'forbidden'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'not_implemented'
  | 'internal_error';

/** One problem of a 422 answer, in API field names. */
export interface HttpIssue {
  field: string | null;
  message: string;
}

/** An error that already knows its HTTP answer. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly headers: Record<string, string> = {},
    /** Every problem, for validation answers (the first is `field`). */
    readonly issues: readonly HttpIssue[] | null = null,
  ) {
    super(message);
  }
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  // Answers can carry secrets: keep them out of shared and browser caches.
  'cache-control': 'no-store',
};

/** A JSON answer with the API's headers. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** The answer of an {@link HttpError}: `{ error: { code, message, field, issues? } }`. */
export function errorResponse(error: HttpError): Response {
  const body = {
    error: { code: error.code, message: error.message, field: error.field, ...(error.issues ? { issues: error.issues } : {}) },
  };
  return jsonResponse(error.status, body, error.headers);
}

/** Dispatcher field names → API field names (first path segment). */
const FIELD_NAMES: Record<string, string> = {
  url: 'endpoint',
  triggers: 'event_code',
  entity: 'event_code',
  event: 'event_code',
  gracePeriodMs: 'grace_period_ms',
  deliveryId: 'delivery_id',
  webhookId: 'webhook_id',
  id: 'webhook_id',
  tenantId: 'organization_id',
};

/** Keys whose path below the first segment is meaningful to the client (`headers.X-Foo`), kept verbatim. */
const KEEP_SUBPATH = new Set(['headers', 'data', 'metadata', 'payloadSample']);
/** Keys whose sub-fields the API spells in snake_case (`payload.mimeType` → `payload.mime_type`). */
const SNAKE_SUBPATH = new Set(['payload', 'basicAuth', 'tls', 'retry', 'rateLimit', 'uniqueQueueItems']);

/** `retryOn4xx` → `retry_on_4xx`, `basicAuth` → `basic_auth`. */
const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/([a-z])([0-9])/g, '$1_$2');

/** A dispatcher field path in API terms: `url` → `endpoint`, `triggers.0.entity` → `event_code`, `basicAuth.password` → `basic_auth.password`. */
export function apiFieldName(path: string): string {
  if (path === '') return '';
  const [head = '', ...rest] = path.split('.');
  const mapped = FIELD_NAMES[head] ?? snakeCase(head);
  if (rest.length === 0) return mapped;
  if (KEEP_SUBPATH.has(head)) return [mapped, ...rest].join('.');
  if (SNAKE_SUBPATH.has(head)) return [mapped, ...rest.map(snakeCase)].join('.');
  return mapped;
}

/**
 * Webhook input fields a dispatcher message may name in its text (`conflicts with basicAuth`,
 * `clientCertificate and clientKey must be given together`): said in the API's names instead.
 * Only fields of the webhook input: option names such as `allowPrivateNetworks` are the server's
 * and stay as they are.
 */
const MESSAGE_NAMES = [
  'basicAuth',
  'clientCertificate',
  'clientKey',
  'rejectUnauthorized',
  'uniqueQueueItems',
  'keyPath',
  'rateLimit',
  'perSecond',
  'payloadMode',
  'payloadSample',
  'secretEncoding',
  'mimeType',
  'maxAttempts',
  'initialDelayMs',
  'maxDelayMs',
  'retryOn4xx',
  'honorRetryAfter',
  'gracePeriodMs',
];
const MESSAGE_NAME_PATTERN = new RegExp(`\\b(?:${MESSAGE_NAMES.join('|')})\\b`, 'g');

/** A dispatcher message with the webhook input's field names in API spelling. */
export function apiMessage(message: string): string {
  return message.replace(MESSAGE_NAME_PATTERN, (name) => snakeCase(name));
}

/** The 422 answer of a dispatcher validation error, in API field names and without the method context. */
export function fromValidationError(error: WebhookValidationError): HttpError {
  const issues = error.issues.map((issue) => ({ path: apiFieldName(issue.path), message: apiMessage(issue.message) }));
  return validationHttpError(issues);
}

/**
 * The 422 answer of a failed zod parse of API input (already in API names). `hints` replaces the
 * generic "is not a known field" for keys worth explaining (e.g. `secret` on PATCH).
 */
export function fromZodError(error: z.ZodError, hints: Record<string, string> = {}): HttpError {
  const issues: ValidationIssue[] = error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: hints[key] ?? 'is not a known field' }));
    }
    return [{ path: path.join('.'), message: issue.message }];
  });
  return validationHttpError(issues);
}

function validationHttpError(issues: readonly ValidationIssue[]): HttpError {
  const message = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ') || 'invalid input';
  const listed = issues.map((i) => ({ field: i.path || null, message: i.message }));
  return new HttpError(422, 'invalid_input', message, issues[0]?.path || null, {}, listed.length > 0 ? listed : [{ field: null, message }]);
}

/** A generic 500 that reveals nothing about the cause. */
export function internalError(): HttpError {
  return new HttpError(500, 'internal_error', 'internal error; the server log has the details');
}

/**
 * Maps anything a route threw onto its HTTP answer. Library errors use their `code`; everything
 * unexpected becomes a generic 500 (returned as `null` so the caller reports the cause).
 */
export function toHttpError(error: unknown): HttpError | null {
  if (error instanceof HttpError) return error;
  if (error instanceof WebhookValidationError) return fromValidationError(error);
  if (!(error instanceof WebhookError)) return null;
  switch (error.code) {
    case 'webhook_not_found':
      return new HttpError(404, error.code, 'webhook not found', 'webhook_id');
    case 'delivery_not_found':
      return new HttpError(404, error.code, 'delivery not found', 'delivery_id');
    case 'payload_too_large':
      return new HttpError(413, error.code, error.message, 'data');
    case 'template_syntax':
    case 'template_render':
      return new HttpError(422, error.code, error.message, 'payload.template', {}, [{ field: 'payload.template', message: error.message }]);
    case 'dispatcher_closed':
      return new HttpError(503, error.code, 'the webhook service is shutting down; retry shortly', null, { 'retry-after': '5' });
    default:
      // Storage, transport and lease errors are internal: their messages may name hosts or tables.
      return null;
  }
}
