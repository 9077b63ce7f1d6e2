/**
 * Property tests of issue #16 ("never send malformed"), XML part: every XML template the library
 * accepts renders well-formed XML for any data, values read back exactly, and the render-time
 * checker never accepts what fast-xml-parser's validator rejects.
 *
 * The templates are adversarial: a grammar of well-formed documents with merge fields and sections
 * in every position (text, attribute values, CDATA, comments, PIs, declaration, DOCTYPE, names),
 * nested #if/#unless/#each, literal `<`, `&`, `]]>` — half of them then mutated by inserting a
 * random token (markup, a quote, a placeholder, a section tag) or deleting a slice — and small
 * templates of raw markup tokens inside nested sections.
 */
import fc from 'fast-check';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { TemplateSyntaxError } from '../src/errors.js';
import { compileTemplate } from '../src/mergefields/compile.js';
import { validateTemplate } from '../src/mergefields/validate.js';
import { xmlProblem } from '../src/mergefields/xml.js';

const RUNS = 10_000;

// ---- data ----

const HOSTILE = [
  '', '<', '>', '&', '"', "'", ']]>', ']]', ']', ']>', '>x', 'x]', '\r\n', '\r', '\n', '\t', '\u0000', '\u0007',
  '\u001f', '\u007f', '\u0085', '\ufffe', '\uffff', '\ud800', 'a\udc00b', '😀', 'é', '</a><b x="1">', '<![CDATA[x]]>',
  '&amp;', '&#0;', '<!-- -->', '<?xml version="1.0"?>', '{{v}}', '{{#if a}}', '\u2028', '-->',
];
const markupChar = fc.constantFrom('<', '>', '&', ']', '"', "'", '\r', '\n', '\t', '\u0001', '\ud800', 'a', ' ', '-', '?', '!');
const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.string({ unit: markupChar, maxLength: 10 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

/** Arbitrary data: hostile strings, numbers, booleans, null, dates, bigints, nested arrays and objects. */
const value: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.oneof(fc.integer(), fc.double(), fc.bigInt(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.date()),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('v', 'x', 'c', 'list', '__proto__', '<k>'), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const element = fc.oneof(fc.record({ v: value, x: value }, { requiredKeys: [] }), value);
const data = fc.record(
  {
    v: value,
    a: value,
    b: fc.oneof(fc.record({ c: value, list: fc.array(element, { maxLength: 3 }) }, { requiredKeys: [] }), value),
    list: fc.array(element, { maxLength: 3 }),
    n: fc.oneof(fc.double(), fc.integer(), hostileString),
  },
  { requiredKeys: [] },
);

// ---- templates ----

const FORMATTERS = ['', '', '', ' | upper', ' | json', ' | default:"<&]]>"', ' | truncate:2', ' | number:2', ' | trim'];
const placeholder = (inEach: boolean) =>
  fc
    .tuple(
      fc.constantFrom(...(inEach ? ['this', 'v', 'x', '@index', '@last', '@root.v', 'this.x'] : ['v', 'a', 'b.c', 'list', 'n', 'missing'])),
      fc.constantFrom(...FORMATTERS),
    )
    .map(([path, f]) => `{{${path}${f}}}`);

const condition = fc.constantFrom('a', 'v', 'b.c', 'list', 'missing');
const eachPath = fc.constantFrom('list', 'b.list', 'v', 'a');

/** `{{#if}}`/`{{#unless}}` (with or without else) or `{{#each}}` (with or without else) around `body`. */
function section(body: (inEach: boolean) => fc.Arbitrary<string>, inEach: boolean): fc.Arbitrary<string> {
  return fc.oneof(
    fc
      .tuple(fc.constantFrom('if', 'unless'), condition, body(inEach), fc.option(body(inEach), { nil: undefined }))
      .map(([kind, path, then, otherwise]) =>
        otherwise === undefined ? `{{#${kind} ${path}}}${then}{{/${kind}}}` : `{{#${kind} ${path}}}${then}{{else}}${otherwise}{{/${kind}}}`,
      ),
    fc
      .tuple(eachPath, body(true), fc.option(body(inEach), { nil: undefined }))
      .map(([path, then, otherwise]) =>
        otherwise === undefined ? `{{#each ${path}}}${then}{{/each}}` : `{{#each ${path}}}${then}{{else}}${otherwise}{{/each}}`,
      ),
  );
}

/** Content of a quoted attribute value (`quote` itself never appears literally). */
function attrContent(quote: string, depth: number): (inEach: boolean) => fc.Arbitrary<string> {
  return (inEach) => {
    const literal = fc.constantFrom('x', ' ', '&amp;', '&#10;', '>', ']]>', '\t', '}}', quote === '"' ? "'" : '"');
    const parts: fc.Arbitrary<string>[] = [literal, placeholder(inEach)];
    if (depth > 0) parts.push(section(attrContent(quote, depth - 1), inEach));
    return fc.array(fc.oneof(...parts), { maxLength: 3 }).map((p) => p.join(''));
  };
}

/** Content of a CDATA section: `]`, `]]` and `>` next to placeholders and section boundaries. */
function cdataContent(depth: number): (inEach: boolean) => fc.Arbitrary<string> {
  return (inEach) => {
    const literal = fc.constantFrom('x', ']', ']]', '>', ']>', '<b>&</b>', ' ', '\n');
    const parts: fc.Arbitrary<string>[] = [literal, placeholder(inEach), placeholder(inEach)];
    if (depth > 0) parts.push(section(cdataContent(depth - 1), inEach));
    return fc.array(fc.oneof(...parts), { maxLength: 4 }).map((p) => p.join(''));
  };
}

const NAMES = ['a', 'b', 'ns:x', 'é'];
const ATTRS = ['k', 'm', 'ns:q', 'xml:lang'];

function startTag(inEach: boolean, depth: number): fc.Arbitrary<{ name: string; open: string }> {
  const attr = fc
    .tuple(fc.constantFrom('"', "'"), fc.constantFrom(' ', '\n  '))
    .chain(([q, space]) => attrContent(q, Math.min(depth, 1))(inEach).map((v) => ({ q, space, v })));
  return fc
    .tuple(fc.constantFrom(...NAMES), fc.uniqueArray(fc.tuple(fc.constantFrom(...ATTRS), attr), { selector: ([n]) => n, maxLength: 2 }))
    .map(([name, attrs]) => ({ name, open: `<${name}${attrs.map(([n, { q, space, v }]) => `${space}${n}=${q}${v}${q}`).join('')}` }));
}

const fragment = fc
  .array(fc.constantFrom('<x>', '</x>', '<x/>', 't', '{{v}}', '<![CDATA[', ']]>', ']', '>', '<!--', '-->', '"'), { maxLength: 3 })
  .map((parts) => parts.join(''));

function content(depth: number): (inEach: boolean) => fc.Arbitrary<string> {
  return (inEach) => {
    const text = fc.constantFrom('t', ' ', '\n  ', '&amp;', '&lt;', '&#x1F600;', '>', ']', ']]', '}}', '{ ', "'", '"', '\\{{x}}', 'é😀');
    const parts: fc.Arbitrary<string>[] = [
      text,
      placeholder(inEach),
      placeholder(inEach),
      cdataContent(1)(inEach).map((c) => `<![CDATA[${c}]]>`),
      fc.constantFrom('<!-- comment -->', '<!---->', '<?pi data?>', '<?pi?>'),
    ];
    if (depth > 0) {
      parts.push(
        elementOf(depth - 1, inEach),
        elementOf(depth - 1, inEach),
        section(content(depth - 1), inEach),
        // Sections around raw markup fragments: mostly unbalanced, sometimes balanced by accident.
        fc
          .tuple(fc.constantFrom('if', 'unless', 'each'), fragment, fc.option(fragment, { nil: undefined }), fc.constantFrom('', '</x>', '<x>'))
          .map(([kind, then, otherwise, after]) => {
            const path = kind === 'each' ? 'list' : 'a';
            return `{{#${kind} ${path}}}${then}${otherwise === undefined ? '' : `{{else}}${otherwise}`}{{/${kind}}}${after}`;
          }),
        // Branches that open the same element differently and close it after the section.
        fc
          .tuple(condition, startTag(inEach, depth - 1), content(depth - 1)(inEach))
          .map(([c, { name, open }, kids]) => `{{#if ${c}}}${open}>{{else}}<${name}>{{/if}}${kids}</${name}>`),
      );
    }
    return fc.array(fc.oneof(...parts), { maxLength: 4 }).map((p) => p.join(''));
  };
}

function elementOf(depth: number, inEach: boolean): fc.Arbitrary<string> {
  return fc
    .tuple(startTag(inEach, depth), content(depth)(inEach), fc.boolean())
    .map(([{ name, open }, kids, selfClose]) => (selfClose && kids === '' ? `${open}/>` : `${open}>${kids}</${name}>`));
}

const misc = fc.constantFrom('', '', '\n', '<!-- c -->', '<?pi x?>', ' \n');
const wellFormed = fc
  .tuple(
    // Mostly accepted prologs, sometimes refused ones (XML 1.1, an internal subset, an external DTD).
    fc.constantFrom('', '', '', '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0' standalone='no'?>", '\ufeff', '<?xml version="1.1"?>'),
    misc,
    fc.constantFrom('', '', '', '', '', '<!DOCTYPE a>', '<!DOCTYPE a>', '<!DOCTYPE a [<!ENTITY e "x">]>', '<!DOCTYPE a SYSTEM "a.dtd">'),
    misc,
    fc.oneof(
      { weight: 4, arbitrary: elementOf(2, false) },
      { weight: 1, arbitrary: fc.tuple(condition, elementOf(1, false), elementOf(1, false)).map(([c, x, y]) => `{{#if ${c}}}${x}{{else}}${y}{{/if}}`) },
    ),
    misc,
  )
  .map((parts) => parts.join(''));

const TOKENS = [
  '<', '>', '/>', '</a>', '<a>', '<b k="', '"', "'", '=', ' ', '&', '&amp;', ']]>', ']', '<![CDATA[', '<!--', '-->', '<?pi ', '?>',
  '<?xml version="1.0"?>', '<!DOCTYPE a>', '\u0001', '{{v}}', '{{x}}', '{{#if a}}', '{{#unless v}}', '{{else}}', '{{/if}}', '{{/unless}}',
  '{{#each list}}', '{{/each}}', '{{this}}', '\\{{v}}',
];
const mutated = fc.oneof(
  fc.tuple(wellFormed, fc.nat(), fc.constantFrom(...TOKENS)).map(([t, at, token]) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + token + t.slice(i);
  }),
  fc.tuple(wellFormed, fc.nat(), fc.integer({ min: 1, max: 12 })).map(([t, at, length]) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + t.slice(i + length);
  }),
);
/**
 * Small templates of raw markup tokens and nested sections inside a root: each branch is as likely
 * to be unbalanced as balanced, so the branch rules are exercised one at a time.
 */
const { piece, section: rawSection } = fc.letrec<{ piece: string; section: string }>((tie) => ({
  piece: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('<x>', '</x>', '<x/>', '<y k="', '">', 't', '{{v}}', '<![CDATA[', ']]>', ']', ']]', '>', '<!--', '-->'),
    tie('section'),
  ),
  section: fc
    .tuple(
      fc.constantFrom('if a', 'unless v', 'each list'),
      fc.array(tie('piece'), { maxLength: 3 }),
      fc.option(fc.array(tie('piece'), { maxLength: 3 }), { nil: undefined }),
    )
    .map(([open, then, otherwise]) => {
      const kind = open.split(' ')[0] as string;
      return `{{#${open}}}${then.join('')}${otherwise === undefined ? '' : `{{else}}${otherwise.join('')}`}{{/${kind}}}`;
    }),
}));
// A section, then what closes what one of its branches may have opened.
const small = fc
  .tuple(fc.array(piece, { maxLength: 2 }), rawSection, fc.constantFrom('', '</x>', '">', ']]>', '-->', '</x></x>'), fc.array(piece, { maxLength: 2 }))
  .map(([before, s, closer, after]) => `<a>${before.join('')}${s}${closer}${after.join('')}</a>`);

const template = fc.oneof(
  { weight: 2, arbitrary: wellFormed },
  { weight: 1, arbitrary: mutated },
  { weight: 1, arbitrary: small },
);

// ---- helpers ----

/** Parses keeping every character of text and attribute values, CDATA merged into the text. */
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  htmlEntities: true,
});

