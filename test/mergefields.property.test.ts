import fc from 'fast-check';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { TemplateRenderError, TemplateSyntaxError } from '../src/errors.js';
import { compileTemplate, type PayloadMimeType } from '../src/mergefields/compile.js';
import { validateTemplate } from '../src/mergefields/validate.js';

const RUNS = { numRuns: 300 };

const HOSTILE = [
  '"}, "admin": true, "x": "',
  '</a><b>',
  ']]>',
  '{{b.c}}',
  '\\',
  '\r\n',
  '\u2028\u2029',
  '\ud800',
  '\udfff',
  '😀',
  '\u0000\u001f',
  '\ufffe',
  '&amp;',
  "'\"",
];

const anything = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withDate: true,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  stringUnit: 'binary',
});

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ unit: 'binary', maxLength: 20 }));

/** Data shaped like the paths the templates use, with arbitrary (and hostile) leaves. */
const data = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    a: fc.oneof(anything, hostileString),
    b: fc.oneof(fc.record({ c: fc.oneof(anything, hostileString, fc.record({ d: anything })) }), anything),
    list: fc.array(
      fc.oneof(fc.record({ x: fc.oneof(anything, hostileString), y: hostileString, a: anything }), anything),
      { maxLength: 4 },
    ),
    str: hostileString,
    num: fc.oneof(fc.double(), fc.integer()),
    date: fc.oneof(fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'invalid' : d.toISOString())), fc.date()),
  }) },
  { weight: 1, arbitrary: anything },
);

const PATHS = [
  'a',
  'b',
  'b.c',
  'b.c.d',
  'list',
  'list[0]',
  'list.1.x',
  'str',
  'num',
  'date',
  'this',
  '@root.b.c',
  'nope.deeper',
  '__proto__.x',
  'constructor.name',
  'list.length',
];
const EACH_PATHS = [...PATHS, 'x', 'y', 'this.x', '@index', '@first', '@last'];
const FORMATTERS = [
  '',
  '',
  ' | upper',
  ' | lower | trim',
  ' | truncate:3',
  ' | number',
  ' | number:2',
  ' | currency:EUR',
  ' | currency:JPY:ja-JP',
  ' | date',
  ' | date:unix',
  ' | date:"yyyy-MM-dd HH:mm:ss"',
  ' | json',
  ' | json | truncate:5',
  ' | default:"n/a"',
  ' | default:0 | number',
];

const placeholder = (inEach: boolean) =>
  fc
    .tuple(fc.constantFrom(...(inEach ? EACH_PATHS : PATHS)), fc.constantFrom(...FORMATTERS), fc.constantFrom('', ' '))
    .map(([path, formatter, ws]) => `{{${ws}${path}${formatter}${ws}}}`);

// ---- JSON templates ----

/** Text inside a JSON string literal: literal fragments (with valid escapes) and placeholders. */
const jsonStringBody = (inEach: boolean) =>
  fc
    .array(
      fc.oneof(
        placeholder(inEach),
        fc.constantFrom('text', ' ', '\\"', '\\\\', '\\n', '\\u00e9', '<&>', "'", '{ ', '}', '}}', '\\{{x}}'),
        // A brace right before a tag, and an escaped JSON backslash right before a tag.
        placeholder(inEach).map((p) => `{${p}`),
        placeholder(inEach).map((p) => `\\\\${p}`),
      ),
      { maxLength: 4 },
    )
    .map((parts) => parts.join(''));

const jsonString = (inEach: boolean) => jsonStringBody(inEach).map((s) => `"${s}"`);

