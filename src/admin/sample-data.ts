/**
 * Sample records for the live preview when the host gives none: rebuilt from the merge fields the
 * dispatcher lists for a trigger (`data.OrderCode` with its example value becomes
 * `{ OrderCode: … }`; `data.Lines[].Sku` an array of one line). Only the shape and the examples
 * matter: the preview shows how the template fills in, not real data.
 *
 * @module
 */
import type { MergeFieldInfo } from '../mergefields/fields.js';

const PREFIX = 'data';

function placeholderOf(field: MergeFieldInfo): unknown {
  if (field.example !== undefined) return field.example;
  switch (field.type) {
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'date':
      return new Date(0).toISOString();
    case 'null':
      return null;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return '';
  }
}

/** The record a trigger's merge fields describe (their `data.…` paths), with their example values. */
export function sampleFromMergeFields(fields: readonly MergeFieldInfo[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const field of fields) {
    if (!field.path.startsWith(`${PREFIX}.`)) continue;
    const segments = field.path.slice(PREFIX.length + 1).split('.');
    let node: Record<string, unknown> = root;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      const isArray = segment.endsWith('[]');
      const name = segment.replace(/(\[\])+$/, '');
      const last = i === segments.length - 1;
      if (!Object.hasOwn(node, name) || typeof node[name] !== 'object' || node[name] === null) {
        node[name] = isArray ? [] : last ? placeholderOf(field) : {};
      }
      if (last) break;
      const child = node[name];
      if (Array.isArray(child)) {
        // Element fields describe the first element.
        if (typeof child[0] !== 'object' || child[0] === null) child[0] = {};
        node = child[0] as Record<string, unknown>;
      } else {
        node = child as Record<string, unknown>;
      }
    }
  }
  return root;
}
