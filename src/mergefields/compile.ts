/**
 * Merge-field payload templates: merchants write the body of a webhook as a template, the host
 * app's event data fills it in. Templates are untrusted; data is data (never code, never syntax).
 *
 * ## Template language
 *
 * - `{{ path }}` inserts a value. A path is dot-separated names with array indexes:
 *   `order.OrderCode`, `order.Lines[0].Sku` (or `order.Lines.0.Sku`). Names are letters, digits,
 *   `_`, `$` and `-` (not starting with a digit or `-`). Whitespace inside the braces is allowed.
 *   Paths read own data properties only: `__proto__`, `constructor` and `prototype` anywhere in
 *   a path make it missing, getters and inherited members are never read. `length` of an array
 *   (an own property) is readable: `{{ order.Lines.length }}`.
 * - Formatters, chainable with `|`, arguments after `:` (bare words, or "double-quoted" with `\"`
 *   and `\\` escapes; quote arguments that contain spaces, `:`, `|`, `{`, `}`):
 *   - `upper`, `lower`, `trim`, `truncate:20` (code points) — strings only, other values pass;
 *   - `number` (numeric string → number), `number:2` (fixed decimals; a bare number in JSON);
 *   - `currency:EUR`, `currency:EUR:nl-NL` (Intl.NumberFormat, default locale `en-US`);
 *   - `date` / `date:iso` (ISO-8601), `date:unix` (seconds), `date:"yyyy-MM-dd HH:mm:ss"`
 *     (tokens yyyy MM dd HH mm ss), all in UTC; input is a Date, epoch milliseconds or an
 *     ISO-8601 string (a date-time without zone is read as UTC);
 *   - `json` — the value as JSON text (a string: in JSON value position it is quoted again);
 *   - `default:"n/a"` — used when the value is missing, null or ''. Arguments are strings:
 *     `default:0 | number` gives the number 0.
 *
 *   Number and date formatters turn unsuitable input into a missing value; unknown formatters and
 *   bad arguments are syntax errors.
 * - Sections:
 *   - `{{#each order.Lines}} … {{else}} … {{/each}}` repeats over an array (anything else counts
 *     as empty; the optional `{{else}}` renders when empty). Inside, a path's first name is looked
 *     up in the current element first, then in enclosing elements, then in the data root.
 *     `{{this}}` is the current element, `{{@index}}` its 0-based index, `{{@first}}` and
 *     `{{@last}}` booleans, `{{@root.x}}` always reads from the data root.
 *   - `{{#if path}} … {{else}} … {{/if}}` and `{{#unless path}} … {{/unless}}`: falsy are missing,
 *     null, false, 0, NaN, '' and empty arrays.
 *   - JSON arrays need separators: `[{{#each order.Lines}}{"sku": "{{Sku}}"}{{#unless @last}},{{/unless}}{{/each}}]`.
 *   - `else` and `this` are keywords, not field names (use `this.else`, `this.this`).
 * - `\{{` is a literal `{{` (the backslash is dropped). Backslashes pair up: `\\{{ x }}` is two
 *   literal backslashes and a live placeholder — in JSON, an escaped backslash before a value.
 *   In a run of braces the tag takes the last two: `{{{k}}: 1}` is `{` followed by `{{k}}`.
 *   A literal `}}` outside tags is just text.
 *
 * ## Escaping (by MIME type)
 *
 * - `application/json`: the literal template text is lexed so each placeholder is known to be
 *   inside a JSON string literal or in value position. Inside a string the value's text is
 *   JSON-escaped without quotes (missing → nothing); in value position the value is one JSON value
 *   (`JSON.stringify`-like; missing and non-finite numbers → `null`, dates → ISO strings). Objects
 *   and arrays are serialized without calling any method (no `toJSON`), cycles and deeper than 64
 *   levels become `null`, bigints are bare integers, `__proto__` keys are dropped. A placeholder
 *   inside a `\uXXXX` escape, or a section whose body or branches open or close a string, is a
 *   syntax error (so every placeholder has one known position on every path). Output that does not `JSON.parse` is a
 *   TemplateRenderError (section-free templates are proven valid once at compile time instead).
 * - `application/xml`: the template must be a well-formed XML 1.0 document on every path through
 *   its sections, which is checked at compile time (TemplateSyntaxError with line and column):
 *   - placeholders only in element text, quoted attribute values and CDATA sections — not in
 *     element or attribute names, comments, processing instructions, the XML declaration or a
 *     DOCTYPE, nor outside the root element;
 *   - section tags only where a placeholder may go; every branch of `#if`/`#unless` must leave the
 *     XML where the other leaves it, and the body (and `{{else}}`) of `#each` where it found it: a
 *     section closes every element, attribute value and CDATA section it opens, and no other;
 *     exactly one root element on every path;
 *   - an XML declaration only at the very start, as `<?xml version="1.0"?>` with optional
 *     `encoding="UTF-8"` and `standalone`; a DOCTYPE only as `<!DOCTYPE name>` (internal subsets and
 *     external DTDs are refused: entity declarations expose receivers to XXE and entity expansion);
 *     entity references only `&amp; &lt; &gt; &quot; &apos;` and character references.
 *
 *   Values are escaped for their position: in text `& < > " '` as entities, CR as `&#13;`, a
 *   trailing `]` as `&#93;`; in attribute values also tab, LF and CR as character references, so
 *   they survive attribute normalization; in CDATA nothing is escaped, a `>` that would complete
 *   `]]>` gets the section restarted before it (`]]]]><![CDATA[>`) and CR is `]]>&#13;<![CDATA[`,
 *   so an XML parser reads back exactly the value. Characters XML 1.0 forbids even escaped (C0
 *   controls but tab, LF and CR; U+FFFE, U+FFFF; lone surrogates) are removed. Objects render as
 *   JSON text. As a last line, every render checks its output is well-formed and throws
 *   TemplateRenderError instead of returning malformed XML.
 * - `text/plain`: values as text, objects and arrays as JSON.
 *
 * A value's output is never parsed as template syntax. Rendering never throws because of the
 * data's shape (throwing proxies and the like render as missing); it throws TemplateRenderError
 * only for exceeded {@link TemplateLimits} (output bytes, loop iterations), invalid JSON output or
 * (never expected) malformed XML output.
 * Section nesting is limited at compile time. Column numbers in errors count UTF-16 code units.
 *
 * @module
 */
