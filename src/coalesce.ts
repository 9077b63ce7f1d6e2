/**
 * Keys for unique queue items (ShopCtrl's "queue items must be unique"): deliveries of one webhook
 * with the same key coalesce while they wait, so ten quick edits of an order send its latest state once.
 *
 * @module
 */

/** `purchase_order` → `PurchaseOrderId`: the id field the ShopCtrl payloads use per entity. */
function defaultIdField(entity: string): string {
  return (
    entity
      .split(/[^A-Za-z0-9]+/)
      .filter(Boolean)
      .map((part) => part[0]!.toUpperCase() + part.slice(1))
      .join('') + 'Id'
  );
}

// Parsed per emit and webhook otherwise; the few distinct paths and entities are remembered.
// Bounded (cleared when full) since entity names come from the host's emits.
const MAX_CACHED = 1_000;
const pathSegments = new Map<string, readonly string[]>();
const idFields = new Map<string, string>();

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(key, value);
  return value;
}

/** Reads a dotted path with own properties only (no prototype walk). */
export function readPath(data: unknown, path: string): unknown {
  let value: unknown = data;
  const segments = pathSegments.get(path) ?? remember(pathSegments, path, path.replace(/\[(\d+)\]/g, '.$1').split('.'));
  for (const segment of segments) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/**
 * The coalescing key of an emitted record: the value at `keyPath`, or by default at
 * `<Entity>Id` (`OrderId` for `order`), `id` or `Id`. Null when the record has no usable key,
 * in which case the emit is not coalesced.
 */
export function coalesceKeyFor(entity: string, data: unknown, keyPath: string | null): string | null {
  const candidates = keyPath ? [keyPath] : [idFields.get(entity) ?? remember(idFields, entity, defaultIdField(entity)), 'id', 'Id'];
  for (const path of candidates) {
    const value = readPath(data, path);
    if (typeof value === 'string' && value.length > 0 && value.length <= 200) return `${entity}:${value}`;
    if (typeof value === 'number' && Number.isFinite(value)) return `${entity}:${value}`;
  }
  return null;
}
