/**
 * Formatters of the merge-field template language (`{{ path | name:arg:arg }}`). Each formatter is
 * compiled once, with its arguments checked, into a plain function from value to value. Formatters
 * never throw because of the value they get: an unsuitable value is passed through unchanged
 * (string formatters) or becomes missing (`undefined`, for number and date formatters).
 *
 * @internal
 * @module
 */

/** A compiled formatter. `budget` is the number of output characters still allowed. */
export type Formatter = (value: unknown, budget: number) => unknown;

/**
 * A number already formatted as JSON-number text (by `number:N`), so that it renders as a bare
 * number in JSON value position (`9.50`) and as its text elsewhere.
 */
export class FormattedNumber {
  constructor(readonly text: string) {}
}

/** Thrown by {@link compileFormatter}; the parser turns it into a positioned syntax error. */
export class FormatterError extends Error {
  constructor(
    message: string,
    /** Index of the offending argument, or undefined when the formatter name/arity is wrong. */
    readonly argIndex?: number,
  ) {
    super(message);
  }
}

/** Serializes a value as JSON text within `budget` characters; provided by the encoder module. */
export type JsonSerializer = (value: unknown, budget: number) => string;

const NUMERIC = /^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/** A finite number (or bigint) from a number, bigint, formatted number or numeric string. */
export function toNumeric(value: unknown): number | bigint | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return value;
  let text: string;
  if (value instanceof FormattedNumber) text = value.text;
  else if (typeof value === 'string' && value.length <= 400 && NUMERIC.test(value)) text = value;
  else return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** `yyyy-MM-dd`, optionally with `THH:mm`, seconds, fraction and zone (`Z`, `+01:00`, `+0100`). */
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?)?$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/**
 * Parses an ISO-8601 date string (`2026-01-02`, `2026-01-02T03:04`, `2026-01-02T03:04:05.678Z`,
 * `2026-01-02 03:04:05+01:00`). A date-time without a zone is taken as UTC (not local time) so
 * results do not depend on the server's time zone. Returns undefined when not a valid date
 * (out-of-range months, days, hours, … are refused rather than rolled over).
 */
export function parseIsoDate(text: string): Date | undefined {
  if (text.length < 10 || text.length > 40) return undefined;
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = m[4] === undefined ? 0 : Number(m[4]);
  const mi = m[5] === undefined ? 0 : Number(m[5]);
  const sec = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const maxDay = mo === 2 && isLeap(y) ? 29 : (DAYS_IN_MONTH[mo - 1] ?? 0);
  if (mo < 1 || d < 1 || d > maxDay || h > 23 || mi > 59 || sec > 59) return undefined;
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = m[11] === undefined ? 0 : Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  let time = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  if (y < 100) {
    // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
    const fix = new Date(time);
    fix.setUTCFullYear(y);
    time = fix.getTime();
  }
  return new Date(time - offsetMinutes * 60_000);
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `Date#toISOString` of a valid date, several times faster for years 0–9999. */
export function isoString(d: Date): string {
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) return d.toISOString();
  const ms = d.getUTCMilliseconds();
  return `${y < 1000 ? String(y).padStart(4, '0') : y}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}T${two(
    d.getUTCHours(),
  )}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${ms < 10 ? `00${ms}` : ms < 100 ? `0${ms}` : ms}Z`;
}

/** A valid Date from a Date, epoch milliseconds or an ISO-8601 string; otherwise undefined. */
export function toDate(value: unknown): Date | undefined {
  let d: Date | undefined;
  if (value instanceof Date) d = value;
  else if (typeof value === 'number' && Number.isFinite(value)) d = new Date(value);
  else if (typeof value === 'string') d = parseIsoDate(value);
  return d !== undefined && Number.isFinite(d.getTime()) ? d : undefined;
}

const isMissing = (v: unknown): boolean => v === undefined || v === null || v === '';

function arity(name: string, args: readonly string[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    const want =
      min === max
        ? `${min} argument${min === 1 ? '' : 's'}`
        : `${min === 0 ? 'at most' : `${min} to`} ${max} arguments`;
    throw new FormatterError(`formatter '${name}' takes ${want}, got ${args.length}`);
  }
}

function intArg(args: readonly string[], i: number, min: number, max: number, what: string): number {
  const raw = args[i] ?? '';
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new FormatterError(`${what} must be an integer from ${min} to ${max}, got "${raw}"`, i);
  }
  return Number(raw);
}

const pad = (n: number, width: number): string => {
  const s = String(Math.abs(n)).padStart(width, '0');
  return n < 0 ? `-${s}` : s;
};

