/**
 * Parser of the merge-field template language: turns template source into a small AST in one pass,
 * with every syntax error positioned (1-based line and column). For JSON templates it also lexes
 * the literal text between tags to know whether each placeholder sits inside a JSON string literal
 * or in value position. The language itself is documented in `../mergefields.ts`.
 *
 * @internal
 * @module
 */
import { TemplateSyntaxError } from '../errors.js';
import type { PayloadMimeType } from './compile.js';
import { FORBIDDEN_KEYS, toJsonText } from './encode.js';
import { type Formatter, FormatterError, compileFormatter } from './format.js';
import { lineColumn, type SectionKind, type XmlContext, XmlProblem } from './xml-syntax.js';
import { XmlLexer } from './xml.js';

/** Where a value path starts. */
export type PathRef =
  /** Plain path: first segment looked up in the current `#each` element, then outwards, then root. */
  | { readonly kind: 'scope'; readonly head: string; readonly rest: readonly string[] }
  /** `this` / `this.x`: the current element (the root data outside sections). */
  | { readonly kind: 'this'; readonly rest: readonly string[] }
  /** `@root` / `@root.x`: the data passed to render. */
  | { readonly kind: 'root'; readonly rest: readonly string[] }
  /** `@index`, `@first`, `@last` of the innermost `#each`. */
  | { readonly kind: 'index' | 'first' | 'last' }
  /** A path through `__proto__`, `constructor` or `prototype`: always missing. */
  | { readonly kind: 'never' };

/** How a value is encoded where it appears. */
export type OutputContext = 'json-value' | 'json-string' | XmlContext | 'text';

export interface TextNode {
  readonly type: 'text';
  text: string;
}
export interface ValueNode {
  readonly type: 'value';
  readonly path: PathRef;
  readonly formatters: readonly Formatter[];
  readonly context: OutputContext;
}
export interface IfNode {
  readonly type: 'if';
  readonly negate: boolean;
  readonly path: PathRef;
  readonly then: AstNode[];
  readonly otherwise: AstNode[];
}
export interface EachNode {
  readonly type: 'each';
  readonly path: PathRef;
  readonly body: AstNode[];
  readonly otherwise: AstNode[];
}
export type AstNode = TextNode | ValueNode | IfNode | EachNode;

export interface ParsedTemplate {
  readonly nodes: AstNode[];
  /** Referenced merge-field paths, deduplicated, in order of first appearance. */
  readonly fields: string[];
  readonly hasSections: boolean;
  /**
   * JSON templates without sections: the template text with each value-position placeholder
   * replaced by `null` and each in-string placeholder by nothing. If it parses, every render does.
   */
  readonly jsonSkeleton: string;
}

interface OpenSection {
  readonly kind: SectionKind;
  readonly node: IfNode | EachNode;
  readonly offset: number;
  readonly jsonStart: JsonState;
  jsonThenEnd: JsonState | undefined;
  inElse: boolean;
  /** For `#each`: field path of the element (`order.Lines[]`), if known. */
  readonly fieldBase: string | undefined;
}

type Tag =
  | { readonly kind: 'open'; readonly section: SectionKind; readonly path: ParsedPath }
  | { readonly kind: 'close'; readonly section: SectionKind }
  | { readonly kind: 'else' }
  | { readonly kind: 'value'; readonly path: ParsedPath; readonly formatters: Formatter[] };

interface ParsedPath {
  readonly ref: PathRef;
  /** Field path relative to the path's start (`OrderCode`, `Lines[0].Sku`); '' for `this`/`@root`. */
  readonly display: string;
  readonly offset: number;
}

/**
 * JSON lexer state between tags: outside strings, inside a string, right after a backslash in a
 * string, or inside a `\uXXXX` escape (with 4..1 hex digits still to come).
 */
const enum JsonState {
  Out = 0,
  String = 1,
  Escape = 2,
  Hex4 = 3,
  Hex1 = 6,
}

function advanceJson(state: JsonState, text: string): JsonState {
  let s: number = state;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (s === JsonState.Out) {
      if (c === 0x22) s = JsonState.String;
    } else if (s === JsonState.String) {
      if (c === 0x22) s = JsonState.Out;
      else if (c === 0x5c) s = JsonState.Escape;
    } else if (s === JsonState.Escape) {
      s = c === 0x75 /* u */ ? JsonState.Hex4 : JsonState.String;
    } else {
      s = s === JsonState.Hex1 ? JsonState.String : s + 1;
    }
  }
  return s as JsonState;
}

