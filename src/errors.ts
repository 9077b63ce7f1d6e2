/**
 * Named error classes. Every error the library throws carries a stable machine-readable `code`
 * and, where another error caused it, the standard `cause`.
 *
 * @module
 */

/** Stable codes of every error this library throws. */
export type WebhookErrorCode =
  | 'invalid_input'
  | 'webhook_not_found'
  | 'delivery_not_found'
  | 'dispatcher_closed'
  | 'template_syntax'
  | 'template_render'
  | 'payload_too_large'
  | 'address_blocked'
  | 'transport_error'
  | 'timeout'
  | 'response_too_large'
  | 'storage_error'
  | 'schema_mismatch'
  | 'lease_lost'
  | 'transform_error'
  | VerificationErrorCode;

/** Base class: `instanceof WebhookError` catches everything this library throws on purpose. */
export class WebhookError extends Error {
  override readonly name: string = 'WebhookError';
  readonly code: WebhookErrorCode;

  constructor(code: WebhookErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** One problem found while validating input: the dotted path of the field and what is wrong. */
export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `triggers.0.entity` (empty for the whole value). */
  path: string;
  message: string;
}

/** Input to a public method failed validation. The message names every offending field. */
export class WebhookValidationError extends WebhookError {
  override readonly name = 'WebhookValidationError';
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[], options?: { cause?: unknown; context?: string }) {
    const detail = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    super('invalid_input', options?.context ? `${options.context}: ${detail}` : detail, options);
    this.issues = issues;
  }

  /** The first offending field's path, handy for APIs that report a single `field`. */
  get field(): string | undefined {
    return this.issues[0]?.path;
  }
}

/** No webhook with that id (or it belongs to another tenant). */
export class WebhookNotFoundError extends WebhookError {
  override readonly name = 'WebhookNotFoundError';
  constructor(readonly webhookId: string) {
    super('webhook_not_found', `webhook ${webhookId} not found`);
  }
}

/** No delivery with that id. */
export class DeliveryNotFoundError extends WebhookError {
  override readonly name = 'DeliveryNotFoundError';
  constructor(readonly deliveryId: string) {
    super('delivery_not_found', `delivery ${deliveryId} not found`);
  }
}

/** The dispatcher was closed; it accepts no more work. */
export class DispatcherClosedError extends WebhookError {
  override readonly name = 'DispatcherClosedError';
  constructor() {
    super('dispatcher_closed', 'the dispatcher is closed');
  }
}

/** A merge-field template could not be parsed. `line` and `column` are 1-based. */
export class TemplateSyntaxError extends WebhookError {
  override readonly name = 'TemplateSyntaxError';
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
    options?: { cause?: unknown },
  ) {
    super('template_syntax', `${message} (line ${line}, column ${column})`, options);
  }
}

/** A template parsed but its output is unusable (invalid JSON/XML, too large, too deep). */
export class TemplateRenderError extends WebhookError {
  override readonly name = 'TemplateRenderError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('template_render', message, options);
  }
}

/** A payload exceeds the configured size limit. */
export class PayloadTooLargeError extends WebhookError {
  override readonly name = 'PayloadTooLargeError';
  constructor(
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super('payload_too_large', `payload is ${sizeBytes} bytes, over the limit of ${limitBytes} bytes`);
  }
}

/** The outbound address guard refused the destination (private, loopback, metadata, …). */
export class AddressBlockedError extends WebhookError {
  override readonly name = 'AddressBlockedError';
  constructor(
    readonly address: string,
    readonly range: string,
    options?: { cause?: unknown; hostname?: string },
  ) {
    const host = options?.hostname && options.hostname !== address ? `${options.hostname} (${address})` : address;
    super(
      'address_blocked',
      `delivery to ${host} blocked: address is in the ${range} range; allow it with allowPrivateNetworks or allowedCidrs`,
      options,
    );
  }
}

/** The HTTP request could not be completed (connection refused, reset, TLS failure, …). */
export class TransportError extends WebhookError {
  override readonly name = 'TransportError';
  constructor(
    message: string,
    options?: { cause?: unknown; code?: 'transport_error' | 'timeout' | 'response_too_large' | 'address_blocked' },
  ) {
    super(options?.code ?? 'transport_error', message, options);
  }
}

/** The storage adapter failed. The original driver error is the `cause`. */
export class StorageError extends WebhookError {
  override readonly name = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage_error', message, options);
  }
}

/**
 * The database's schema is not the one this code was written for: older (call `migrate()`), or
 * newer (another process runs a later version of the library: upgrade this one before it claims).
 * Raised by a durable adapter's first call after it finds out; nothing is read or written.
 */
export class SchemaMismatchError extends WebhookError {
  override readonly name = 'SchemaMismatchError';
  constructor(
    message: string,
    /** The version the database is at (0 when it has no schema yet). */
    readonly databaseVersion: number,
    /** The version this code expects. */
    readonly expectedVersion: number,
  ) {
    super('schema_mismatch', message);
  }
}

/** Codes of {@link WebhookVerificationError}. */
export type VerificationErrorCode =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'invalid_signature'
  | 'invalid_secret';

/** A received webhook failed signature verification. Receivers answer 400/401 on this. */
export class WebhookVerificationError extends WebhookError {
  override readonly name = 'WebhookVerificationError';
  declare readonly code: VerificationErrorCode;
  constructor(code: VerificationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
