/**
 * Finds the merge fields a template names that its triggers' entities are not known to have, so
 * `{{order.Totl}}` is reported when the webhook is saved instead of rendering empty forever.
 *
 * What counts as known, per trigger: with a sample record given at save, every path in it; without
 * one, the entity's `entityData` fields (registered with `entityFields`, or ShopCtrl's table) and
 * anything beneath them (nested shapes are not declared anywhere). `meta.*` has a fixed set of
 * names. Triggers on any entity (`'*'`) cannot be checked beyond `meta`.
 *
 * @module
 */
import type { EntityFieldRegistry } from '../entity-fields.js';
import { listMergeFieldsOf } from './fields.js';
import { templateContext } from '../payload.js';
import type { Trigger } from '../storage/types.js';

/** Something worth the merchant's attention in a saved webhook, not serious enough to refuse it. */
export interface SaveWarning {
  /** The input field it concerns, e.g. `payload.template`. */
  field: string;
  /** The merge field it is about, when it is about one. */
  mergeField?: string;
  message: string;
}

/** The names `{{meta.…}}` offers (see `templateContext`). */
const META_FIELDS = ['meta.id', 'meta.entity', 'meta.event', 'meta.timestamp', 'meta.tenantId', 'meta.webhookId', 'meta.sequence'];

/** Explicit indexes (`Lines[0]`) name the same field as the element path (`Lines[]`). */
const normalise = (path: string): string => path.replace(/\[\d+\]/g, '[]');

/**
 * Warnings for every merge field of `fields` (a compiled template's paths) that no trigger's
 * entity is known to have, with the closest known name when one is near.
 */
export function unknownMergeFields(
  fields: readonly string[],
  triggers: readonly Trigger[],
  registry: EntityFieldRegistry,
  sample: unknown,
): SaveWarning[] {
  const known = new Set<string>(META_FIELDS);
  /** Paths under which anything is accepted: a declared field's nested shape is unknown. */
  const open: string[] = [];
  const roots = new Set<string>(['meta']);
  let anyEntity = false;
  for (const { entity, event } of triggers) {
    if (entity === '*') {
      anyEntity = true;
      continue;
    }
    roots.add(entity).add('data');
    if (sample !== undefined) {
      const context = templateContext(
        { id: 'evt_sample', entity, event, timestamp: new Date(0).toISOString(), tenantId: null, data: sample },
        'wh_sample',
      );
      for (const info of listMergeFieldsOf(context)) known.add(info.path);
    } else {
      for (const field of registry.fieldsFor(entity, event)) {
        for (const root of [entity, 'data']) {
          known.add(`${root}.${field}`);
          open.push(`${root}.${field}`);
        }
      }
    }
  }
  const warnings: SaveWarning[] = [];
  const reported = new Set<string>();
  for (const raw of fields) {
    const path = normalise(raw);
    const root = /^[^.[]*/.exec(path)![0];
    if (reported.has(path) || path === root) continue;
    if (root !== 'meta' && anyEntity) continue;
    if (known.has(path) || open.some((p) => path.startsWith(`${p}.`) || path.startsWith(`${p}[`))) continue;
    // A container named on the way to a known field (`order.Lines[]` of `order.Lines[].Sku`).
    if ([...known].some((k) => k.startsWith(`${path}.`) || k.startsWith(`${path}[`))) continue;
    reported.add(path);
    warnings.push({ field: 'payload.template', mergeField: raw, message: describe(raw, root, roots, known, sample) });
  }
  return warnings;
}

function describe(field: string, root: string, roots: ReadonlySet<string>, known: ReadonlySet<string>, sample: unknown): string {
  if (!roots.has(root)) {
    return `{{${field}}}: "${root}" is not the entity of any trigger of this webhook; use ${[...roots].map((r) => `${r}.…`).join(', ')}`;
  }
  const closest = nearest(normalise(field), known);
  const hint = closest ? `; did you mean {{${closest}}}?` : '';
  const source = sample !== undefined ? 'the sample record given at save' : 'the entity fields (register more with entityFields, or pass payloadSample)';
  return `{{${field}}} is not a known merge field: not in ${source}${hint}`;
}

/** The known path closest to `path` by edit distance, if within a third of its length. */
function nearest(path: string, known: ReadonlySet<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(path.length / 3)) + 1;
  for (const candidate of known) {
    if (Math.abs(candidate.length - path.length) >= bestDistance) continue;
    const distance = editDistance(path.toLowerCase(), candidate.toLowerCase(), bestDistance);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `limit`) once every path is at least `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return previous[b.length]!;
}