function jsonValue(inEach: boolean, depth: number): fc.Arbitrary<string> {
  const leaves = [
    placeholder(inEach),
    jsonString(inEach),
    fc.constantFrom('1', '-2.5e3', 'true', 'false', 'null', '"lit"', '{}', '[]'),
  ];
  if (depth <= 0) return fc.oneof(...leaves);
  const inner = jsonValue(inEach, depth - 1);
  const innerEach = jsonValue(true, depth - 1);
  const section = fc.constantFrom('if', 'unless');
  const path = fc.constantFrom(...(inEach ? EACH_PATHS : PATHS));
  return fc.oneof(
    ...leaves,
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom('"k"', '"k2"'), jsonString(inEach)), inner), { maxLength: 4 })
      .map((entries) => `{${entries.map(([k, v]) => `${k}: ${v}`).join(', ')}}`),
    fc.array(inner, { maxLength: 4 }).map((items) => `[${items.join(', ')}]`),
    fc
      .tuple(path, innerEach, fc.boolean())
      .map(([p, v, withElse]) => `[{{#each ${p}}}${v}{{#unless @last}}, {{/unless}}${withElse ? '{{else}}' : ''}{{/each}}]`),
    fc.tuple(section, path, inner, inner).map(([s, p, v1, v2]) => `{{#${s} ${p}}}${v1}{{else}}${v2}{{/${s}}}`),
    // Sections inside a string literal, balanced.
    fc
      .tuple(path, jsonStringBody(true), jsonStringBody(inEach))
      .map(([p, body, tail]) => `"{{#each ${p}}}${body}{{#unless @last}}; {{/unless}}{{/each}}${tail}"`),
  );
}

const jsonTemplate = fc.oneof(
  jsonValue(false, 3),
  fc
    .array(fc.tuple(fc.constantFrom('"id"', '"code"', '"lines"'), jsonValue(false, 2)), { maxLength: 5 })
    .map((entries) => `{\n${entries.map(([k, v]) => `  ${k}: ${v}`).join(',\n')}\n}`),
);

// ---- XML templates ----

const xmlAttrValue = (inEach: boolean) =>
  fc
    .array(fc.oneof(placeholder(inEach), fc.constantFrom('x', ' ', '&amp;', "'", '>', '}}')), { maxLength: 3 })
    .map((parts) => parts.join(''));

function xmlElement(inEach: boolean, depth: number): fc.Arbitrary<string> {
  const name = fc.constantFrom('a', 'b', 'item', 'ns:x');
  const attrs = fc
    .array(xmlAttrValue(inEach), { maxLength: 2 })
    .map((values) => values.map((v, i) => ` at${i}="${v}"`).join(''));
  const text = fc.constantFrom('text', ' ', '\n  ', '&amp;', '&#233;', '>', '}}', '{ ', "'", '"', '\\{{x}}');
  const children: fc.Arbitrary<string>[] = [
    placeholder(inEach),
    text,
    placeholder(inEach).map((p) => `<![CDATA[${p}]]>`),
    fc.constant('<!-- comment -->'),
  ];
  if (depth > 0) {
    const path = fc.constantFrom(...(inEach ? EACH_PATHS : PATHS));
    children.push(
      xmlElement(inEach, depth - 1),
      fc.tuple(path, xmlElement(true, depth - 1)).map(([p, el]) => `{{#each ${p}}}${el}{{/each}}`),
      fc
        .tuple(fc.constantFrom('if', 'unless'), path, xmlElement(inEach, depth - 1), xmlElement(inEach, depth - 1))
        .map(([s, p, e1, e2]) => `{{#${s} ${p}}}${e1}{{else}}${e2}{{/${s}}}`),
    );
  }
  return fc
    .tuple(name, attrs, fc.array(fc.oneof(...children), { maxLength: 4 }), fc.boolean())
    .map(([n, a, kids, selfClose]) => (selfClose && kids.length === 0 ? `<${n}${a}/>` : `<${n}${a}>${kids.join('')}</${n}>`));
}

const xmlTemplate = fc
  .tuple(fc.boolean(), xmlElement(false, 3))
  .map(([decl, root]) => `${decl ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ''}${root}`);

// ---- text templates ----

const textTemplate = fc
  .array(
    fc.oneof(
      placeholder(false),
      placeholder(false).map((p) => `{${p}`),
      fc.constantFrom('text', '\n', '{ ', '}}', '"', '<', '\\{{x}}', '\\\\'),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join(''));

const withoutProtoKeys = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (key, value: unknown) => (key === '__proto__' ? undefined : value)));