import { TemplateRenderError, WebhookValidationError } from '../errors.js';
import {
  encodeJsonString,
  encodeJsonValue,
  encodeText,
  encodeXmlAttr,
  encodeXmlCdata,
  encodeXmlText,
  getOwn,
  isLimitError,
  limitError,
} from './encode.js';
import type { Formatter } from './format.js';
import { type AstNode, type OutputContext, type PathRef, parseTemplate } from './parse.js';
import { xmlProblem } from './xml.js';

/** MIME types a payload template can produce; each has its own escaping. */
export type PayloadMimeType = 'application/json' | 'application/xml' | 'text/plain';

/** Resource limits of a template. */
export interface TemplateLimits {
  /** Largest rendered output in UTF-8 bytes (default 1 MiB). */
  maxOutputBytes?: number;
  /** Deepest nesting of sections, checked at compile time (default 16). */
  maxDepth?: number;
  /** Most `#each` iterations in one render, over all loops (default 100,000). */
  maxIterations?: number;
}

/** A parsed and compiled template; compile once, render many times. */
export interface CompiledTemplate {
  /** MIME type the output is escaped for. */
  readonly mimeType: PayloadMimeType;
  /** The template source. */
  readonly source: string;
  /**
   * Render with data. Never throws because of the data's shape; throws TemplateRenderError only
   * when limits are exceeded or the output is not valid for the MIME type (JSON must JSON.parse,
   * XML must be well-formed).
   */
  render(data: unknown): string;
  /**
   * Merge-field paths the template references, e.g. `['order.OrderCode', 'order.Lines[]',
   * 'order.Lines[].Sku']`, in order of first use. Arrays iterated by `#each` appear as `x[]`;
   * explicit indexes are kept (`order.Lines[0].Sku`). Inside `#each` a path is taken as relative to
   * the element unless its first name is the first name of the outermost `#each` path — a static
   * best guess, as scope lookup happens on the data.
   */
  readonly fields: readonly string[];
}

/** Default {@link TemplateLimits.maxOutputBytes}: 1 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Default {@link TemplateLimits.maxDepth}. */
export const DEFAULT_MAX_DEPTH = 16;
/** Default {@link TemplateLimits.maxIterations}. */
export const DEFAULT_MAX_ITERATIONS = 100_000;

/** Template sources kept in the compile cache. */
const CACHE_SIZE = 500;
/** Templates longer than this (in UTF-16 code units) are compiled but not cached. */
const MAX_CACHED_SOURCE_LENGTH = 100_000;

const MIME_TYPES: ReadonlySet<string> = new Set(['application/json', 'application/xml', 'text/plain']);

// ---- rendering machinery ----

interface RenderState {
  out: string;
  iterations: number;
  readonly root: unknown;
  /** Output limit in UTF-16 code units (a UTF-8 byte count is never smaller). */
  readonly maxChars: number;
  readonly maxIterations: number;
}

interface Frame {
  value: unknown;
  index: number;
  length: number;
  readonly parent: Frame | undefined;
}

