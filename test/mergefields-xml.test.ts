/**
 * XML merge-field templates never render malformed XML (issue #16): the structure is checked on
 * every branch when the template compiles, values are escaped for their position (text, attribute
 * value, CDATA), and every render checks its output as a last line.
 *
 * The property tests are in `mergefields-xml.property.test.ts`; the path through `emit()` in
 * `mergefields-xml.emit.test.ts`.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { TemplateSyntaxError } from '../src/errors.js';
import { compileTemplate } from '../src/mergefields/compile.js';
import { validateTemplate } from '../src/mergefields/validate.js';
import { xmlProblem } from '../src/mergefields/xml.js';

const xml = (source: string) => compileTemplate(source, 'application/xml');
const render = (source: string, data: unknown = {}) => {
  const out = xml(source).render(data);
  expect(XMLValidator.validate(out), out).toBe(true);
  return out;
};

/** The TemplateSyntaxError compiling `source` throws, with its position (fails when none is thrown). */
function refused(source: string): { message: string; line: number; column: number } {
  try {
    xml(source);
  } catch (err) {
    expect(err, source).toBeInstanceOf(TemplateSyntaxError);
    const { message, line, column } = err as TemplateSyntaxError;
    return { message, line, column };
  }
  throw new Error(`expected ${JSON.stringify(source)} to be refused`);
}

/** Parses keeping every character of text and attribute values, CDATA merged into the text. */
const exactParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  htmlEntities: true,
});
const parse = (out: string) => exactParser.parse(out) as Record<string, Record<string, unknown>>;