describe('merge-field templates (property-based)', () => {
  it('JSON templates always render parseable JSON, whatever the data', () => {
    fc.assert(
      fc.property(jsonTemplate, data, (source, value) => {
        const template = compileTemplate(source, 'application/json');
        const out = template.render(value);
        expect(() => JSON.parse(out)).not.toThrow();
      }),
      RUNS,
    );
  });

  it('XML templates always render well-formed XML, whatever the data', () => {
    fc.assert(
      fc.property(xmlTemplate, data, (source, value) => {
        const out = compileTemplate(source, 'application/xml').render(value);
        expect(XMLValidator.validate(out)).toBe(true);
        // The save-time check (own well-formedness checker) agrees.
        validateTemplate(source, 'application/xml', value);
      }),
      RUNS,
    );
  });

  it('arbitrary template text fails only with positioned TemplateSyntaxError / TemplateRenderError', () => {
    const soup = fc
      .array(
        fc.constantFrom(
          '{{', '}}', '{{#each ', '{{#if ', '{{#unless ', '{{/each}}', '{{/if}}', '{{/unless}}', '{{else}}', 'list', 'a',
          'b.c', '.', '[0]', '[', '|', ' upper', ' number:2', ' default:"x"', ':', '"', '\\', ' ', '@index', '@last',
          'this', '{', '}', ',', '\n', '<', '>', '/', 'é', '😀',
        ),
        { maxLength: 30 },
      )
      .map((parts) => parts.join(''));
    const mime = fc.constantFrom<PayloadMimeType>('application/json', 'application/xml', 'text/plain');
    fc.assert(
      fc.property(soup, mime, data, (source, mimeType, value) => {
        let template;
        try {
          template = compileTemplate(source, mimeType);
        } catch (err) {
          expect(err).toBeInstanceOf(TemplateSyntaxError);
          const { line, column } = err as TemplateSyntaxError;
          const lines = source.split('\n');
          expect(line).toBeGreaterThanOrEqual(1);
          expect(line).toBeLessThanOrEqual(lines.length);
          expect(column).toBeGreaterThanOrEqual(1);
          expect(column).toBeLessThanOrEqual((lines[line - 1]?.length ?? 0) + 1);
          return;
        }
        try {
          const out = template.render(value);
          if (mimeType === 'application/json') JSON.parse(out);
        } catch (err) {
          expect(err).toBeInstanceOf(TemplateRenderError);
          expect(mimeType).toBe('application/json');
        }
      }),
      RUNS,
    );
  });

  it('text templates never throw on data shape', () => {
    fc.assert(
      fc.property(textTemplate, data, (source, value) => {
        expect(typeof compileTemplate(source, 'text/plain').render(value)).toBe('string');
      }),
      RUNS,
    );
  });

  it('strings round-trip exactly through JSON string and value positions and text', () => {
    const json = compileTemplate('{"s": "{{v}}", "v": {{v}}, "w": "<{{v}}>"}', 'application/json');
    const text = compileTemplate('[{{v}}]', 'text/plain');
    fc.assert(
      fc.property(hostileString, (v) => {
        expect(JSON.parse(json.render({ v }))).toEqual({ s: v, v, w: `<${v}>` });
        expect(text.render({ v })).toBe(`[${v}]`);
      }),
      RUNS,
    );
  });

  it('JSON values in value position round-trip like JSON.stringify', () => {
    const template = compileTemplate('{"v": {{v}}, "s": "{{v}}"}', 'application/json');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        const out = JSON.parse(template.render({ v })) as { v: unknown; s: string };
        const expected = withoutProtoKeys(v);
        expect(out.v).toEqual(expected);
        if (typeof v === 'object' && v !== null) expect(JSON.parse(out.s)).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('strings round-trip through XML text with only forbidden characters removed', () => {
    const parser = new XMLParser({ trimValues: false, parseTagValue: false, processEntities: true, htmlEntities: true });
    const template = compileTemplate('<r>[{{v}}]</r>', 'application/xml');
    fc.assert(
      fc.property(hostileString, (v) => {
        const out = template.render({ v });
        expect(XMLValidator.validate(out)).toBe(true);
        const expected = v
          // eslint-disable-next-line no-control-regex -- the characters XML 1.0 forbids
          .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
          .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '');
        expect((parser.parse(out) as { r: string }).r).toBe(`[${expected}]`);
      }),
      RUNS,
    );
  });
});
