/**
 * The input of `emit`, the library's hot path: a zod schema for errors and a fast check for the
 * common valid case that gives the same result.
 *
 * @module
 */
import { z } from 'zod';
import { nonEmpty, tenantIdSchema } from './fields.js';
import { parseInput } from './parse.js';

const emitShape = {
  /** The record's entity, e.g. `order`, as in the webhooks' triggers. */
  entity: nonEmpty('entity', 100),
  /** What happened to it, e.g. `Create`, as in the webhooks' triggers. */
  event: nonEmpty('event', 100),
  /** The record: what the payload is rendered from (merge fields, the default payload's `entityData`). */
  data: z.unknown().refine((v) => v !== undefined, 'is required'),
  /** The merchant the record belongs to: only its webhooks (and those without a tenant) match. */
  tenantId: tenantIdSchema.nullish(),
  /** The host's open transaction; the deliveries are written in it (transactional outbox). */
  transaction: z.unknown().optional(),
  /**
   * For webhooks with `ordering: 'entity'`: deliveries with the same key go one at a time, in emit
   * order. Default: the entity and the record's id (`order:1`, the id `uniqueQueueItems` uses).
   */
  orderingKey: nonEmpty('orderingKey', 200).optional(),
};

/** Input of `emit`. */
export const emitSchema: z.ZodObject<typeof emitShape, z.core.$strict> = z.strictObject(emitShape);
/** Input of `emit`: an entity × event and its record. */
export type EmitInput = z.input<typeof emitSchema>;
type ParsedEmitInput = z.output<typeof emitSchema>;

const EMIT_KEYS: ReadonlySet<string> = new Set(Object.keys(emitSchema.shape));

/** A string `nonEmpty(what, max)` accepts, trimmed as it would; undefined when in doubt. */
function fastNonEmpty(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed.length >= 1 && trimmed.length <= max ? trimmed : undefined;
}

/**
 * `parseInput(emitSchema, …)` with a fast path for the common, valid case: a plain object with
 * only known keys and well-formed fields is accepted with the same result zod would give, without
 * zod's per-call overhead (emit is the hot path). Anything else, valid or not, goes through zod,
 * so errors and their messages are exactly zod's.
 */
export function parseEmitInput(input: unknown, context: string): ParsedEmitInput {
  if (typeof input === 'object' && input !== null) {
    const proto: unknown = Object.getPrototypeOf(input);
    if (proto === Object.prototype || proto === null) {
      const record = input as Record<string, unknown>;
      let known = true;
      // for…in, as zod's strict check uses: inherited enumerable keys are unknown keys too.
      for (const key in record) {
        if (!EMIT_KEYS.has(key)) {
          known = false;
          break;
        }
      }
      if (known) {
        const entity = fastNonEmpty(record.entity, 100);
        const event = fastNonEmpty(record.event, 100);
        const { data, tenantId: rawTenant, transaction, orderingKey: rawKey } = record;
        const absent = rawTenant === undefined || rawTenant === null;
        const tenantId = absent ? rawTenant : fastNonEmpty(rawTenant, 200);
        const orderingKey = rawKey === undefined ? undefined : fastNonEmpty(rawKey, 200);
        if (
          entity !== undefined &&
          event !== undefined &&
          data !== undefined &&
          (absent || tenantId !== undefined) &&
          (rawKey === undefined || orderingKey !== undefined)
        ) {
          return orderingKey === undefined ? { entity, event, data, tenantId, transaction } : { entity, event, data, tenantId, transaction, orderingKey };
        }
      }
    }
  }
  return parseInput(emitSchema, input, context);
}

/** Input of `previewPayload`: the event to render. */
export const previewEventSchema = emitSchema.pick({ entity: true, event: true, data: true });