describe('XML templates: where merge fields may go', () => {
  it.each([
    ['<{{x}}/>', 'in an element name', 1, 2],
    ['<a{{x}}/>', 'in an element name', 1, 3],
    ['<r>\n  </{{x}}></r>', 'in an element name', 2, 5],
    ['<a {{x}}="1"/>', 'in the start tag <a>, outside attribute values', 1, 4],
    ['<a b{{x}}="1"/>', 'in an attribute name', 1, 5],
    ['<a {{x}}/>', 'in the start tag <a>, outside attribute values', 1, 4],
    ['<a b={{x}}/>', "in an unquoted value of attribute 'b'", 1, 6],
    ['<r><!-- {{x}} --></r>', 'in an XML comment', 1, 9],
    ['<r><?pi {{x}}?></r>', 'in a processing instruction', 1, 9],
    ['<?xml version="1.0" encoding="{{x}}"?><r/>', 'in the XML declaration', 1, 31],
    ['<!DOCTYPE {{x}}><r/>', 'in a DOCTYPE', 1, 11],
    ['<r>&am{{x}}p;</r>', 'in an entity reference', 1, 7],
    ['<r></r {{x}}>', 'in the end tag </r>', 1, 8],
  ])('refuses %s: merge field %s', (source, where, line, column) => {
    const error = refused(source);
    expect(error.message).toContain(`merge field ${where}`);
    expect(error.message).toContain('merge fields can only go in element text, quoted attribute values and CDATA sections');
    expect([error.line, error.column]).toEqual([line, column]);
  });

  it('refuses merge fields outside the root element', () => {
    for (const source of ['{{x}}<r/>', '<r/>{{x}}', '<r/>\n{{x}}']) {
      expect(refused(source).message, source).toMatch(/^merge field outside the root element/);
    }
  });

  it('accepts merge fields in text, in either kind of quoted attribute value and in CDATA', () => {
    const out = render(`<r a="{{x}}" b='{{x}}'>{{x}}<![CDATA[{{x}}]]></r>`, { x: 'v' });
    expect(out).toBe(`<r a="v" b='v'>v<![CDATA[v]]></r>`);
  });

  it('refuses section tags inside tags, comments and other markup, with the section named', () => {
    expect(refused('<r {{#if a}}b="1"{{/if}}/>')).toMatchObject({ line: 1, column: 4 });
    expect(refused('<r {{#if a}}b="1"{{/if}}/>').message).toMatch(/^\{\{#if\}\} in the start tag <r>, outside attribute values: sections can only start and end/);
    expect(refused('<r><!-- {{#each l}}x{{/each}} --></r>').message).toMatch(/^\{\{#each\}\} in an XML comment/);
    expect(refused('<r><a{{#if x}}b{{/if}}/></r>').message).toMatch(/^\{\{#if\}\} in an element name/);
  });
});

describe('XML templates: every combination of branches is well-formed', () => {
  it('refuses the fuzzer’s template, whose inner {{else}} opens an element only on one path', () => {
    const source = '<r>{{#if order.A}}{{#if order.B}}<ok/>{{else}}<broken>{{/if}}{{/if}}</r>';
    const error = refused(source);
    expect(error.message).toBe(
      'unbalanced XML in {{#if}} at line 1, column 19: one branch ends in the content of <r>, the other in the content of ' +
        '<r><broken>; each branch and body must close every element, attribute value and CDATA section it opens, and no ' +
        'other (line 1, column 55)',
    );
    expect(() => validateTemplate(source, 'application/xml')).toThrow(TemplateSyntaxError);
  });

  it.each([
    ['an #if body that opens an element', '<r>{{#if a}}<x>{{/if}}</x></r>', /its body starts in the content of <r> but ends in the content of <r><x>/],
    ['an #if body that closes the element around it', '<r><x>{{#if a}}</x>{{/if}}</r>', /ends in the content of <r>/],
    ['an #each body that closes the element around it', '<a>{{#each xs}}</a>{{/each}}', /its body starts in the content of <a> but ends at the top level/],
    ['an #each body that opens an element', '<r>{{#each xs}}<i>{{/each}}</r>', /the body is repeated for every item/],
    ['an #each {{else}} that opens an element', '<r>{{#each xs}}<i/>{{else}}<i>{{/each}}</r>', /its \{\{else\}\} branch starts/],
    ['an optional root element', '{{#if a}}<r/>{{/if}}', /exactly one root element on every path/],
    ['a repeated root element', '{{#each xs}}<r/>{{/each}}', /exactly one root element on every path/],
    ['branches ending in different attribute values', '<r a="{{#if x}}1" b="{{/if}}"/>', /inside the value of attribute 'a' of <r> but ends inside the value of attribute 'b'/],
    ['a branch that leaves a CDATA section open', '<r>{{#if x}}<![CDATA[{{/if}}]]></r>', /ends inside a CDATA section/],
    ['a branch that ends a CDATA section', '<r><![CDATA[{{#if x}}]]>{{/if}}</r>', /starts inside a CDATA section in <r> but ends in the content of <r>/],
  ])('refuses %s', (_name, source, message) => {
    const error = refused(source);
    expect(error.message).toMatch(/^unbalanced XML in \{\{#(if|unless|each)\}\} at line 1, column \d+: /);
    expect(error.message).toMatch(message);
  });

  it('refuses a template that is malformed on a path the sample data does not take', () => {
    // The save-time test renders used to miss this: {} and "every field set" both render <r><ok/></r>.
    expect(() => validateTemplate('<r>{{#if a}}{{#unless b}}<x>{{/unless}}<ok/>{{/if}}</r>', 'application/xml')).toThrow(
      TemplateSyntaxError,
    );
  });

  it('accepts sections that stay inside an attribute value, a CDATA section or the element content', () => {
    const source =
      '<r class="base{{#if vip}} vip{{/if}}" n=\'{{#each l}}{{this}}{{#unless @last}},{{/unless}}{{/each}}\'>' +
      '<![CDATA[{{#each l}}[{{this}}]{{/each}}]]>{{#each l}}<i n="{{@index}}">{{this}}</i>{{else}}<none/>{{/each}}</r>';
    expect(render(source, { vip: true, l: ['a', 'b'] })).toBe(
      '<r class="base vip" n=\'a,b\'><![CDATA[[a][b]]]><i n="0">a</i><i n="1">b</i></r>',
    );
    expect(parse(render(source, { vip: true, l: ['a', 'b'] })).r?.['#text']).toBe('[a][b]');
    expect(render(source, {})).toBe('<r class="base" n=\'\'><![CDATA[]]><none/></r>');
  });

  it('accepts branches that leave the XML in the same place, such as a conditional root or start tag', () => {
    const root = '<?xml version="1.0" encoding="UTF-8"?>\n{{#if paid}}<invoice/>{{else}}<quote/>{{/if}}\n';
    expect(render(root, { paid: 1 })).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<invoice/>\n');
    expect(render(root, {})).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<quote/>\n');
    const tag = '<r>{{#if vip}}<c level="gold">{{else}}<c>{{/if}}{{name}}</c></r>';
    expect(render(tag, { vip: true, name: 'A' })).toBe('<r><c level="gold">A</c></r>');
    expect(render(tag, { name: 'B' })).toBe('<r><c>B</c></r>');
    // The rule is the state each path leaves, not the tags: closing and reopening is the same place.
    const reopen = '<r><x>{{#unless a}}</x><x>{{/unless}}</x></r>';
    expect(render(reopen, {})).toBe('<r><x></x><x></x></r>');
    expect(render(reopen, { a: 1 })).toBe('<r><x></x></r>');
  });

  it('reports positions in the template source, counting the backslash of each \\{{', () => {
    expect(refused('<r>\\{{a}} \\{{b}} <x></y></r>')).toMatchObject({ line: 1, column: 21 });
    expect(refused('<r>\\{{a}}\n \\{{b}} <x>\\{{c}}</y></r>')).toMatchObject({ line: 2, column: 18 });
    expect(refused('<r>\\{{a}}<x attr="1" attr="2"/></r>')).toMatchObject({ line: 1, column: 22 });
  });

  it('keeps literal text that is XML markup elsewhere: \\{{ in a comment, }} and {{ in text', () => {
    expect(render('<!-- \\{{x}} --><r>\\{{x}} }}</r>', { x: 1 })).toBe('<!-- {{x}} --><r>{{x}} }}</r>');
  });
});

describe("XML templates: ']]>' never forms unseen", () => {
  it("refuses ']]>' in literal text and where a ']' before a merge field or section may complete it", () => {
    expect(refused('<r>a]]>b</r>').message).toMatch(/^']]>' is not allowed in element text/);
    expect(refused('<r>]]{{v}}></r>')).toMatchObject({ line: 1, column: 11 });
    expect(refused('<r>]{{#if a}}]{{/if}}></r>').message).toMatch(/^']]>' may form here in element text/);
    // Ends the CDATA section on one path and not on the other.
    expect(refused('<r><![CDATA[x]{{#if a}}]{{/if}}>]]></r>').message).toMatch(/may end this CDATA section or not/);
  });

  it("refuses an #each body whose '>' would follow the previous item's ']]'", () => {
    expect(refused('<r>{{#each l}}>]]{{/each}}</r>').message).toMatch(/^']]>' may form here in element text/);
    expect(refused('<r><![CDATA[{{#each l}}>]]{{/each}}]]></r>').message).toMatch(/may end this CDATA section or not/);
  });

  it("accepts ']' around merge fields and sections when no path forms ']]>'", () => {
    expect(render('<r>[1]{{#if a}}]{{/if}} {{v}}]</r>', { a: 1, v: ']' })).toBe('<r>[1]] &#93;]</r>');
    expect(render('<r>{{v}}]></r>', { v: 'x]' })).toBe('<r>x&#93;]></r>');
  });

  it("a ']]' before a merge field in CDATA: the value's leading '>' restarts the section", () => {
    const out = render('<r><![CDATA[x]]{{v}}]]></r>', { v: '>' });
    expect(out).toBe('<r><![CDATA[x]]]]><![CDATA[>]]></r>');
    expect(parse(out).r).toBe('x]]>');
  });
});

describe('XML templates: values in CDATA', () => {
  const template = xml('<r><![CDATA[{{v}}]]></r>');

  it('are not entity-escaped', () => {
    const out = template.render({ v: `<b>"Tom" & 'Jerry'</b>` });
    expect(out).toBe(`<r><![CDATA[<b>"Tom" & 'Jerry'</b>]]></r>`);
    expect(parse(out).r).toBe(`<b>"Tom" & 'Jerry'</b>`);
  });

  it("split ']]>' as ']]]]><![CDATA[>' and write CR between sections, so the value round-trips", () => {
    expect(template.render({ v: 'a]]>b' })).toBe('<r><![CDATA[a]]]]><![CDATA[>b]]></r>');
    expect(template.render({ v: 'a\r\nb' })).toBe('<r><![CDATA[a]]>&#13;<![CDATA[\nb]]></r>');
    expect(template.render({ v: 'x]' })).toBe('<r><![CDATA[x]]]><![CDATA[]]></r>');
    for (const v of ['a]]>b', ']]>', ']]]]>>', '>', ']>', ']', ']]', 'a\r\nb\rc', '<![CDATA[x]]>', ']]>\r>']) {
      const out = template.render({ v });
      expect(XMLValidator.validate(out), out).toBe(true);
      expect(xmlProblem(out), out).toBeUndefined();
      expect(parse(out).r ?? '', out).toBe(v);
    }
  });
});

describe('XML templates: attribute values', () => {
  it('write tab, LF and CR as character references, so attribute normalization keeps them', () => {
    const out = render(`<r a="{{v}}" b='{{v}}'/>`, { v: 'a\tb\nc\r\nd"\'' });
    expect(out).toBe(`<r a="a&#9;b&#10;c&#13;&#10;d&quot;&apos;" b='a&#9;b&#10;c&#13;&#10;d&quot;&apos;'/>`);
    expect(parse(out).r).toEqual({ '@a': 'a\tb\nc\r\nd"\'', '@b': 'a\tb\nc\r\nd"\'' });
  });
});

describe('XML templates: control characters and other characters XML 1.0 forbids', () => {
  it('are removed from values in every position (documented: stripped, not replaced)', () => {
    const v = 'a\u0000b\u0001c\u0008d\u000be\u000cf\u001fg\ufffeh\uffffi\ud800j\udc00k😀l';
    const out = render(`<r a="{{v}}"><t>{{v}}</t><![CDATA[{{v}}]]></r>`, { v });
    const doc = parse(out).r as Record<string, unknown>;
    expect(doc['@a']).toBe('abcdefghijk😀l');
    expect(doc.t).toBe('abcdefghijk😀l');
    expect(doc['#text']).toBe('abcdefghijk😀l');
  });

  it('are refused in the literal text of a template', () => {
    expect(refused('<r>a\u0001b</r>')).toMatchObject({ line: 1, column: 5 });
    expect(refused('<r>\ud800</r>').message).toMatch(/^character not allowed in XML/);
  });
});

describe('XML templates: declaration and DOCTYPE', () => {
  it('accept a declaration at the very start (after a BOM at most) and <!DOCTYPE name>', () => {
    for (const source of [
      '<?xml version="1.0"?><r/>',
      "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>\n<r/>",
      '\ufeff<?xml version="1.0" encoding="UTF-8"?><r/>',
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><!DOCTYPE r>\n<?pi data?><r/><!-- after -->\n',
    ]) {
      expect(render(source, {}), source).toBe(source);
    }
  });

  it.each([
    [' <?xml version="1.0"?><r/>', /^XML declaration not at the very start/],
    ['<r><?xml version="1.0"?></r>', /^XML declaration not at the very start/],
    ['{{#if a}}<?xml version="1.0"?>{{/if}}<r/>', /^XML declaration not at the very start/],
    ['<?XML version="1.0"?><r/>', /^'XML' is a reserved processing instruction target/],
    ['<?xml version="1.1"?><r/>', /^malformed XML declaration: expected <\?xml version="1.0"\?>/],
    ['<?xml encoding="UTF-8"?><r/>', /^malformed XML declaration/],
    ['<?xml version="1.0" encoding="ISO-8859-1"?><r/>', /^encoding="ISO-8859-1" in the XML declaration: the body is sent as UTF-8/],
    ['<!DOCTYPE r [<!ENTITY lol "lol">]><r>&lol;</r>', /^only <!DOCTYPE name> is allowed: an internal subset or external DTD .* XXE/],
    ['<!DOCTYPE r SYSTEM "http://attacker.example/x.dtd"><r/>', /^only <!DOCTYPE name> is allowed/],
    ['<!DOCTYPE r PUBLIC "-//X//EN" "x.dtd"><r/>', /^only <!DOCTYPE name> is allowed/],
    ['<!DOCTYPE r><!DOCTYPE r><r/>', /^a second DOCTYPE/],
    ['<r/><!DOCTYPE r>', /^DOCTYPE after the root element/],
    ['{{#if a}}<!DOCTYPE r>{{/if}}<r/>', /^DOCTYPE inside a section/],
    ['<!ENTITY x "y"><r/>', /^unknown markup after '<!'/],
  ])('refuses %s', (source, message) => {
    expect(refused(source).message).toMatch(message);
  });
});

describe('xmlProblem (the render-time check)', () => {
  it('accepts what fast-xml-parser accepts for these documents', () => {
    for (const doc of [
      '<r/>',
      '<r><!----></r>',
      '<r xmlns:a="urn:x"><a:b a:c="1"/></r >',
      '<?xml version="1.0"?>\n<!DOCTYPE r>\n<r>&#x1F600;&#233;&lt;</r>\n',
      '<r><![CDATA[a]]]]><![CDATA[>b]]>&#13;<![CDATA[]]></r>',
    ]) {
      expect(XMLValidator.validate(doc), doc).toBe(true);
      expect(xmlProblem(doc), doc).toBeUndefined();
    }
  });

  it.each([
    ['', 'no root element at line 1, column 1 of the output'],
    ['<r>', 'element <r> is not closed at line 1, column 1 of the output'],
    ['<a><b></a></b>', '</a> does not close <b> at line 1, column 7 of the output'],
    ['<r/>\n<r/>', 'more than one root element: <r> at line 2, column 1 of the output'],
    ['<r>x</r>y', 'text outside the root element at line 1, column 9 of the output'],
    ['<r a="1" a="2"/>', "duplicate attribute 'a' in <r> at line 1, column 10 of the output"],
    ['<r a="<"/>', "'<' in the value of attribute 'a' (write '&lt;') at line 1, column 7 of the output"],
    ['<r a=1/>', "the value of attribute 'a' must be quoted at line 1, column 6 of the output"],
    ['<r>&nbsp;</r>', "'&' must start an entity reference: &amp; &lt; &gt; &quot; &apos; or a character reference like &#233; (write '&amp;' for '&') at line 1, column 4 of the output"],
    ['<r>&#0;</r>', 'character reference &#0; to a character XML does not allow at line 1, column 4 of the output'],
    ['<r>]]></r>', "']]>' is not allowed in element text (write ']]&gt;') at line 1, column 6 of the output"],
    ['<r><!-- a -- b --></r>', "'--' inside an XML comment at line 1, column 11 of the output"],
    ['<r><!-- a ---></r>', "'--' inside an XML comment at line 1, column 11 of the output"],
    ['<r><![CDATA[x</r>', 'unterminated CDATA section at line 1, column 4 of the output'],
    ['<![CDATA[x]]><r/>', 'CDATA section outside the root element at line 1, column 1 of the output'],
    ['<r>\u0007</r>', 'character not allowed in XML (a control character, U+FFFE, U+FFFF or a lone surrogate) at line 1, column 4 of the output'],
    ['<?pi"x"?><r/>', "expected whitespace or '?>' after the processing instruction target at line 1, column 5 of the output"],
    ['<1r/>', "'<' must start a tag (write '&lt;' for '<') at line 1, column 1 of the output"],
  ])('refuses %j: %s', (doc, problem) => {
    expect(xmlProblem(doc)).toBe(problem);
  });
});
