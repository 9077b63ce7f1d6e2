/**
 * How both SQL adapters report a failed call.
 *
 * @module
 */
import { StorageError, WebhookError } from '../../errors.js';

/**
 * The error a call fails with: the library's own errors (validation, schema mismatch, …) as they
 * are, a driver's wrapped in a {@link StorageError} that names the call (`what`) and keeps the
 * driver's error as `cause`, so callers branch on one class whatever the database.
 */
export function storageFailure(what: string, error: unknown): Error {
  if (error instanceof WebhookError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError(`${what} failed: ${message}`, { cause: error });
}
