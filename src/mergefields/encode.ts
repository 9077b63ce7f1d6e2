/**
 * Safe reading of data and encoding of values for each output context of a merge-field template.
 * Data is only ever read through own data properties (never getters, never inherited members), and
 * never has its methods called (`toJSON` included).
 *
 * @internal
 * @module
 */
import { TemplateRenderError } from '../errors.js';
import { FormattedNumber, isoString } from './format.js';

/** Path segments that never resolve, whatever the data holds. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Maximum nesting the JSON serializer follows; deeper subtrees render as `null`. */
export const MAX_JSON_DEPTH = 64;

const limitErrors = new WeakSet<object>();

/** A TemplateRenderError for an exceeded limit (output size, iterations). */
export function limitError(message: string): TemplateRenderError {
  const err = new TemplateRenderError(message);
  limitErrors.add(err);
  return err;
}

/** True for errors made by {@link limitError}: these abort a render; any other error is data trouble. */
export function isLimitError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && limitErrors.has(err);
}

/**
 * The value of `obj`'s own data property `key`, or undefined. Accessor properties (getters) and
 * inherited properties are never read. Non-objects have no properties.
 */
export function getOwn(obj: unknown, key: string | number): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const d = Object.getOwnPropertyDescriptor(obj, key);
  return d === undefined ? undefined : d.value;
}

const HAS_LINE_SEPARATOR = /[\u2028\u2029]/;
const LINE_SEPARATORS = /[\u2028\u2029]/g;
const escapeSeparator = (c: string): string => (c === '\u2028' ? '\\u2028' : '\\u2029');

// Characters JSON.stringify escapes (plus U+2028/U+2029 and surrogates, which take the slow path).
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
const JSON_NEEDS_ESCAPE = /["\\\u0000-\u001F\u2028\u2029\uD800-\uDFFF]/;

/** `JSON.stringify` of a string, with U+2028/U+2029 escaped too (safe to embed in JavaScript). */
export function jsonQuote(s: string): string {
  if (!JSON_NEEDS_ESCAPE.test(s)) return `"${s}"`;
  const q = JSON.stringify(s);
  return HAS_LINE_SEPARATOR.test(q) ? q.replace(LINE_SEPARATORS, escapeSeparator) : q;
}

/**
 * Serializes data as JSON text without calling any of its methods: own enumerable data properties
 * only, `undefined`/functions/symbols skipped in objects and `null` in arrays, non-finite numbers
 * and invalid dates as `null`, bigints as bare integers, cycles and subtrees deeper than
 * {@link MAX_JSON_DEPTH} as `null`, `__proto__` keys dropped. Throws a limit error as soon as the
 * text would exceed `budget` characters.
 */
export function toJsonText(value: unknown, budget: number): string {
  let out = '';
  const ancestors: object[] = [];
  const write = (s: string): void => {
    out += s;
    if (out.length > budget) throw limitError('template output exceeds maxOutputBytes');
  };
  const walk = (v: unknown, depth: number): void => {
    switch (typeof v) {
      case 'string':
        write(jsonQuote(v));
        return;
      case 'number':
        write(Number.isFinite(v) ? String(v) : 'null');
        return;
      case 'boolean':
        write(v ? 'true' : 'false');
        return;
      case 'bigint':
        write(String(v));
        return;
      case 'object':
        break;
      default:
        write('null');
        return;
    }
    if (v === null) return write('null');
    if (v instanceof Date) {
      const t = v.getTime();
      return write(Number.isFinite(t) ? `"${isoString(v)}"` : 'null');
    }
    if (v instanceof FormattedNumber) return write(v.text);
    if (depth >= MAX_JSON_DEPTH || ancestors.includes(v)) return write('null');
    ancestors.push(v);
    if (Array.isArray(v)) {
      write('[');
      const len = v.length;
      for (let i = 0; i < len; i++) {
        if (i > 0) write(',');
        walk(getOwn(v, i), depth + 1);
      }
      write(']');
    } else {
      write('{');
      let first = true;
      for (const key of Object.keys(v)) {
        if (key === '__proto__') continue;
        const item = getOwn(v, key);
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        write(first ? `${jsonQuote(key)}:` : `,${jsonQuote(key)}:`);
        first = false;
        walk(item, depth + 1);
      }
      write('}');
    }
    ancestors.pop();
  };
  walk(value, 0);
  return out;
}

/**
 * The plain text of a value (text/plain, XML and inside JSON strings): strings as-is, numbers and
 * booleans as their JavaScript text, dates as ISO-8601, objects and arrays as JSON text. Missing
 * values (undefined, null, non-finite numbers, invalid dates, functions, symbols) are ''.
 */
export function plainText(v: unknown, budget: number): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return Number.isFinite(v) ? String(v) : '';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return String(v);
    case 'object':
      if (v === null) return '';
      if (v instanceof FormattedNumber) return v.text;
      if (v instanceof Date) return Number.isFinite(v.getTime()) ? isoString(v) : '';
      return toJsonText(v, budget);
    default:
      return '';
  }
}

/** A value in JSON value position: exactly one JSON value; missing → `null`. */
export function encodeJsonValue(v: unknown, budget: number): string {
  switch (typeof v) {
    case 'string':
      return jsonQuote(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return String(v);
    case 'object':
      if (v === null) return 'null';
      if (v instanceof FormattedNumber) return v.text;
      if (v instanceof Date) return Number.isFinite(v.getTime()) ? `"${isoString(v)}"` : 'null';
      return toJsonText(v, budget);
    default:
      return 'null';
  }
}

/** A value inside a JSON string literal: its plain text, JSON-escaped, without quotes. */
export function encodeJsonString(v: unknown, budget: number): string {
  const text = plainText(v, budget);
  if (!JSON_NEEDS_ESCAPE.test(text)) return text;
  return jsonQuote(text).slice(1, -1);
}

// Characters XML 1.0 forbids (C0 controls except tab/LF/CR, U+FFFE, U+FFFF, lone surrogates), plus
// the five markup characters; a valid surrogate pair is matched as a unit and kept.
const XML_NEEDS_WORK =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  /[&<>"'\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;
const XML_REPLACE =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  /[&<>"'\r]|[\uD800-\uDBFF][\uDC00-\uDFFF]|[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/g;
const XML_ENTITIES: Readonly<Record<string, string>> = {
  // A literal CR would be normalized away by XML parsers; a character reference survives.
  '\r': '&#13;',
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes `& < > " '` as entities, CR as `&#13;`, and strips characters XML 1.0 does not allow. */
export function xmlEscape(s: string): string {
  if (!XML_NEEDS_WORK.test(s)) return s;
  return s.replace(XML_REPLACE, (m) => (m.length === 2 ? m : (XML_ENTITIES[m] ?? '')));
}

/** A value in XML text or attribute content. */
export function encodeXml(v: unknown, budget: number): string {
  const escaped = xmlEscape(plainText(v, budget));
  // `>` inside a value is escaped, so `]]>` (forbidden in text) can only form across the
  // boundary: a value ending in `]` followed by template text `]>` or `>`. Escape that `]`.
  return escaped.endsWith(']') ? `${escaped.slice(0, -1)}&#93;` : escaped;
}

/** A value in text/plain output. */
export function encodeText(v: unknown, budget: number): string {
  return plainText(v, budget);
}