const IDENT = /[\p{L}_$][\p{L}\p{N}_$-]*/uy;
const DIGITS = /\d+/y;
const FORMATTER_NAME = /[A-Za-z]+/y;
const BARE_ARG = /[^\s:|{}"]+/y;
const SECTIONS: ReadonlySet<string> = new Set(['each', 'if', 'unless']);

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

const tagName = (kind: SectionKind): string => `{{#${kind}}}`;

class Parser {
  private i = 0;
  private readonly nodes: AstNode[] = [];
  private readonly stack: OpenSection[] = [];
  private readonly fields = new Set<string>();
  private json: JsonState = JsonState.Out;
  private skeleton = '';
  private hasSections = false;
  /** XML templates: the structure check, which also tells where each placeholder sits. */
  private readonly xml: XmlLexer | undefined;
  /**
   * Where the pieces of the pending text come from: pairs of (index in the text, source offset).
   * The text differs from the source where `\{{` became `{{`.
   */
  private pieces: number[] = [];

  constructor(
    private readonly src: string,
    private readonly mimeType: PayloadMimeType,
    private readonly maxDepth: number,
  ) {
    if (mimeType === 'application/xml') {
      this.xml = new XmlLexer((offset) => {
        const { line, column } = lineColumn(src, offset);
        return `line ${line}, column ${column}`;
      });
    }
  }

  private fail(message: string, offset: number): never {
    const { line, column } = lineColumn(this.src, offset);
    throw new TemplateSyntaxError(message, line, column);
  }

  private target(): AstNode[] {
    const top = this.stack.at(-1);
    if (!top) return this.nodes;
    if (top.inElse) return top.node.otherwise;
    return top.node.type === 'each' ? top.node.body : top.node.then;
  }

  parse(): ParsedTemplate {
    const src = this.src;
    let pos = 0;
    let pending = '';
    const xml = this.xml !== undefined;
    const append = (text: string, offset: number): void => {
      if (xml) this.pieces.push(pending.length, offset);
      pending += text;
    };
    for (;;) {
      const open = src.indexOf('{{', pos);
      if (open === -1) {
        append(src.slice(pos), pos);
        break;
      }
      // `\{{` is a literal `{{`. Backslashes pair up: after an even number (`\\{{`, an escaped
      // backslash in JSON) the backslashes stay literal and the tag is live.
      let slashes = 0;
      while (open - slashes - 1 >= pos && src.charCodeAt(open - slashes - 1) === 0x5c /* \ */) slashes++;
      if (slashes % 2 === 1) {
        append(src.slice(pos, open - 1), pos);
        append('{{', open);
        pos = open + 2;
        continue;
      }
      // In a run of braces the tag starts at the last two: `{{{x}}` is `{` then `{{x}}`.
      let tagStart = open;
      while (src.charCodeAt(tagStart + 2) === 0x7b /* { */) tagStart++;
      append(src.slice(pos, tagStart), pos);
      this.emitText(pending);
      pending = '';
      const tag = this.parseTagOrUnclosed(tagStart);
      this.handle(tag, tagStart);
      pos = this.i;
    }
    this.emitText(pending);
    const unclosed = this.stack.at(-1);
    if (unclosed) this.fail(`unclosed ${tagName(unclosed.kind)}`, unclosed.offset);
    this.checkXml(() => this.xml?.end());
    return {
      nodes: this.nodes,
      fields: [...this.fields],
      hasSections: this.hasSections,
      jsonSkeleton: this.skeleton,
    };
  }

  /** Runs a step of the XML structure check, turning its problems into positioned syntax errors. */
  private checkXml<T>(step: () => T): T {
    try {
      return step();
    } catch (err) {
      if (err instanceof XmlProblem) this.fail(err.message, err.offset);
      throw err;
    }
  }

  private emitText(text: string): void {
    const xml = this.xml;
    if (xml !== undefined) {
      const pieces = this.pieces;
      this.checkXml(() => xml.feed(text, (index) => sourceOffset(pieces, index)));
    }
    this.pieces = [];
    if (text === '') return;
    const target = this.target();
    const last = target.at(-1);
    if (last?.type === 'text') last.text += text;
    else target.push({ type: 'text', text });
    if (this.mimeType === 'application/json') {
      this.json = advanceJson(this.json, text);
      this.skeleton += text;
    }
  }

  private handle(tag: Tag, offset: number): void {
    switch (tag.kind) {
      case 'value': {
        this.addField(tag.path);
        let context: OutputContext;
        if (this.mimeType === 'application/json') {
          if (this.json === JsonState.Out) context = 'json-value';
          else if (this.json === JsonState.String) context = 'json-string';
          else return this.fail('placeholder inside a JSON escape sequence such as \\uXXXX', offset);
          this.skeleton += context === 'json-value' ? 'null' : '';
        } else if (this.xml !== undefined) {
          const xml = this.xml;
          context = this.checkXml(() => xml.value(offset));
        } else {
          context = 'text';
        }
        this.target().push({ type: 'value', path: tag.path.ref, formatters: tag.formatters, context });
        return;
      }
      case 'open': {
        this.hasSections = true;
        if (this.stack.length >= this.maxDepth) {
          this.fail(`sections nested deeper than the limit of ${this.maxDepth}`, offset);
        }
        const xml = this.xml;
        if (xml !== undefined) this.checkXml(() => xml.open(tag.section, offset));
        const fieldBase = this.addField(tag.path, tag.section === 'each');
        const node: IfNode | EachNode =
          tag.section === 'each'
            ? { type: 'each', path: tag.path.ref, body: [], otherwise: [] }
            : { type: 'if', negate: tag.section === 'unless', path: tag.path.ref, then: [], otherwise: [] };
        this.target().push(node);
        this.stack.push({
          kind: tag.section,
          node,
          offset,
          jsonStart: this.json,
          jsonThenEnd: undefined,
          inElse: false,
          fieldBase,
        });
        return;
      }
      case 'else': {
        const top = this.stack.at(-1);
        if (!top) return this.fail('{{else}} outside a section', offset);
        if (top.inElse) return this.fail(`second {{else}} in one ${tagName(top.kind)}`, offset);
        const xml = this.xml;
        if (xml !== undefined) this.checkXml(() => xml.else(offset));
        if (top.kind === 'each') this.checkJsonUnchanged(top, offset, 'the body of');
        top.jsonThenEnd = this.json;
        top.inElse = true;
        this.json = top.jsonStart;
        return;
      }
      case 'close': {
        const top = this.stack.at(-1);
        if (!top) return this.fail(`unexpected {{/${tag.section}}}: no section is open`, offset);
        if (top.kind !== tag.section) {
          const at = lineColumn(this.src, top.offset);
          this.fail(
            `{{/${tag.section}}} does not match ${tagName(top.kind)} opened at line ${at.line}, column ${at.column}`,
            offset,
          );
        }
        const xml = this.xml;
        if (xml !== undefined) this.checkXml(() => xml.close(offset));
        if (top.kind === 'each' || top.jsonThenEnd === undefined) {
          this.checkJsonUnchanged(top, offset, top.inElse ? 'the {{else}} branch of' : 'the body of');
        } else if (this.json !== top.jsonThenEnd) {
          this.fail(
            `unbalanced JSON string quotes: the two branches of ${tagName(top.kind)} end in different states`,
            offset,
          );
        }
        this.stack.pop();
        return;
      }
    }
  }

  private checkJsonUnchanged(top: OpenSection, offset: number, where: string): void {
    if (this.json !== top.jsonStart) {
      this.fail(
        `unbalanced JSON string quotes: ${where} ${tagName(top.kind)} opens or closes a string literal`,
        offset,
      );
    }
  }

  /** Records the field a path refers to; for `#each` paths returns the element's field path. */
  private addField(path: ParsedPath, isEach = false): string | undefined {
    const { ref, display } = path;
    let field: string | undefined;
    const innermost = this.stack.findLast((s) => s.kind === 'each');
    const outermost = this.stack.find((s) => s.kind === 'each');
    switch (ref.kind) {
      case 'scope': {
        const outerHead = outermost?.fieldBase?.split(/[.[]/, 1)[0];
        if (innermost?.fieldBase !== undefined && ref.head !== outerHead) {
          field = `${innermost.fieldBase}${display.startsWith('[') ? '' : '.'}${display}`;
        } else if (!innermost || innermost.fieldBase !== undefined) {
          field = display;
        }
        break;
      }
      case 'this':
        if (innermost) {
          field =
            innermost.fieldBase === undefined
              ? undefined
              : display === ''
                ? innermost.fieldBase
                : `${innermost.fieldBase}${display.startsWith('[') ? '' : '.'}${display}`;
        } else {
          field = display === '' ? undefined : display;
        }
        break;
      case 'root':
        field = display === '' ? undefined : display;
        break;
      default:
        field = undefined;
    }
    if (field !== undefined && isEach) field += '[]';
    if (field !== undefined && field !== '') this.fields.add(field);
    return field;
  }

  // ---- tags ----

  private parseTagOrUnclosed(open: number): Tag {
    try {
      this.i = open + 2;
      return this.parseTag();
    } catch (err) {
      const close = this.src.indexOf('}}', open + 2);
      const next = this.src.indexOf('{{', open + 2);
      if (close === -1 || (next !== -1 && next < close)) this.fail("unclosed '{{': no matching '}}'", open);
      throw err;
    }
  }

  private skipSpace(): void {
    while (this.i < this.src.length && isSpace(this.src.charCodeAt(this.i))) this.i++;
  }

  private match(re: RegExp): string | undefined {
    re.lastIndex = this.i;
    const m = re.exec(this.src);
    if (!m) return undefined;
    this.i += m[0].length;
    return m[0];
  }

  private describeHere(): string {
    if (this.i >= this.src.length) return 'end of template';
    const c = String.fromCodePoint(this.src.codePointAt(this.i) ?? 0);
    return `'${c}'`;
  }

  private expectClose(what: string): void {
    this.skipSpace();
    if (this.src.startsWith('}}', this.i)) {
      this.i += 2;
      return;
    }
    this.fail(`expected '}}' ${what}, found ${this.describeHere()}`, this.i);
  }

  private parseTag(): Tag {
    this.skipSpace();
    const c = this.src[this.i];
    if (c === '#') {
      this.i++;
      const nameAt = this.i;
      const name = this.match(IDENT) ?? '';
      if (!SECTIONS.has(name)) {
        this.fail(`unknown section '#${name}': expected #each, #if or #unless`, nameAt - 1);
      }
      const section = name as SectionKind;
      this.skipSpace();
      const path = this.parsePath();
      this.expectClose(`after {{#${section} ${this.src.slice(path.offset, this.i).trim()}`);
      return { kind: 'open', section, path };
    }
    if (c === '/') {
      this.i++;
      const nameAt = this.i;
      const name = this.match(IDENT) ?? '';
      if (!SECTIONS.has(name)) this.fail(`unknown closing tag '/${name}': expected /each, /if or /unless`, nameAt - 1);
      this.expectClose(`after {{/${name}`);
      return { kind: 'close', section: name as SectionKind };
    }
    const start = this.i;
    if (this.match(IDENT) === 'else') {
      this.skipSpace();
      if (this.src.startsWith('}}', this.i)) {
        this.i += 2;
        return { kind: 'else' };
      }
      this.fail(`unexpected ${this.describeHere()} after 'else'`, this.i);
    }
    this.i = start;
    const path = this.parsePath();
    const formatters: Formatter[] = [];
    for (;;) {
      this.skipSpace();
      if (this.src.startsWith('}}', this.i)) {
        this.i += 2;
        return { kind: 'value', path, formatters };
      }
      if (this.src[this.i] !== '|') {
        this.fail(`expected '|' or '}}' after the path, found ${this.describeHere()}`, this.i);
      }
      this.i++;
      this.skipSpace();
      formatters.push(this.parseFormatter());
    }
  }

  private parseFormatter(): Formatter {
    const nameAt = this.i;
    const name = this.match(FORMATTER_NAME);
    if (name === undefined) this.fail(`expected a formatter name after '|', found ${this.describeHere()}`, nameAt);
    const args: string[] = [];
    const argAt: number[] = [];
    for (;;) {
      const save = this.i;
      this.skipSpace();
      if (this.src[this.i] !== ':') {
        this.i = save;
        break;
      }
      this.i++;
      this.skipSpace();
      argAt.push(this.i);
      args.push(this.parseArg());
    }
    try {
      return compileFormatter(name, args, toJsonText);
    } catch (err) {
      if (err instanceof FormatterError) {
        this.fail(err.message, err.argIndex === undefined ? nameAt : (argAt[err.argIndex] ?? nameAt));
      }
      throw err;
    }
  }

  private parseArg(): string {
    const src = this.src;
    if (src[this.i] === '"') {
      const quoteAt = this.i;
      let value = '';
      for (let j = this.i + 1; j < src.length; j++) {
        const ch = src[j] as string;
        if (ch === '"') {
          this.i = j + 1;
          return value;
        }
        if (ch === '\\' && j + 1 < src.length) {
          j++;
          value += src[j];
        } else {
          value += ch;
        }
      }
      return this.fail('unterminated quoted argument', quoteAt);
    }
    const bare = this.match(BARE_ARG);
    if (bare === undefined) this.fail(`expected a formatter argument after ':', found ${this.describeHere()}`, this.i);
    return bare;
  }

  private parsePath(): ParsedPath {
    const offset = this.i;
    let ref: PathRef;
    let display = '';
    let rest: string[];
    const segment = (key: string, index: boolean): void => {
      rest.push(key);
      display += index ? `[${key}]` : display === '' ? key : `.${key}`;
    };
    if (this.src[this.i] === '@') {
      this.i++;
      const name = this.match(IDENT);
      if (name === 'index' || name === 'first' || name === 'last') {
        if (!this.stack.some((s) => s.kind === 'each')) {
          this.fail(`@${name} is only available inside {{#each}}`, offset);
        }
        const next = this.src[this.i];
        if (next === '.' || next === '[') this.fail(`@${name} has no properties`, this.i);
        return { ref: { kind: name }, display: '', offset };
      }
      if (name !== 'root') this.fail(`unknown variable '@${name ?? ''}': expected @index, @first, @last or @root`, offset);
      rest = [];
      ref = { kind: 'root', rest };
    } else {
      const head = this.match(IDENT) ?? this.match(DIGITS);
      if (head === undefined) this.fail(`empty path: expected a merge field name, found ${this.describeHere()}`, offset);
      if (head === 'this') {
        rest = [];
        ref = { kind: 'this', rest };
      } else {
        const key = /^\d/.test(head) ? normalizeIndex(head) : head;
        rest = [];
        display = /^\d/.test(head) ? `[${key}]` : key;
        ref = { kind: 'scope', head: key, rest };
      }
    }
    for (;;) {
      const c = this.src[this.i];
      if (c === '.') {
        this.i++;
        const name = this.match(IDENT);
        if (name !== undefined) {
          segment(name, false);
          continue;
        }
        const digits = this.match(DIGITS);
        if (digits === undefined) this.fail(`expected a name or index after '.', found ${this.describeHere()}`, this.i);
        segment(normalizeIndex(digits), true);
      } else if (c === '[') {
        this.i++;
        const digits = this.match(DIGITS);
        if (digits === undefined || this.src[this.i] !== ']') {
          this.fail(`expected an index like [0], found ${this.describeHere()}`, this.i);
        }
        this.i++;
        segment(normalizeIndex(digits), true);
      } else {
        break;
      }
    }
    const keys = ref.kind === 'scope' ? [ref.head, ...rest] : rest;
    if (keys.some((k) => FORBIDDEN_KEYS.has(k))) return { ref: { kind: 'never' }, display: '', offset };
    return { ref, display, offset };
  }
}

/**
 * Source offset of index `index` of a text made of `pieces` (pairs of index in the text and source
 * offset); the text's length maps to where the next tag starts.
 */
function sourceOffset(pieces: readonly number[], index: number): number {
  // Binary search for the last piece starting at or before `index` (called once per start tag).
  let lo = 0;
  let hi = pieces.length / 2 - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((pieces[2 * mid] as number) <= index) lo = mid;
    else hi = mid - 1;
  }
  return (pieces[2 * lo + 1] ?? 0) + index - (pieces[2 * lo] ?? 0);
}

function normalizeIndex(digits: string): string {
  return digits.replace(/^0+(?=\d)/, '');
}

/** Parses `source`; throws TemplateSyntaxError with the position of the first problem. */
export function parseTemplate(source: string, mimeType: PayloadMimeType, maxDepth: number): ParsedTemplate {
  return new Parser(source, mimeType, maxDepth).parse();
}
