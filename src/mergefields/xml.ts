/**
 * A small XML 1.0 well-formedness check (no DTD processing, no namespaces validation), used when a
 * template is validated at save time. It accepts what mainstream parsers accept for payloads: an
 * optional declaration, comments, processing instructions, a simple DOCTYPE, exactly one root
 * element, quoted attributes without duplicates, the five predefined entities and character
 * references, CDATA sections.
 *
 * @internal
 * @module
 */
import { lineColumn } from './parse.js';

const NAME = /[\p{L}_:][\p{L}\p{N}_:.\-\u00B7]*/uy;
const REFERENCE = /&(?:(?:lt|gt|amp|quot|apos)|#[0-9]+|#x[0-9a-fA-F]+);/y;
const XML_SPACE = /^[ \t\r\n]*$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
const BAD_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function validCharRef(ref: string): boolean {
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

class XmlProblem extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Checks `&` references in character data or an attribute value starting at `offset`. */
function checkReferences(s: string, from: number, to: number): void {
  for (let amp = s.indexOf('&', from); amp !== -1 && amp < to; amp = s.indexOf('&', amp + 1)) {
    REFERENCE.lastIndex = amp;
    const m = REFERENCE.exec(s);
    if (!m || amp + m[0].length > to || !validCharRef(m[0])) {
      throw new XmlProblem("'&' that does not start a valid entity or character reference", amp);
    }
  }
}

function check(s: string): void {
  const bad = BAD_CHAR.exec(s);
  if (bad) throw new XmlProblem('character not allowed in XML', bad.index);
  const n = s.length;
  const stack: string[] = [];
  let rootSeen = false;
  let i = s.charCodeAt(0) === 0xfeff ? 1 : 0;
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(s);
    if (!m) throw new XmlProblem('expected a name', i);
    i += m[0].length;
    return m[0];
  };
  const space = (): boolean => {
    const start = i;
    while (i < n && ' \t\r\n'.includes(s[i] as string)) i++;
    return i > start;
  };
  const skipTo = (end: string, what: string): number => {
    const at = s.indexOf(end, i);
    if (at === -1) throw new XmlProblem(`unterminated ${what}`, i);
    return at;
  };
  while (i < n) {
    if (s[i] !== '<') {
      const start = i;
      const end = s.indexOf('<', i);
      i = end === -1 ? n : end;
      if (stack.length === 0) {
        if (!XML_SPACE.test(s.slice(start, i))) throw new XmlProblem('text outside the root element', start);
      } else {
        checkReferences(s, start, i);
        const cdataEnd = s.slice(start, i).indexOf(']]>');
        if (cdataEnd !== -1) throw new XmlProblem("']]>' in text", start + cdataEnd);
      }
      continue;
    }
    const start = i;
    if (s.startsWith('<?', i)) {
      i += 2;
      const target = name();
      if (/^xml$/i.test(target) && start !== 0 && !(start === 1 && s.charCodeAt(0) === 0xfeff)) {
        throw new XmlProblem('XML declaration not at the start', start);
      }
      i = skipTo('?>', 'processing instruction') + 2;
    } else if (s.startsWith('<!--', i)) {
      i += 4;
      const end = skipTo('-->', 'comment');
      const dash = s.slice(i, end).indexOf('--');
      if (dash !== -1 || s[end - 1] === '-') throw new XmlProblem("'--' inside a comment", dash === -1 ? end - 1 : i + dash);
      i = end + 3;
    } else if (s.startsWith('<![CDATA[', i)) {
      if (stack.length === 0) throw new XmlProblem('CDATA section outside the root element', start);
      i = skipTo(']]>', 'CDATA section') + 3;
    } else if (s.startsWith('<!DOCTYPE', i)) {
      if (rootSeen) throw new XmlProblem('DOCTYPE after the root element', start);
      let depth = 0;
      for (i += 9; i < n; i++) {
        const c = s[i];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth <= 0) break;
      }
      if (i >= n) throw new XmlProblem('unterminated DOCTYPE', start);
      i++;
    } else if (s[i + 1] === '/') {
      i += 2;
      const tag = name();
      space();
      if (s[i] !== '>') throw new XmlProblem(`expected '>' to end </${tag}`, i);
      i++;
      const open = stack.pop();
      if (open !== tag) {
        throw new XmlProblem(open === undefined ? `unexpected </${tag}>` : `</${tag}> does not close <${open}>`, start);
      }
    } else {
      i++;
      const tag = name();
      if (stack.length === 0) {
        if (rootSeen) throw new XmlProblem('more than one root element', start);
        rootSeen = true;
      }
      const attributes = new Set<string>();
      for (;;) {
        const spaced = space();
        if (s.startsWith('/>', i)) {
          i += 2;
          break;
        }
        if (s[i] === '>') {
          i++;
          stack.push(tag);
          break;
        }
        if (!spaced) throw new XmlProblem(`expected whitespace, '>' or '/>' in <${tag}>`, i);
        const attrAt = i;
        const attr = name();
        if (attributes.has(attr)) throw new XmlProblem(`duplicate attribute '${attr}'`, attrAt);
        attributes.add(attr);
        space();
        if (s[i] !== '=') throw new XmlProblem(`expected '=' after attribute '${attr}'`, i);
        i++;
        space();
        const quote = s[i];
        if (quote !== '"' && quote !== "'") throw new XmlProblem(`attribute '${attr}' value must be quoted`, i);
        const valueStart = i + 1;
        const valueEnd = s.indexOf(quote, valueStart);
        if (valueEnd === -1) throw new XmlProblem(`unterminated value of attribute '${attr}'`, i);
        const lt = s.slice(valueStart, valueEnd).indexOf('<');
        if (lt !== -1) throw new XmlProblem(`'<' in the value of attribute '${attr}'`, valueStart + lt);
        checkReferences(s, valueStart, valueEnd);
        i = valueEnd + 1;
      }
    }
  }
  const open = stack.at(-1);
  if (open !== undefined) throw new XmlProblem(`element <${open}> is not closed`, n);
  if (!rootSeen) throw new XmlProblem('no root element', n);
}

/** Why `xml` is not a well-formed XML document (with its line and column), or undefined if it is. */
export function xmlProblem(xml: string): string | undefined {
  try {
    check(xml);
    return undefined;
  } catch (err) {
    if (!(err instanceof XmlProblem)) throw err;
    const { line, column } = lineColumn(xml, err.offset);
    return `${err.message} at line ${line}, column ${column} of the output`;
  }
}
