/**
 * Turning a zod failure into the library's {@link WebhookValidationError}: one issue per field,
 * an unknown key named at its own path.
 *
 * @module
 */
import type { z } from 'zod';
import { WebhookValidationError } from '../errors.js';

/**
 * Parses `value` with `schema`, or throws a {@link WebhookValidationError} whose message names
 * every offending field (`triggers.0.entity: entity must not be empty`).
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, context: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // An unknown key is reported at its own path, so `error.field` names the misspelt option.
  const issues = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'is not a known option' }));
    }
    return [{ path: path.join('.'), message: issue.message }];
  });
  throw new WebhookValidationError(issues, { context, cause: result.error });
}
