/**
 * Discovery of the merge fields available in a data record, for template editors.
 *
 * @module
 */
import { FORBIDDEN_KEYS, getOwn } from './encode.js';
import { parseIsoDate } from './format.js';

/** Deepest nesting listed (a top-level key is depth 1). */
export const MAX_FIELD_DEPTH = 8;
/** Most entries returned. */
export const MAX_FIELD_ENTRIES = 2000;
/** Array elements sampled for element fields. */
const MAX_SAMPLED_ELEMENTS = 20;
/** Longest string example, in UTF-16 code units. */
const MAX_EXAMPLE_LENGTH = 100;

const ADDRESSABLE = /^[\p{L}_$][\p{L}\p{N}_$-]*$/u;
const INDEX = /^(?:0|[1-9]\d*)$/;

function typeOf(v: unknown): MergeFieldType | undefined {
  switch (typeof v) {
    case 'string':
      return parseIsoDate(v) ? 'date' : 'string';
    case 'number':
    case 'bigint':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
      if (v === null) return 'null';
      if (v instanceof Date) return 'date';
      return Array.isArray(v) ? 'array' : 'object';
    default:
      return undefined;
  }
}

function exampleOf(v: unknown): MergeFieldInfo['example'] {
  switch (typeof v) {
    case 'string':
      return v.length > MAX_EXAMPLE_LENGTH ? v.slice(0, MAX_EXAMPLE_LENGTH) : v;
    case 'number':
      return Number.isFinite(v) ? v : undefined;
    case 'bigint':
      return String(v);
    case 'boolean':
      return v;
    case 'object':
      if (v === null) return null;
      if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : undefined;
      return undefined;
    default:
      return undefined;
  }
}

function ownKeys(v: object): string[] {
  try {
    return Object.keys(v);
  } catch {
    return [];
  }
}

function read(obj: object, key: string | number): unknown {
  try {
    return getOwn(obj, key);
  } catch {
    return undefined;
  }
}

/** See `listMergeFieldsOf` in `../mergefields.ts`. */
export function listFields(data: unknown, prefix = ''): MergeFieldInfo[] {
  const out: MergeFieldInfo[] = [];
  const byPath = new Map<string, MergeFieldInfo>();
  const ancestors: object[] = [];

  const join = (base: string, key: string): string => {
    if (INDEX.test(key)) return `${base}[${key}]`;
    return base === '' ? key : `${base}.${key}`;
  };

  const entry = (path: string, value: unknown, depth: number): void => {
    if (depth > MAX_FIELD_DEPTH || out.length >= MAX_FIELD_ENTRIES) return;
    const type = typeOf(value);
    if (type === undefined) return;
    const fullPath = type === 'array' ? `${path}[]` : path;
    const existing = byPath.get(fullPath);
    if (existing === undefined) {
      const info: MergeFieldInfo = { path: fullPath, type };
      const example = exampleOf(value);
      if (example !== undefined) info.example = example;
      byPath.set(fullPath, info);
      out.push(info);
    } else if (existing.type === 'null' && type !== 'null') {
      existing.type = type;
      const example = exampleOf(value);
      if (example === undefined) delete existing.example;
      else existing.example = example;
    }
    if (type === 'object') children(value as object, fullPath, depth);
    else if (type === 'array') elements(value as unknown[], fullPath, depth);
  };

  const enter = (v: object): boolean => {
    if (ancestors.includes(v)) return false;
    ancestors.push(v);
    return true;
  };

  const children = (obj: object, base: string, depth: number): void => {
    if (depth >= MAX_FIELD_DEPTH || !enter(obj)) return;
    for (const key of ownKeys(obj)) {
      if (out.length >= MAX_FIELD_ENTRIES) break;
      if (FORBIDDEN_KEYS.has(key) || !(ADDRESSABLE.test(key) || INDEX.test(key))) continue;
      // `this` and `else` are keywords where a path starts.
      if (base === '' && (key === 'this' || key === 'else')) continue;
      entry(join(base, key), read(obj, key), depth + 1);
    }
    ancestors.pop();
  };

  const elements = (arr: unknown[], base: string, depth: number): void => {
    if (depth >= MAX_FIELD_DEPTH || !enter(arr)) return;
    const length = read(arr, 'length');
    const count = typeof length === 'number' ? Math.min(length, MAX_SAMPLED_ELEMENTS) : 0;
    for (let i = 0; i < count && out.length < MAX_FIELD_ENTRIES; i++) {
      const el = read(arr, i);
      // Element fields sit under `base` (`Lines[]`); nested arrays become `Lines[][]`.
      if (Array.isArray(el)) entry(base, el, depth + 1);
      else if (typeof el === 'object' && el !== null && !(el instanceof Date)) children(el, base, depth);
    }
    ancestors.pop();
  };

  if (typeof data === 'object' && data !== null && !(data instanceof Date)) {
    if (Array.isArray(data)) elements(data, `${prefix}[]`, 0);
    else children(data, prefix, 0);
  }
  return out;
}

/** Types reported by {@link listMergeFieldsOf}. */
export type MergeFieldType = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array' | 'date';

/** One merge field available in a data record. */
export interface MergeFieldInfo {
  /** Template path, e.g. `order.OrderCode`, `order.Lines[]`, `order.Lines[].Sku`. */
  path: string;
  type: MergeFieldType;
  /** The value from the sampled record (strings cut to 100 characters); absent for containers. */
  example?: string | number | boolean | null;
}

/**
 * Lists the merge fields available in one data record: every leaf and container path (arrays as
 * `Lines[]` with their elements' fields as `Lines[].Sku`, sampled from the first 20 elements),
 * with types (ISO-8601 date strings are 'date'), in depth-first order. Bounded (depth 8, 2,000
 * entries), cycle-safe, reads own data properties only, skips `__proto__`/`constructor`/
 * `prototype` and keys a template path cannot address.
 *
 * @param data - a sample event record
 * @param prefix - path prefix, e.g. `'order'` when passing the order itself
 */
export function listMergeFieldsOf(data: unknown, prefix?: string): MergeFieldInfo[] {
  return listFields(data, prefix ?? '');
}