type Op = (st: RenderState, frame: Frame) => void;
type Resolver = (st: RenderState, frame: Frame) => unknown;
type Encoder = (value: unknown, budget: number) => string;

const ENCODERS: Readonly<Record<OutputContext, Encoder>> = {
  'json-value': encodeJsonValue,
  'json-string': encodeJsonString,
  'xml-text': encodeXmlText,
  'xml-attr': encodeXmlAttr,
  'xml-cdata': encodeXmlCdata,
  text: encodeText,
};

function tooLarge(st: RenderState): TemplateRenderError {
  return limitError(`template output exceeds maxOutputBytes (${st.maxChars} bytes)`);
}

function walk(start: unknown, rest: readonly string[]): unknown {
  let v = start;
  for (const key of rest) {
    if (v === undefined) return undefined;
    v = getOwn(v, key);
  }
  return v;
}

function compileResolver(ref: PathRef, inEach: boolean): Resolver {
  switch (ref.kind) {
    case 'never':
      return () => undefined;
    case 'index':
      return (_st, f) => f.index;
    case 'first':
      return (_st, f) => f.index === 0;
    case 'last':
      return (_st, f) => f.index === f.length - 1;
    case 'root': {
      const { rest } = ref;
      return (st) => walk(st.root, rest);
    }
    case 'this': {
      const { rest } = ref;
      return (_st, f) => walk(f.value, rest);
    }
    case 'scope': {
      const { head, rest } = ref;
      if (!inEach) return (st) => walk(getOwn(st.root, head), rest);
      return (st, f) => {
        for (let fr: Frame | undefined = f; fr.parent !== undefined; fr = fr.parent) {
          const v = fr.value;
          if (typeof v === 'object' && v !== null && Object.hasOwn(v, head)) return walk(getOwn(v, head), rest);
        }
        return walk(getOwn(st.root, head), rest);
      };
    }
  }
}

function truthy(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : Boolean(v);
}

function compileBlock(nodes: readonly AstNode[], inEach: boolean): Op {
  const ops = nodes.map((n) => compileNode(n, inEach));
  if (ops.length === 1) return ops[0] as Op;
  return (st, frame) => {
    for (const op of ops) op(st, frame);
  };
}

function compileNode(node: AstNode, inEach: boolean): Op {
  switch (node.type) {
    case 'text': {
      const { text } = node;
      return (st) => {
        st.out += text;
        if (st.out.length > st.maxChars) throw tooLarge(st);
      };
    }
    case 'value': {
      const resolve = compileResolver(node.path, inEach);
      const encode = ENCODERS[node.context];
      const missing = node.context === 'json-value' ? 'null' : '';
      const formatters: readonly Formatter[] = node.formatters;
      return (st, frame) => {
        let text: string;
        try {
          let v = resolve(st, frame);
          const budget = st.maxChars - st.out.length;
          for (const f of formatters) v = f(v, budget);
          text = encode(v, budget);
        } catch (err) {
          // Hostile data (throwing proxies, revoked objects) renders as missing; limits abort.
          if (isLimitError(err)) throw err;
          text = missing;
        }
        st.out += text;
        if (st.out.length > st.maxChars) throw tooLarge(st);
      };
    }
    case 'if': {
      const resolve = compileResolver(node.path, inEach);
      const then = compileBlock(node.then, inEach);
      const otherwise = compileBlock(node.otherwise, inEach);
      const { negate } = node;
      return (st, frame) => {
        let test: boolean;
        try {
          test = truthy(resolve(st, frame));
        } catch {
          test = false;
        }
        if (test !== negate) then(st, frame);
        else otherwise(st, frame);
      };
    }
    case 'each': {
      const resolve = compileResolver(node.path, inEach);
      const body = compileBlock(node.body, true);
      const otherwise = compileBlock(node.otherwise, inEach);
      return (st, frame) => {
        let list: unknown[] | undefined;
        let length = 0;
        try {
          const v = resolve(st, frame);
          if (Array.isArray(v)) {
            const len = getOwn(v, 'length');
            if (typeof len === 'number' && len > 0) {
              list = v;
              length = len;
            }
          }
        } catch {
          list = undefined;
        }
        if (list === undefined) {
          otherwise(st, frame);
          return;
        }
        const inner: Frame = { value: undefined, index: 0, length, parent: frame };
        for (let i = 0; i < length; i++) {
          if (++st.iterations > st.maxIterations) {
            throw limitError(`template exceeds maxIterations (${st.maxIterations} #each iterations)`);
          }
          let el: unknown;
          try {
            el = getOwn(list, i);
          } catch {
            el = undefined;
          }
          inner.value = el;
          inner.index = i;
          body(st, inner);
        }
      };
    }
  }
}

// ---- limits, cache ----