type DatePart = string | ((d: Date) => string);
const DATE_TOKENS: Record<string, (d: Date) => string> = {
  yyyy: (d) => pad(d.getUTCFullYear(), 4),
  MM: (d) => pad(d.getUTCMonth() + 1, 2),
  dd: (d) => pad(d.getUTCDate(), 2),
  HH: (d) => pad(d.getUTCHours(), 2),
  mm: (d) => pad(d.getUTCMinutes(), 2),
  ss: (d) => pad(d.getUTCSeconds(), 2),
};

function compileDatePattern(pattern: string): DatePart[] | undefined {
  const parts: DatePart[] = [];
  let tokens = 0;
  let last = 0;
  for (const m of pattern.matchAll(/yyyy|MM|dd|HH|mm|ss/g)) {
    if (m.index > last) parts.push(pattern.slice(last, m.index));
    parts.push(DATE_TOKENS[m[0]] as (d: Date) => string);
    tokens++;
    last = m.index + m[0].length;
  }
  if (last < pattern.length) parts.push(pattern.slice(last));
  return tokens > 0 ? parts : undefined;
}

function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  // Count code points so a surrogate pair is never split.
  let i = 0;
  for (let points = 0; points < max && i < s.length; points++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
  }
  return s.slice(0, i);
}

/**
 * Compiles formatter `name` with its (string) arguments. Throws {@link FormatterError} for an
 * unknown formatter, a wrong number of arguments or an invalid argument.
 */
export function compileFormatter(name: string, args: readonly string[], serialize: JsonSerializer): Formatter {
  switch (name) {
    case 'upper':
      arity(name, args, 0, 0);
      return (v) => (typeof v === 'string' ? v.toUpperCase() : v);
    case 'lower':
      arity(name, args, 0, 0);
      return (v) => (typeof v === 'string' ? v.toLowerCase() : v);
    case 'trim':
      arity(name, args, 0, 0);
      return (v) => (typeof v === 'string' ? v.trim() : v);
    case 'truncate': {
      arity(name, args, 1, 1);
      const max = intArg(args, 0, 0, 1_000_000, 'truncate length');
      return (v) => (typeof v === 'string' ? truncate(v, max) : v);
    }
    case 'json':
      arity(name, args, 0, 0);
      return (v, budget) => (v === undefined ? undefined : serialize(v, budget));
    case 'default': {
      arity(name, args, 1, 1);
      const fallback = args[0] ?? '';
      return (v) => (isMissing(v) ? fallback : v);
    }
    case 'number': {
      arity(name, args, 0, 1);
      if (args.length === 0) {
        return (v) => toNumeric(v);
      }
      const digits = intArg(args, 0, 0, 20, 'number of decimals');
      return (v) => {
        const n = toNumeric(v);
        if (n === undefined) return undefined;
        if (typeof n === 'bigint') return new FormattedNumber(digits > 0 ? `${n}.${'0'.repeat(digits)}` : String(n));
        return new FormattedNumber(n.toFixed(digits));
      };
    }
    case 'currency': {
      arity(name, args, 1, 2);
      const code = args[0] ?? '';
      if (!/^[A-Za-z]{3}$/.test(code)) throw new FormatterError(`currency must be an ISO 4217 code like EUR, got "${code}"`, 0);
      let nf: Intl.NumberFormat;
      try {
        nf = new Intl.NumberFormat(args[1] ?? 'en-US', { style: 'currency', currency: code.toUpperCase() });
      } catch {
        throw new FormatterError(`invalid locale "${args[1] ?? ''}"`, 1);
      }
      return (v) => {
        const n = toNumeric(v);
        return n === undefined ? undefined : nf.format(n);
      };
    }
    case 'date': {
      arity(name, args, 0, 1);
      const format = args[0] ?? 'iso';
      if (format === 'iso') {
        return (v) => {
          const d = toDate(v);
          return d === undefined ? undefined : isoString(d);
        };
      }
      if (format === 'unix') {
        return (v) => {
          const d = toDate(v);
          return d === undefined ? undefined : Math.floor(d.getTime() / 1000);
        };
      }
      const parts = compileDatePattern(format);
      if (!parts) {
        throw new FormatterError(
          `date format "${format}" has none of the tokens yyyy, MM, dd, HH, mm, ss (or use iso / unix)`,
          0,
        );
      }
      return (v) => {
        const d = toDate(v);
        if (d === undefined) return undefined;
        let out = '';
        for (const p of parts) out += typeof p === 'string' ? p : p(d);
        return out;
      };
    }
    default:
      throw new FormatterError(`unknown formatter '${name}'`);
  }
}

/** Names of all formatters, in documentation order. */
export const FORMATTERS = Object.freeze([
  'upper',
  'lower',
  'trim',
  'truncate',
  'default',
  'number',
  'currency',
  'date',
  'json',
] as const);
