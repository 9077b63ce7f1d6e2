/**
 * XML 1.0 well-formedness for merge-field templates, in one lexer used twice:
 *
 * - at compile time, on the literal text of a template between its tags (a "chunk" ends at each
 *   `{{…}}`): it decides where each placeholder sits (element text, attribute value, CDATA) and
 *   refuses placeholders anywhere else, and it checks that every `#if`/`#unless` branch and every
 *   `#each` body leaves the XML where it found it, so every combination of branches is well-formed;
 * - at render time, on the whole output ({@link xmlProblem}), as a last line of defence.
 *
 * The accepted language is deliberately narrower than XML 1.0 where that protects receivers:
 * an XML declaration only at the very start, only `version="1.0"`, only `encoding="UTF-8"` (the
 * body is sent as UTF-8); a DOCTYPE only as `<!DOCTYPE name>` (no internal subset, no external
 * DTD: entity declarations and external DTDs expose receivers to XXE and entity expansion); no
 * entity references other than the five predefined ones and character references. It is linear in
 * the input and never accepts what fast-xml-parser's validator rejects (a property test checks).
 *
 * @internal
 * @module
 */
import {
  lineColumn,
  XmlProblem,
  NAME,
  REFERENCE,
  PARTIAL_REFERENCE,
  DECLARATION,
  DOCTYPE,
  BAD_CHAR,
  LT,
  GT,
  AMP,
  RSQB,
  BOM,
  isSpace,
  validCharRef,
  B0,
  B2,
  ANY_BRACKETS,
  afterBracket,
  copy,
  sameState,
  advice,
  describe,
  type XmlContext,
  type SectionKind,
  type StartTag,
  type State,
  type Frame,
  type Dangling,
} from './xml-syntax.js';

const tagText = (kind: SectionKind): string => `{{#${kind}}}`;
const identity = (index: number): number => index;
const describeOffset = (offset: number): string => `offset ${offset}`;

/**
 * The lexer. Feed it literal text with {@link XmlLexer.feed}; announce each placeholder
 * ({@link XmlLexer.value}) and section tag ({@link XmlLexer.open}, {@link XmlLexer.else},
 * {@link XmlLexer.close}) between chunks, and {@link XmlLexer.end} at the end. Every method throws
 * {@link XmlProblem}.
 */
export class XmlLexer {
  private st: State = {
    mode: 'content',
    quote: 0,
    tag: undefined,
    stack: [],
    openedAt: [],
    rootSeen: false,
    doctypeSeen: false,
    brackets: B0,
    cdataAt: 0,
  };
  private readonly frames: Frame[] = [];
  private dangling: Dangling | undefined;
  /** Nothing has been fed or announced yet: an XML declaration may come. */
  private atStart = true;
  private s = '';
  private i = 0;
  private at: (index: number) => number = identity;

  /** @param where - describes a template offset for messages (`line 2, column 5`) */
  constructor(private readonly where: (offset: number) => string = describeOffset) {}

  private fail(message: string, index: number): never {
    throw new XmlProblem(message, this.at(index));
  }

  private failAt(message: string, offset: number): never {
    throw new XmlProblem(message, offset);
  }

  /** Marks a construct running into the end of the chunk and stops lexing the chunk. */
  private cut(inside: string, what: string, offset: number): void {
    this.dangling = { inside, what, at: offset };
    this.i = this.s.length;
  }

  /**
   * Lexes `text`, the literal text up to the next tag or the end. `at` maps an index in `text`
   * (including `text.length`, the position of what follows) to the caller's offset.
   */
  feed(text: string, at: (index: number) => number = identity): void {
    this.s = text;
    this.at = at;
    this.i = 0;
    if (text === '') return;
    const bad = BAD_CHAR.exec(text);
    if (bad) this.fail('character not allowed in XML (a control character, U+FFFE, U+FFFF or a lone surrogate)', bad.index);
    if (this.atStart && text.charCodeAt(0) === BOM) this.i = 1;
    const n = text.length;
    while (this.i < n) {
      switch (this.st.mode) {
        case 'content':
          this.content();
          break;
        case 'attr':
          if (this.attrValue()) this.inTag();
          break;
        case 'cdata':
          this.cdata();
          break;
        case 'tag':
          this.inTag();
          break;
      }
    }
    this.atStart = false;
  }

