/**
 * The pieces of XML 1.0 the template lexer ({@link XmlLexer} in xml.ts) is built from: name and
 * reference patterns, the lexer's state between chunks and how two states compare, positions
 * and the problem it throws.
 *
 * @internal
 * @module
 */
/** 1-based line and column (in UTF-16 code units) of `offset` in `src`. */
export function lineColumn(src: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = src.indexOf('\n'); i !== -1 && i < offset; i = src.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** A well-formedness problem at `offset` (in the caller's units: template source or output). */
export class XmlProblem extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Where a placeholder's value goes, hence how it is encoded. */
export type XmlContext = 'xml-text' | 'xml-attr' | 'xml-cdata';

export type SectionKind = 'each' | 'if' | 'unless';

// Name characters as XML 1.0 (5th ed.) defines them, limited to the BMP as fast-xml-parser is, and
// without U+1680 and U+FEFF, which JavaScript's \\s (and so fast-xml-parser) takes for whitespace.
export const NAME_START =
  ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u167F\\u1681-\\u1FFF\\u200C-\\u200D' +
  '\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFEFE\\uFF00-\\uFFFD';
export const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
export const NAME_SRC = `[${NAME_START}][${NAME_CHAR}]*`;
// eslint-disable-next-line no-misleading-character-class -- combining marks (U+0300-U+036F) are name characters
export const NAME = new RegExp(NAME_SRC, 'y');
export const REFERENCE = /&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;
export const PARTIAL_REFERENCE = /&#?[0-9A-Za-z]*$/y;
export const EQ = '[ \\t\\r\\n]*=[ \\t\\r\\n]*';
export const DECLARATION = new RegExp(
  `[ \\t\\r\\n]+version${EQ}(?:"1\\.0"|'1\\.0')` +
    `(?:[ \\t\\r\\n]+encoding${EQ}(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?` +
    `(?:[ \\t\\r\\n]+standalone${EQ}(?:"(?:yes|no)"|'(?:yes|no)'))?[ \\t\\r\\n]*\\?>`,
  'y',
);
// eslint-disable-next-line no-misleading-character-class -- see NAME
export const DOCTYPE = new RegExp(`[ \\t\\r\\n]+${NAME_SRC}[ \\t\\r\\n]*>`, 'y');
// Characters XML 1.0 forbids even escaped: C0 controls but tab, LF, CR; U+FFFE, U+FFFF; lone surrogates.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
export const BAD_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const LT = 0x3c;
export const GT = 0x3e;
export const AMP = 0x26;
export const RSQB = 0x5d;
export const BOM = 0xfeff;

export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

export function validCharRef(ref: string): boolean {
  if (!ref.startsWith('&#')) return true;
  const code = ref[2] === 'x' ? parseInt(ref.slice(3, -1), 16) : parseInt(ref.slice(2, -1), 10);
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/**
 * Possible counts of `]` just written in text or CDATA (0, 1, 2 or more), as a bit set: the count
 * matters because `]]>` ends a CDATA section and is forbidden in text. Within one chunk exactly one
 * bit is set; across placeholders and sections the possibilities of every path are united.
 */
export const B0 = 1;
export const B2 = 4;
export const ANY_BRACKETS = 7;
export const afterBracket = (b: number): number => (b & B0 ? 2 : 0) | (b & 6 ? B2 : 0);

export interface StartTag {
  name: string;
  /** Attribute names so far; the last is the one being read in `attr` mode. */
  attrs: string[];
  at: number;
}

/** Where the lexer is between chunks. */
export interface State {
  /**
   * Element text (or the top level when `stack` is empty), a quoted attribute value, or CDATA;
   * `tag` (between attributes) never lasts past a chunk: a chunk ending there is refused.
   */
  mode: 'content' | 'attr' | 'cdata' | 'tag';
  quote: number;
  /** The start tag being read, in `attr` mode. */
  tag: StartTag | undefined;
  stack: string[];
  openedAt: number[];
  rootSeen: boolean;
  doctypeSeen: boolean;
  brackets: number;
  cdataAt: number;
}

export const copy = (s: State): State => ({
  ...s,
  tag: s.tag && { ...s.tag, attrs: [...s.tag.attrs] },
  stack: [...s.stack],
  openedAt: [...s.openedAt],
});

/** True when two states continue alike (the `]` counts are merged, not compared). */
export function sameState(a: State, b: State): boolean {
  return (
    a.mode === b.mode &&
    (a.mode !== 'attr' || a.quote === b.quote) &&
    a.rootSeen === b.rootSeen &&
    a.stack.join('>') === b.stack.join('>') &&
    (a.tag?.name ?? '') === (b.tag?.name ?? '') &&
    (a.tag?.attrs.join(' ') ?? '') === (b.tag?.attrs.join(' ') ?? '')
  );
}

/** The advice for two states that differ. */
export function advice(a: State, b: State): string {
  if (a.rootSeen !== b.rootSeen && a.stack.length === 0 && b.stack.length === 0) {
    return 'an XML document has exactly one root element on every path, so it cannot be optional or repeated';
  }
  return 'each branch and body must close every element, attribute value and CDATA section it opens, and no other';
}

export function describe(s: State): string {
  const path = s.stack.map((n) => `<${n}>`).join('');
  switch (s.mode) {
    case 'attr':
      return `inside the value of attribute '${s.tag?.attrs.at(-1) ?? ''}' of <${s.tag?.name ?? ''}>`;
    case 'tag':
      return `inside the start tag <${s.tag?.name ?? ''}>`;
    case 'cdata':
      return `inside a CDATA section in ${path}`;
    case 'content':
      if (s.stack.length > 0) return `in the content of ${path}`;
      return s.rootSeen ? 'at the top level after the root element' : 'at the top level before the root element';
  }
}

export interface Frame {
  readonly kind: SectionKind;
  readonly offset: number;
  readonly entry: State;
  thenExit: State | undefined;
}

/** A construct cut off at the end of a chunk: an error whose wording depends on what comes next. */
export interface Dangling {
  /** "an XML comment": what a merge field or section tag would be in. */
  readonly inside: string;
  /** "XML comment": what is unterminated at the end. */
  readonly what: string;
  readonly at: number;
}
