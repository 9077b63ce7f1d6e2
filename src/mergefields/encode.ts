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

// Characters XML 1.0 forbids even as references (C0 controls but tab/LF/CR, U+FFFE, U+FFFF, lone
// surrogates): removed from values, so no data can make the output malformed. A valid surrogate
// pair is matched as a unit and kept.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;
const XML_FORBIDDEN_ALL =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
  /[\uD800-\uDBFF][\uDC00-\uDFFF]|[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/g;
const keepPairs = (m: string): string => (m.length === 2 ? m : '');

/** `s` without the characters XML 1.0 does not allow. */
export function xmlChars(s: string): string {
  return XML_FORBIDDEN.test(s) ? s.replace(XML_FORBIDDEN_ALL, keepPairs) : s;
}

const XML_TEXT_SPECIAL = /[&<>"'\r]/;
const XML_TEXT_REPLACE = /[&<>"'\r]/g;
const XML_ATTR_SPECIAL = /[&<>"'\t\n\r]/;
const XML_ATTR_REPLACE = /[&<>"'\t\n\r]/g;
const XML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // Parsers normalize a literal CR away (and in attribute values tab and LF to spaces);
  // character references survive, so the value round-trips exactly.
  '\r': '&#13;',
  '\t': '&#9;',
  '\n': '&#10;',
};
const toEntity = (c: string): string => XML_ENTITIES[c] as string;

/** Escapes `& < > " '` as entities, CR as `&#13;`, and strips characters XML 1.0 does not allow. */
export function xmlEscape(s: string): string {
  const text = xmlChars(s);
  return XML_TEXT_SPECIAL.test(text) ? text.replace(XML_TEXT_REPLACE, toEntity) : text;
}

/** A value in XML element text. */
export function encodeXmlText(v: unknown, budget: number): string {
  const escaped = xmlEscape(plainText(v, budget));
  // `>` inside a value is escaped, so `]]>` (forbidden in text) can only form across the
  // boundary: a value ending in `]` followed by template text `]>` or `>`. Escape that `]`.
  return escaped.endsWith(']') ? `${escaped.slice(0, -1)}&#93;` : escaped;
}

/** A value in a quoted XML attribute value (either quote): also tab, LF and CR as references. */
export function encodeXmlAttr(v: unknown, budget: number): string {
  const text = xmlChars(plainText(v, budget));
  return XML_ATTR_SPECIAL.test(text) ? text.replace(XML_ATTR_REPLACE, toEntity) : text;
}

/** Ends the CDATA section and starts a new one: a `>` after it cannot complete a `]]>`. */
const CDATA_SPLIT = ']]><![CDATA[';

/**
 * A value inside `<![CDATA[ … ]]>`: its text unescaped (CDATA has no escapes), so a parser reads
 * back exactly the value. Where a `>` could complete `]]>` (after `]]` in the value, or at its
 * start, where the text before may end in `]`) the section is ended and restarted just before the
 * `>`: `]]>` becomes `]]]]><![CDATA[>`. A CR, which parsers would turn into LF, is written as
 * `&#13;` between two sections. A value ending in `]` is followed by a restart, so template text
 * after it (`]]>`, `>`) keeps its meaning.
 */
export function encodeXmlCdata(v: unknown, budget: number): string {
  const text = xmlChars(plainText(v, budget));
  if (text === '' || (!text.includes(']') && !text.includes('\r') && text.charCodeAt(0) !== 0x3e)) return text;
  let out = '';
  let from = 0;
  // `]` just before the current position; the text before the value may end in `]]`.
  let brackets = 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5d /* ] */) {
      brackets++;
    } else if (c === 0x3e /* > */ && brackets >= 2) {
      out += `${text.slice(from, i)}${CDATA_SPLIT}`;
      from = i;
      brackets = 0;
    } else if (c === 0x0d /* CR */) {
      out += `${text.slice(from, i)}]]>&#13;<![CDATA[`;
      from = i + 1;
      brackets = 0;
    } else {
      brackets = 0;
    }
  }
  out += text.slice(from);
  return text.charCodeAt(text.length - 1) === 0x5d ? `${out}${CDATA_SPLIT}` : out;
}

/** A value in text/plain output. */
export function encodeText(v: unknown, budget: number): string {
  return plainText(v, budget);
}