  /** A construct left open by the last chunk, refused with wording for what cut it. */
  private checkDangling(sectionTag?: string): void {
    const d = this.dangling;
    if (d === undefined) return;
    if (sectionTag === undefined) {
      this.failAt(
        `merge field in ${d.inside}: merge fields can only go in element text, quoted attribute values and CDATA sections`,
        this.at(this.s.length),
      );
    }
    this.failAt(
      `${sectionTag} in ${d.inside}: sections can only start and end in element text, attribute values and CDATA sections`,
      this.at(this.s.length),
    );
  }

  /** A placeholder comes next; returns how its value is encoded. */
  value(offset: number): XmlContext {
    this.checkDangling();
    this.atStart = false;
    const st = this.st;
    switch (st.mode) {
      case 'tag': // a chunk never ends here without leaving a dangling construct
        return this.failAt('merge field inside a start tag', offset);
      case 'attr':
        return 'xml-attr';
      case 'cdata':
        // A non-empty value leaves no `]` pending (the encoder sees to it); an empty one changes nothing.
        st.brackets |= B0;
        return 'xml-cdata';
      case 'content':
        if (st.stack.length === 0) {
          this.failAt(
            'merge field outside the root element: an XML document is one element; put merge fields inside it',
            offset,
          );
        }
        st.brackets |= B0;
        return 'xml-text';
    }
  }

  open(kind: SectionKind, offset: number): void {
    this.checkDangling(tagText(kind));
    this.atStart = false;
    this.frames.push({ kind, offset, entry: copy(this.st), thenExit: undefined });
    // The body of #each may follow itself: any `]` count may precede its first character.
    if (kind === 'each') this.st.brackets = ANY_BRACKETS;
  }

  else(offset: number): void {
    this.checkDangling('{{else}}');
    const frame = this.frames.at(-1);
    if (frame === undefined) return; // the parser reports a stray {{else}}
    if (frame.kind === 'each') this.expectSame(this.st, frame, 'body', offset);
    frame.thenExit = this.st;
    this.st = copy(frame.entry);
  }

  close(offset: number): void {
    const frame = this.frames.at(-1);
    this.checkDangling(frame ? `{{/${frame.kind}}}` : 'section end');
    if (frame === undefined) return;
    this.frames.pop();
    const { entry, thenExit } = frame;
    if (frame.kind === 'each') {
      this.expectSame(this.st, frame, thenExit ? 'else' : 'body', offset);
      this.st.brackets |= thenExit ? thenExit.brackets : entry.brackets;
      return;
    }
    const other = thenExit ?? entry;
    if (!sameState(this.st, other)) {
      const mine = describe(this.st);
      const theirs = describe(other);
      const single = thenExit === undefined;
      this.failAt(
        `unbalanced XML in ${tagText(frame.kind)} at ${this.where(frame.offset)}: ` +
          (single
            ? `its body starts ${theirs} but ends ${mine}`
            : `one branch ends ${theirs}, the other ${mine}`) +
          (mine === theirs ? ' (with different attributes)' : '') +
          `; ${advice(this.st, other)}`,
        offset,
      );
    }
    this.st.brackets |= other.brackets;
  }

  /** `#each`: its body (repeated) and its `{{else}}` (instead of the body) must end where they start. */
  private expectSame(exit: State, frame: Frame, part: 'body' | 'else', offset: number): void {
    if (sameState(exit, frame.entry)) return;
    const start = describe(frame.entry);
    const finish = describe(exit);
    this.failAt(
      `unbalanced XML in ${tagText(frame.kind)} at ${this.where(frame.offset)}: ` +
        `its ${part === 'body' ? 'body' : '{{else}} branch'} starts ${start} but ends ${finish}` +
        `${start === finish ? ' (with different attributes)' : ''}; ` +
        (part === 'body' ? 'the body is repeated for every item' : 'the {{else}} branch stands in for the items') +
        `: ${advice(exit, frame.entry)}`,
      offset,
    );
  }

  /** The end of the template or output: everything must be closed and there must be a root. */
  end(): void {
    const d = this.dangling;
    if (d !== undefined) this.failAt(`unterminated ${d.what}`, d.at);
    const st = this.st;
    const endOffset = this.at(this.s.length);
    if (st.mode === 'attr') this.failAt(`unterminated start tag <${st.tag?.name ?? ''}>`, st.tag?.at ?? endOffset);
    if (st.mode === 'cdata') this.failAt('unterminated CDATA section', st.cdataAt);
    const open = st.stack.at(-1);
    if (open !== undefined) this.failAt(`element <${open}> is not closed`, st.openedAt.at(-1) ?? endOffset);
    if (!st.rootSeen) this.failAt('no root element', endOffset);
  }