interface ResolvedLimits {
  readonly maxOutputBytes: number;
  readonly maxDepth: number;
  readonly maxIterations: number;
}

function resolveLimits(limits: TemplateLimits | undefined): ResolvedLimits {
  const pick = (name: keyof TemplateLimits, fallback: number): number => {
    const v = limits?.[name];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new WebhookValidationError([{ path: `limits.${name}`, message: 'must be a positive integer' }], {
        context: 'invalid template limits',
      });
    }
    return v;
  };
  return {
    maxOutputBytes: pick('maxOutputBytes', DEFAULT_MAX_OUTPUT_BYTES),
    maxDepth: pick('maxDepth', DEFAULT_MAX_DEPTH),
    maxIterations: pick('maxIterations', DEFAULT_MAX_ITERATIONS),
  };
}

/**
 * LRU of compiled templates keyed by source (Map iteration order is insertion order; a hit moves
 * the source to the end). Each source holds its variants by MIME type and limits. Keying by the
 * source string itself lets V8 reuse the string's cached hash.
 */
const cache = new Map<string, { variant: string; template: CompiledTemplate }[]>();
/** Most variants (MIME type × limits) kept per source. */
const MAX_VARIANTS = 8;

function build(source: string, mimeType: PayloadMimeType, limits: ResolvedLimits): CompiledTemplate {
  const parsed = parseTemplate(source, mimeType, limits.maxDepth);
  const body = compileBlock(parsed.nodes, false);
  const { maxOutputBytes, maxIterations } = limits;
  let checkJson = false;
  const checkXml = mimeType === 'application/xml';
  if (mimeType === 'application/json') {
    checkJson = parsed.hasSections;
    if (!checkJson) {
      try {
        JSON.parse(parsed.jsonSkeleton);
      } catch {
        checkJson = true;
      }
    }
  }
  const render = (data: unknown): string => {
    const st: RenderState = { out: '', iterations: 0, root: data, maxChars: maxOutputBytes, maxIterations };
    body(st, { value: data, index: -1, length: 0, parent: undefined });
    const out = st.out;
    if (out.length * 3 > maxOutputBytes && Buffer.byteLength(out, 'utf8') > maxOutputBytes) throw tooLarge(st);
    if (checkJson) {
      try {
        JSON.parse(out);
      } catch (err) {
        throw new TemplateRenderError(`template output is not valid JSON: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    if (checkXml) {
      // The compile-time structure check and the encoders make this unreachable; checked anyway
      // (linear in the output) so that a malformed document is never returned, let alone sent.
      const problem = xmlProblem(out);
      if (problem !== undefined) throw new TemplateRenderError(`template output is not well-formed XML: ${problem}`);
    }
    return out;
  };
  return Object.freeze({ mimeType, source, render, fields: Object.freeze(parsed.fields) });
}

// ---- public API ----

/**
 * Parses and compiles a template; throws TemplateSyntaxError with line/column. Compiled templates
 * are cached by (mimeType, source, limits) in a bounded LRU (500 entries), so callers may call
 * this per render cheaply.
 *
 * @param source - template text (untrusted)
 * @param mimeType - output type; decides escaping
 * @param limits - resource limits; invalid values throw WebhookValidationError
 */
export function compileTemplate(
  source: string,
  mimeType: PayloadMimeType,
  limits?: TemplateLimits,
): CompiledTemplate {
  if (typeof source !== 'string') {
    throw new WebhookValidationError([{ path: 'source', message: 'must be a string' }], { context: 'template' });
  }
  // Any letter case, as ShopCtrl spells them (`application/JSON`).
  if (typeof mimeType === 'string') mimeType = mimeType.trim().toLowerCase() as PayloadMimeType;
  if (!MIME_TYPES.has(mimeType)) {
    const given = typeof mimeType === 'string' ? `"${mimeType}"` : typeof mimeType;
    throw new WebhookValidationError([{ path: 'mimeType', message: `unsupported MIME type ${given}` }], {
      context: 'template',
    });
  }
  const resolved = resolveLimits(limits);
  const variant = `${mimeType} ${resolved.maxOutputBytes} ${resolved.maxDepth} ${resolved.maxIterations}`;
  let variants = cache.get(source);
  const hit = variants?.find((v) => v.variant === variant);
  if (variants !== undefined && hit !== undefined) {
    cache.delete(source);
    cache.set(source, variants);
    return hit.template;
  }
  const compiled = build(source, mimeType, resolved);
  if (source.length <= MAX_CACHED_SOURCE_LENGTH) {
    if (variants === undefined) variants = [];
    else cache.delete(source);
    variants.push({ variant, template: compiled });
    if (variants.length > MAX_VARIANTS) variants.shift();
    cache.set(source, variants);
    if (cache.size > CACHE_SIZE) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
  }
  return compiled;
}