/** What a string value is expected to read back as: itself without the characters XML 1.0 forbids. */
const allowed = (s: string): string =>
  s
    // eslint-disable-next-line no-control-regex -- the characters XML 1.0 forbids
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '');

describe('XML templates (property-based, issue #16)', () => {
  it(`every template that compiles renders well-formed XML for any data (${RUNS} adversarial templates)`, () => {
    let accepted = 0;
    let mentionsSections = 0;
    fc.assert(
      fc.property(template, data, (source, value) => {
        let compiled;
        try {
          compiled = compileTemplate(source, 'application/xml');
        } catch (err) {
          // Refused: always a positioned syntax error, never anything else.
          expect(err, String(err)).toBeInstanceOf(TemplateSyntaxError);
          const { line, column } = err as TemplateSyntaxError;
          const lines = source.split('\n');
          expect(line).toBeGreaterThanOrEqual(1);
          expect(line).toBeLessThanOrEqual(lines.length);
          expect(column).toBeGreaterThanOrEqual(1);
          expect(column).toBeLessThanOrEqual((lines[line - 1]?.length ?? 0) + 1);
          return;
        }
        accepted++;
        if (source.includes('{{#')) mentionsSections++;
        // Accepted: every render, on whatever branches this data takes, is well-formed; the
        // render-time check never has to step in (render does not throw).
        const out = compiled.render(value);
        expect(XMLValidator.validate(out), out).toBe(true);
        expect(xmlProblem(out), out).toBeUndefined();
        // And the save-time check accepts it, with this data as the sample.
        validateTemplate(source, 'application/xml', value);
      }),
      { numRuns: RUNS },
    );
    // Not vacuous: a good share of the templates compile (about a quarter), many of them with sections.
    expect(accepted).toBeGreaterThan(RUNS * 0.2);
    expect(mentionsSections).toBeGreaterThan(RUNS * 0.1);
  });

  it('string values read back exactly from text, both attribute quotes and CDATA, next to ] and sections', () => {
    const t = compileTemplate(
      '<r a="{{v}}" b=\'{{v}}\'><t>{{v}}</t><f>[{{v}}]</f><c><![CDATA[{{v}}]]></c><d><![CDATA[]]{{v}}]]></d>' +
        '<e><![CDATA[{{v}}]{{v}}]]></e><g>{{#each list}}<i>{{this}}</i>{{/each}}</g></r>',
      'application/xml',
    );
    fc.assert(
      fc.property(hostileString, fc.array(hostileString, { minLength: 1, maxLength: 3 }), (v, list) => {
        const out = t.render({ v, list });
        expect(XMLValidator.validate(out), out).toBe(true);
        const doc = (parser.parse(out) as { r: Record<string, unknown> }).r;
        const s = allowed(v);
        const text = (x: unknown) => (x === undefined ? '' : x);
        expect(doc['@a']).toBe(s);
        expect(doc['@b']).toBe(s);
        expect(text(doc.t)).toBe(s);
        expect(text(doc.f)).toBe(`[${s}]`);
        expect(text(doc.c)).toBe(s);
        expect(text(doc.d)).toBe(`]]${s}`);
        expect(text(doc.e)).toBe(`${s}]${s}`);
        const i = (doc.g as { i?: unknown }).i;
        expect((Array.isArray(i) ? i : [i]).map(text)).toEqual(list.map(allowed));
      }),
      { numRuns: 2_000 },
    );
  });

  it('the render-time checker never accepts what fast-xml-parser rejects', () => {
    const token = fc.constantFrom(
      '<', '>', '/', '</', '/>', '<!--', '-->', '-', '<![CDATA[', ']]>', ']', '<?', '?>', '<?xml', ' version="1.0"', '<!DOCTYPE',
      ' r', 'r', 'a', 'ns:x', ' ', '\n', '\r', '\t', '=', '"', "'", '&', '&amp;', '&#13;', '&#x0;', 'x', 'é', '😀', '\u0001',
      '\ufeff', '\u1680', '\u00a0', '1', '.', '\u0300',
    );
    const near = fc.oneof(
      fc.array(token, { maxLength: 16 }).map((a) => a.join('')),
      fc.tuple(fc.array(token, { maxLength: 8 }), fc.array(token, { maxLength: 8 })).map(([a, b]) => `<r${a.join('')}>${b.join('')}</r>`),
      fc.tuple(fc.array(token, { maxLength: 6 }), fc.array(token, { maxLength: 10 })).map(([a, b]) => `${a.join('')}<r>${b.join('')}</r>`),
    );
    fc.assert(
      fc.property(near, (doc) => {
        if (xmlProblem(doc) === undefined) expect(XMLValidator.validate(doc), doc).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });
});