  // ---- lexing ----

  private content(): void {
    const s = this.s;
    const n = s.length;
    const st = this.st;
    const topLevel = st.stack.length === 0;
    let brackets = st.brackets;
    let i = this.i;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === LT) break;
      if (topLevel) {
        if (!isSpace(c)) this.fail('text outside the root element', i);
      } else if (c === RSQB) {
        brackets = afterBracket(brackets);
      } else if (c === AMP) {
        this.i = i;
        this.reference();
        i = this.i - 1;
        brackets = B0;
      } else {
        if (c === GT && brackets & B2) {
          this.fail(
            brackets === B2
              ? "']]>' is not allowed in element text (write ']]&gt;')"
              : "']]>' may form here in element text, with ']' before a merge field or section (write '&gt;')",
            i,
          );
        }
        brackets = B0;
      }
    }
    st.brackets = brackets;
    this.i = i;
    if (i < n) this.markup();
  }

  private reference(): void {
    const s = this.s;
    REFERENCE.lastIndex = this.i;
    const m = REFERENCE.exec(s);
    if (m && validCharRef(m[0])) {
      this.i += m[0].length;
      return;
    }
    PARTIAL_REFERENCE.lastIndex = this.i;
    if (!m && PARTIAL_REFERENCE.test(s)) return this.cut('an entity reference', 'entity reference', this.at(this.i));
    this.fail(
      m
        ? `character reference ${m[0]} to a character XML does not allow`
        : "'&' must start an entity reference: &amp; &lt; &gt; &quot; &apos; or a character reference like &#233; (write '&amp;' for '&')",
      this.i,
    );
  }

  private name(): string | undefined {
    const s = this.s;
    const start = this.i;
    // Fast path for ASCII names, the usual case; the regex decides anything else.
    let j = start;
    for (let c = s.charCodeAt(j); j < s.length; c = s.charCodeAt(++j)) {
      const letter = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a;
      if (!(letter || (j > start && ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e)))) break;
    }
    if (j === s.length || s.charCodeAt(j) < 0x80) {
      if (j === start) return undefined;
      this.i = j;
      return s.slice(start, j);
    }
    NAME.lastIndex = start;
    const m = NAME.exec(s);
    if (!m) return undefined;
    this.i += m[0].length;
    return m[0];
  }

  private space(): boolean {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length && isSpace(s.charCodeAt(this.i))) this.i++;
    return this.i > start;
  }

  /** At '<' in content. */
  private markup(): void {
    const s = this.s;
    const n = s.length;
    const start = this.i;
    const next = s.charCodeAt(start + 1);
    const st = this.st;
    const atStart = this.atStart && (start === 0 || (start === 1 && s.charCodeAt(0) === BOM));
    this.atStart = false;
    if (start + 1 >= n) return this.cut('an element name', 'tag', this.at(start));
    if (next === 0x21 /* ! */) {
      if (s.startsWith('<!--', start)) return this.comment(start);
      if (s.startsWith('<![CDATA[', start)) {
        if (st.stack.length === 0) this.fail('CDATA section outside the root element', start);
        this.i = start + 9;
        st.mode = 'cdata';
        st.cdataAt = this.at(start);
        st.brackets = B0;
        return;
      }
      if (s.startsWith('<!DOCTYPE', start)) return this.doctype(start);
      const rest = s.slice(start, start + 9);
      if (start + 9 > n && ['<!--', '<![CDATA[', '<!DOCTYPE'].some((m) => m.startsWith(rest))) {
        return this.cut('markup', 'markup', this.at(start));
      }
      this.fail("unknown markup after '<!': expected a comment <!-- … -->, a CDATA section or <!DOCTYPE name>", start);
    }
    if (next === 0x3f /* ? */) return this.processingInstruction(start, atStart);
    if (next === 0x2f /* / */) return this.endTag(start);
    this.startTag(start);
  }

  private comment(start: number): void {
    const s = this.s;
    const end = s.indexOf('-->', start + 4);
    if (end === -1) return this.cut('an XML comment', 'XML comment', this.at(start));
    const dash = s.indexOf('--', start + 4);
    if (dash < end || (end > start + 4 && s.charCodeAt(end - 1) === 0x2d)) {
      this.fail("'--' inside an XML comment", dash < end ? dash : end - 1);
    }
    this.i = end + 3;
  }

  private doctype(start: number): void {
    const st = this.st;
    if (st.stack.length > 0 || st.rootSeen) this.fail('DOCTYPE after the root element started', start);
    if (st.doctypeSeen) this.fail('a second DOCTYPE', start);
    if (this.frames.length > 0) this.fail('DOCTYPE inside a section: put it at the top level, before the root element', start);
    DOCTYPE.lastIndex = start + 9;
    const m = DOCTYPE.exec(this.s);
    if (!m) {
      const close = this.s.indexOf('>', start);
      if (close === -1 && !this.s.includes('[', start)) return this.cut('a DOCTYPE', 'DOCTYPE', this.at(start));
      this.fail(
        'only <!DOCTYPE name> is allowed: an internal subset or external DTD (entity declarations, SYSTEM or PUBLIC) ' +
          'would expose the receiver to XXE and entity-expansion attacks',
        start,
      );
    }
    st.doctypeSeen = true;
    this.i = start + 9 + m[0].length;
  }

  private processingInstruction(start: number, atStart: boolean): void {
    const s = this.s;
    this.i = start + 2;
    const target = this.name();
    if (target === undefined) {
      if (this.i >= s.length) return this.cut('a processing instruction', 'processing instruction', this.at(start));
      this.fail("expected a processing instruction target after '<?'", this.i);
    }
    if (this.i >= s.length) return this.cut('a processing instruction', 'processing instruction', this.at(start));
    if (target === 'xml' && atStart) return this.declaration(start);
    if (/^xml$/i.test(target)) {
      this.fail(
        target === 'xml'
          ? 'XML declaration not at the very start'
          : `'${target}' is a reserved processing instruction target`,
        start,
      );
    }
    if (!s.startsWith('?>', this.i) && !isSpace(s.charCodeAt(this.i))) {
      this.fail("expected whitespace or '?>' after the processing instruction target", this.i);
    }
    const end = s.indexOf('?>', this.i);
    if (end === -1) return this.cut('a processing instruction', 'processing instruction', this.at(start));
    this.i = end + 2;
  }

  private declaration(start: number): void {
    const s = this.s;
    DECLARATION.lastIndex = this.i;
    const m = DECLARATION.exec(s);
    if (!m) {
      if (s.indexOf('?>', this.i) === -1) return this.cut('the XML declaration', 'XML declaration', this.at(start));
      this.fail(
        'malformed XML declaration: expected <?xml version="1.0"?>, optionally with encoding="UTF-8" and ' +
          'standalone="yes" or "no" (the body is XML 1.0 sent as UTF-8)',
        start,
      );
    }
    const encoding = m[1] ?? m[2];
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      this.fail(`encoding="${encoding}" in the XML declaration: the body is sent as UTF-8, declare encoding="UTF-8"`, start);
    }
    this.i += m[0].length;
  }

  private endTag(start: number): void {
    const s = this.s;
    const st = this.st;
    this.i = start + 2;
    const name = this.name();
    if (name === undefined || this.i >= s.length) {
      if (this.i >= s.length) return this.cut('an element name', 'tag', this.at(start));
      this.fail("expected an element name after '</'", this.i);
    }
    this.space();
    if (this.i >= s.length) return this.cut(`the end tag </${name}>`, `end tag </${name}>`, this.at(start));
    if (s.charCodeAt(this.i) !== GT) this.fail(`expected '>' to end </${name}`, this.i);
    this.i++;
    const open = st.stack.at(-1);
    if (open === undefined) this.fail(`</${name}> has no matching start tag`, start);
    if (open !== name) this.fail(`</${name}> does not close <${open}>`, start);
    st.stack.pop();
    st.openedAt.pop();
    st.brackets = B0;
  }

  private startTag(start: number): void {
    const s = this.s;
    const st = this.st;
    this.i = start + 1;
    const name = this.name();
    if (name === undefined) this.fail("'<' must start a tag (write '&lt;' for '<')", start);
    if (this.i >= s.length) return this.cut('an element name', 'tag', this.at(start));
    if (st.stack.length === 0 && st.rootSeen) this.fail(`more than one root element: <${name}>`, start);
    st.tag = { name, attrs: [], at: this.at(start) };
    this.inTag();
  }

  /** Inside a start tag, after its name or an attribute value: attributes up to '>' or '/>'. */
  private inTag(): void {
    const s = this.s;
    const n = s.length;
    const st = this.st;
    const tag = st.tag as StartTag;
    st.mode = 'tag';
    let spaced = this.space();
    for (;;) {
      if (this.i >= n) return this.cut(`the start tag <${tag.name}>, outside attribute values`, `start tag <${tag.name}>`, tag.at);
      const c = s.charCodeAt(this.i);
      if (c === GT || (c === 0x2f && s.charCodeAt(this.i + 1) === GT)) {
        this.i += c === GT ? 1 : 2;
        if (st.stack.length === 0) st.rootSeen = true;
        if (c === GT) {
          st.stack.push(tag.name);
          st.openedAt.push(tag.at);
        }
        st.tag = undefined;
        st.mode = 'content';
        st.brackets = B0;
        return;
      }
      if (c === 0x2f && this.i + 1 >= n) return this.cut(`the start tag <${tag.name}>`, `start tag <${tag.name}>`, tag.at);
      if (!spaced) this.fail(`expected whitespace, '>' or '/>' in <${tag.name}>`, this.i);
      const attrAt = this.i;
      const attr = this.name();
      if (attr === undefined) this.fail(`expected an attribute name, '>' or '/>' in <${tag.name}>`, this.i);
      if (this.i >= n) return this.cut('an attribute name', `start tag <${tag.name}>`, tag.at);
      if (tag.attrs.includes(attr)) this.fail(`duplicate attribute '${attr}' in <${tag.name}>`, attrAt);
      this.space();
      if (this.i >= n) return this.cut(`the start tag <${tag.name}>, after attribute name '${attr}'`, `start tag <${tag.name}>`, tag.at);
      if (s.charCodeAt(this.i) !== 0x3d /* = */) this.fail(`expected '=' after attribute '${attr}'`, this.i);
      this.i++;
      this.space();
      if (this.i >= n) return this.cut(`an unquoted value of attribute '${attr}' (write ${attr}="…")`, `start tag <${tag.name}>`, tag.at);
      const q = s.charCodeAt(this.i);
      if (q !== 0x22 && q !== 0x27) this.fail(`the value of attribute '${attr}' must be quoted`, this.i);
      this.i++;
      tag.attrs.push(attr);
      st.mode = 'attr';
      st.quote = q;
      if (!this.attrValue()) return;
      st.mode = 'tag';
      spaced = this.space();
    }
  }

  /** Inside a quoted attribute value: true at its closing quote, false at the end of the chunk. */
  private attrValue(): boolean {
    const s = this.s;
    const n = s.length;
    const st = this.st;
    while (this.i < n) {
      const c = s.charCodeAt(this.i);
      if (c === st.quote) {
        this.i++;
        return true;
      }
      if (c === LT) this.fail(`'<' in the value of attribute '${st.tag?.attrs.at(-1) ?? ''}' (write '&lt;')`, this.i);
      if (c === AMP) {
        this.reference();
        if (this.dangling) return false;
        continue;
      }
      this.i++;
    }
    return false;
  }

  private cdata(): void {
    const s = this.s;
    const n = s.length;
    const st = this.st;
    while (this.i < n) {
      const c = s.charCodeAt(this.i++);
      if (c === RSQB) {
        st.brackets = afterBracket(st.brackets);
      } else if (c === GT && st.brackets & B2) {
        if (st.brackets !== B2) {
          this.fail("']]>' may end this CDATA section or not, depending on a merge field or section before it", this.i - 1);
        }
        st.mode = 'content';
        st.brackets = B0;
        return;
      } else {
        st.brackets = B0;
      }
    }
  }
}

/** Why `xml` is not a well-formed XML document (with its line and column), or undefined if it is. */
export function xmlProblem(xml: string): string | undefined {
  try {
    const lexer = new XmlLexer();
    lexer.feed(xml);
    lexer.end();
    return undefined;
  } catch (err) {
    if (!(err instanceof XmlProblem)) throw err;
    const { line, column } = lineColumn(xml, err.offset);
    return `${err.message} at line ${line}, column ${column} of the output`;
  }
}
