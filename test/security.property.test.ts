/**
 * Property-based security tests (fast-check): whatever a merchant types as header names and
 * values, URLs or templates, and whatever a network peer sends as signature headers, the library
 * either accepts something safe or fails with its own typed error — never anything else, and never
 * an injection.
 */
import { isCredentialHeader } from '../src/credentials/mask.js';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  TemplateRenderError,
  TemplateSyntaxError,
  MemoryStorage,
  WebhookDispatcher,
  WebhookValidationError,
  WebhookVerificationError,
  generateSecret,
  sign,
  verifySignature,
  type PayloadMimeType,
} from 'webhook-dispatcher';
import { checkUrlHost } from 'webhook-dispatcher/transport';
import { compileTemplate } from '../src/mergefields/compile.js';

const RUNS = { numRuns: 300 };
const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const URL_OK = 'https://merchant.example/hooks';

// A dispatcher that never sends: validation only (no opt-out of the address guard).
// The storage is read directly: the dispatcher's answers mask credential header values.
const storage = new MemoryStorage();
const dispatcher = new WebhookDispatcher({ storage, autoStart: false });
/** The headers as stored (what deliveries send), not as a read shows them. */
const storedHeaders = async (id: string): Promise<Record<string, string>> => (await storage.getWebhook(id))?.headers ?? {};
afterAll(() => dispatcher.close());

/** RFC 9110 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'content-type',
  'user-agent',
  'x-pakk-webhookid',
  'x-pakk-webhook-triggerevent',
  'x-pakk-webhook-triggerentity',
  'x-pakk-webhook-signature',
  'x-pakk-webhook-test',
]);

/** Characters that matter for header injection, mixed with ordinary ones. */
const HEADER_CHARS = [
  'a', 'Z', '0', '-', '_', '.', '!', '~', ' ', '\t', ':', ';', '"', '\\', '/', '(', '=',
  '\r', '\n', '\0', '\u000b', '\u000c', '\u001b', '\u007f', '\u0085', '\u00a0', '\u00e9', '\u00ff',
  '\u0100', '\u010a', '\u010d', '\u2028', '\u2029', '\ufeff', '\ud800', '\udc00', '😀',
];

/** Randomly re-cases a string. */
const recased = (names: readonly string[]) =>
  fc
    .tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }))
    .map(([name, flips]) => [...name].map((ch, i) => (flips[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''));

const headerName = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/) },
  { weight: 2, arbitrary: fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}$/) },
  fc.string({ unit: fc.constantFrom(...HEADER_CHARS), minLength: 0, maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  recased([...RESERVED, 'Authorization', 'X-Api-Key']),
);

/** Values built only from characters that are allowed, so that acceptance is exercised too. */
const allowedValue = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '\t', '"', '\\', ':', '~', '\u0085', '\u00a0', '\u00e9', '\u00ff'), maxLength: 20 });

const headerValue = fc.oneof(
  { weight: 8, arbitrary: allowedValue },
  // An allowed value with one hostile character spliced in.
  {
    weight: 3,
    arbitrary: fc
      .tuple(allowedValue, fc.constantFrom(...HEADER_CHARS), allowedValue)
      .map(([before, ch, after]) => before + ch + after),
  },
  fc.string({ unit: fc.constantFrom(...HEADER_CHARS), maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme-composite', maxLength: 10 }),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('v\r\nX-Injected: 1', 'v\u2028X-Injected: 1', 'v\u010d\u010aX-Injected: 1', 'Bearer abc', ''),
);

/** One header (computed keys make even `__proto__` an own property), or several. */
const headersArb = fc.oneof(
  fc.tuple(headerName, headerValue).map(([name, value]): Record<string, string> => ({ [name]: value })),
  fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
);

const isValidation = (error: unknown): boolean => error instanceof WebhookValidationError;

describe('header validation (createWebhook)', () => {
  it('accepts only token names and CR/LF/NUL-free values that Node would put on the wire unchanged; otherwise WebhookValidationError', async () => {
    await fc.assert(
      fc.asyncProperty(headersArb, async (headers) => {
        let hook;
        try {
          hook = await dispatcher.createWebhook({ url: URL_OK, triggers: ORDER_CREATE, headers });
        } catch (error) {
          expect(isValidation(error), String(error)).toBe(true);
          return;
        }
        for (const [name, value] of Object.entries(await storedHeaders(hook.id))) {
          expect(name).toMatch(TOKEN);
          expect(RESERVED.has(name.toLowerCase()), name).toBe(false);
          expect(value).not.toMatch(/[\r\n\0]/);
          // Nothing above U+00FF (which a latin1 encoder could truncate to CR/LF), no other controls.
          expect(value).toMatch(/^[\t\x20-\x7e\x80-\xff]*$/);
          // Node's own client-side checks agree: this header can be sent as is.
          expect(() => validateHeaderName(name)).not.toThrow();
          expect(() => validateHeaderValue(name, value)).not.toThrow();
          // Stored exactly as given: nothing is silently rewritten.
          expect(Object.hasOwn(headers, name) ? headers[name] : undefined).toBe(value);
        }
      }),
      RUNS,
    );
  });

  it('updateWebhook applies the same rules', async () => {
    const hook = await dispatcher.createWebhook({ url: URL_OK, triggers: ORDER_CREATE, headers: { 'X-Ok': '1' } });
    await fc.assert(
      fc.asyncProperty(headersArb, async (headers) => {
        try {
          const updated = await dispatcher.updateWebhook(hook.id, { headers });
          for (const [name, value] of Object.entries(await storedHeaders(updated.id))) {
            expect(name).toMatch(TOKEN);
            expect(value).toMatch(/^[\t\x20-\x7e\x80-\xff]*$/);
          }
          // The answer masks credential values, and only those.
          for (const [name, value] of Object.entries(updated.headers)) expect(value.includes('••••••••')).toBe(isCredentialHeader(name));
        } catch (error) {
          expect(isValidation(error), String(error)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});

// ------------------------------------------------------------------ URLs

const SCHEMES = ['http', 'https', 'HTTP', 'hTTps', 'ftp', 'file', 'gopher', 'javascript', 'data', 'ws', 'wss', 'ldap', 'dict', 'jar', 'blob', 'x'];

const urls = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.webUrl({
      validSchemes: ['http', 'https', 'HTTP', 'Https'],
      authoritySettings: { withPort: true },
      withQueryParameters: true,
      withFragments: true,
    }),
  },
  fc.webUrl({
    validSchemes: SCHEMES,
    authoritySettings: { withIPv4: true, withIPv6: true, withIPv4Extended: true, withPort: true, withUserInfo: true },
    withQueryParameters: true,
    withFragments: true,
  }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc
    .tuple(
      fc.constantFrom('http://', 'https://', 'HTTPS://', 'http:', 'https:/', 'file://', 'javascript:', 'data:', ' http://', '\thttps://', 'http:\\\\'),
      fc.string({ unit: fc.constantFrom('a', '.', '@', ':', '/', '\\', '%', '[', ']', '1', '0', 'x', '#', '?', ' ', '\r', '\n', '\0', 'é'), maxLength: 25 }),
    )
    .map(([prefix, rest]) => prefix + rest),
);

describe('URL validation (createWebhook)', () => {
  it('accepts only http(s) URLs without credentials, whose host the address guard allows; otherwise WebhookValidationError', async () => {
    await fc.assert(
      fc.asyncProperty(urls, async (url) => {
        let hook;
        try {
          hook = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE });
        } catch (error) {
          expect(isValidation(error), String(error)).toBe(true);
          return;
        }
        const parsed = new URL(hook.url);
        expect(['http:', 'https:']).toContain(parsed.protocol);
        expect(parsed.username).toBe('');
        expect(parsed.password).toBe('');
        const verdict = checkUrlHost(parsed);
        expect(verdict === null || verdict.allowed).toBe(true);
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------------ merge-field templates

/** Template text from a grammar mixing the syntax's delimiters, sections, pipes, quotes and escapes. */
const templateSoup = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '{{', '}}', '{{{', '}}}', '\\{{', '\\\\{{', '{{#each ', '{{/each}}', '{{#each}}', '{{/each', '#each', '/each',
        '{{#if ', '{{/if}}', '{{#unless ', '{{/unless}}', '{{else}}', '{{> partial}}', '{{!comment}}', '{{{raw}}}',
        '|', '||', ' | upper', ' | default:"}}"', ' | currency:', ' | nope', ':', '"', "'", '\\"', '\\', '\\\\',
        'data.a', 'data.list', 'this', '@index', '@root', '__proto__', 'constructor.constructor', '(lookup this "x")',
        '.', '..', '[0]', '[', ']', '{', '}', ',', ' ', '\n', '\r\n', '\t', '<', '>', '</x>', '&', 'é', '😀', '\u2028',
      ),
      fc.string({ maxLength: 4 }),
    ),
    { maxLength: 25 },
  )
  .map((parts) => parts.join(''));

const mimeType = fc.constantFrom<PayloadMimeType>('application/json', 'application/xml', 'text/plain');

const HOSTILE_STRINGS = [
  '"',
  '\\',
  '\\"',
  '"}, "admin": true, "x": "',
  '", "admin": "1',
  '</x>',
  '</script><script>alert(1)</script>',
  '{{data.a}}',
  '{{#each data.list}}x{{/each}}',
  '}}',
  '\r\n',
  '\u2028\u2029',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '\u0000',
  '😀',
];

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ unit: 'binary', maxLength: 12 }));

/** Hostile data: strings, numbers, and objects / arrays whose keys and values are hostile too. */
const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom('__proto__', 'admin', 'constructor')), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const PATHS = ['data.a', 'data.b', 'data.list', 'order.a', 'data.missing.deeper'];

const leaf = fc.oneof(
  fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom('', ' | upper', ' | json', ' | default:"x"')).map(([p, f]) => ({
    kind: 'value' as const,
    text: `{{${p}${f}}}`,
  })),
  fc
    .tuple(fc.constantFrom(...PATHS), fc.constantFrom('', ' | lower', ' | json', ' | truncate:5'), fc.constantFrom('', 'pre ', '\\"', '\\\\'), fc.constantFrom('', ' post', '\\n'))
    .map(([p, f, pre, post]) => ({ kind: 'string' as const, text: `"${pre}{{${p}${f}}}${post}"` })),
  fc.constantFrom('data.list', 'data.a').map((p) => ({
    kind: 'array' as const,
    text: `[{{#each ${p}}}{"k": "{{this}}", "v": {{this}}}{{#unless @last}},{{/unless}}{{/each}}]`,
  })),
);

/** A JSON template tree with fixed keys; leaves are placeholders in value or string position, or an #each array. */
type Node = { kind: 'value' | 'string' | 'array'; text: string } | { kind: 'object'; keys: string[]; entries: Node[]; text: string };

const objectNode: fc.Arbitrary<Node> = fc.letrec<{ node: Node; object: Node }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('object')),
  object: fc
    .uniqueArray(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), tie('node')), { selector: ([k]) => k, maxLength: 4 })
    .map((entries) => ({
      kind: 'object' as const,
      keys: entries.map(([k]) => k),
      entries: entries.map(([, n]) => n),
      text: `{${entries.map(([k, n]) => `"${k}": ${n.text}`).join(', ')}}`,
    })),
})).object;

/** Checks that `out` has exactly the template's structure at every template-defined level. */
function expectShape(node: Node, out: unknown, where: string): void {
  switch (node.kind) {
    case 'object': {
      expect(typeof out === 'object' && out !== null && !Array.isArray(out), where).toBe(true);
      const record = out as Record<string, unknown>;
      expect(Object.keys(record).sort(), where).toEqual([...node.keys].sort());
      node.keys.forEach((key, i) => expectShape(node.entries[i]!, record[key], `${where}.${key}`));
      return;
    }
    case 'string':
      expect(typeof out, where).toBe('string');
      return;
    case 'array':
      expect(Array.isArray(out), where).toBe(true);
      for (const element of out as unknown[]) {
        expect(Object.keys(element as object).sort(), where).toEqual(['k', 'v']);
        expect(typeof (element as { k: unknown }).k, where).toBe('string');
      }
      return;
    case 'value':
      // One JSON value of the data's own shape: whatever it is, it sits under the template's key.
      return;
  }
}

describe('merge-field templates', () => {
  it('arbitrary template text compiles or fails with a positioned TemplateSyntaxError, nothing else', () => {
    fc.assert(
      fc.property(templateSoup, mimeType, hostileValue, (source, mime, data) => {
        let template;
        try {
          template = compileTemplate(source, mime);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(TemplateSyntaxError);
          const { line, column } = error as TemplateSyntaxError;
          expect(Number.isInteger(line) && line >= 1).toBe(true);
          expect(Number.isInteger(column) && column >= 1).toBe(true);
          return;
        }
        try {
          const out = template.render({ data, order: data });
          expect(typeof out).toBe('string');
        } catch (error) {
          // Only JSON output is re-checked; a template whose text is not JSON fails to render.
          expect(error, String(error)).toBeInstanceOf(TemplateRenderError);
        }
      }),
      RUNS,
    );
  });

  it('never evaluates template text as code (Handlebars CVE-2021-23369 style payloads)', () => {
    const g = globalThis as { __pwned?: boolean };
    const payloads = [
      '{{constructor.constructor("globalThis.__pwned = true")()}}',
      '{{#with "s" as |string|}}{{string.sub.apply 0 "globalThis.__pwned=true"}}{{/with}}',
      '{{lookup (lookup this "constructor") "constructor"}}',
      '{{data.__proto__.constructor.constructor}}',
      '{{this.constructor.constructor}}',
      '{{{data.a}}}',
      '{{> (lookup . "x")}}',
      '{{#each data.__proto__}}x{{/each}}',
      '${globalThis.__pwned = true}',
      '<%= globalThis.__pwned = true %>',
    ];
    for (const source of payloads) {
      for (const mime of ['text/plain', 'application/json', 'application/xml'] as const) {
        try {
          compileTemplate(source, mime).render({ data: { a: 'x' } });
        } catch (error) {
          expect(error instanceof TemplateSyntaxError || error instanceof TemplateRenderError, String(error)).toBe(true);
        }
      }
    }
    expect(g.__pwned).toBeUndefined();
  });

  it('JSON templates rendered with hostile data parse, with exactly the template’s keys (no injection)', () => {
    fc.assert(
      fc.property(objectNode, hostileValue, hostileValue, fc.array(hostileValue, { maxLength: 3 }), (node, a, b, list) => {
        const template = compileTemplate(node.text, 'application/json');
        const data = { a, b, list };
        const out = template.render({ data, order: data });
        expect(out).not.toMatch(/[\u2028\u2029]/);
        expectShape(node, JSON.parse(out), '$');
      }),
      RUNS,
    );
  });
});

// ------------------------------------------------------------------ verifySignature

const SIG_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'Webhook-Id', 'WEBHOOK-SIGNATURE', 'x-other'];

const headerValueOrList = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.stringMatching(/^\d{0,14}$/),
  fc.constantFrom('v1,', 'v1,====', 'v1,AAAA v1,', 'v2,x', ' ', 'v1,' + 'A'.repeat(44)),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.constant(undefined),
);

const headerSource = fc.oneof(
  fc.dictionary(fc.oneof(fc.constantFrom(...SIG_HEADERS), fc.string({ maxLength: 8 })), headerValueOrList, { maxKeys: 5 }),
  fc
    .dictionary(fc.constantFrom(...SIG_HEADERS), fc.string({ unit: 'binary', maxLength: 30 }), { maxKeys: 4 })
    .map((record) => ({ get: (name: string) => record[name] ?? null })),
);

const body = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.uint8Array({ maxLength: 60 }));
const secretArb = fc.oneof(
  fc.constant(generateSecret()),
  fc.string({ maxLength: 30 }).map((s) => `whsec_${s}`),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.uint8Array({ minLength: 0, maxLength: 80 }).map((bytes) => `whsec_${Buffer.from(bytes).toString('base64')}`),
);

describe('verifySignature', () => {
  it('throws nothing but WebhookVerificationError for arbitrary headers, bodies and secrets', () => {
    fc.assert(
      fc.property(
        headerSource,
        body,
        fc.array(secretArb, { maxLength: 3 }),
        fc.option(fc.integer({ min: 0, max: 3_000_000_000_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }),
        (headers, payload, secrets, now, toleranceSeconds) => {
          try {
            verifySignature({
              secrets,
              body: payload,
              headers: headers as Parameters<typeof verifySignature>[0]['headers'],
              ...(now !== undefined ? { now } : {}),
              ...(toleranceSeconds !== undefined ? { toleranceSeconds } : {}),
            });
          } catch (error) {
            expect(error, String(error)).toBeInstanceOf(WebhookVerificationError);
          }
        },
      ),
      RUNS,
    );
  });

  it('a genuine signature verifies, and any change to the body, id or timestamp is rejected', () => {
    const secret = generateSecret();
    const now = 1_800_000_000_000;
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.stringMatching(/^msg_[0-9A-Z]{1,26}$/),
        fc.integer({ min: -300, max: 300 }),
        fc.nat(),
        (payload, id, offset, flip) => {
          const timestamp = now / 1000 + offset;
          const headers = { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': sign(secret, { id, timestamp, body: payload }) };
          expect(verifySignature({ secret, body: payload, headers, now })).toEqual({ id, timestamp });

          // Flip one bit of the body (or add a byte to an empty one).
          const tampered = Buffer.from(payload.length > 0 ? payload : 'x', 'utf8');
          if (payload.length > 0) tampered[flip % tampered.length] = tampered[flip % tampered.length]! ^ 0x01;
          expect(() => verifySignature({ secret, body: tampered, headers, now })).toThrow(WebhookVerificationError);
          expect(() => verifySignature({ secret, body: payload, headers: { ...headers, 'webhook-id': `${id}x` }, now })).toThrow(
            WebhookVerificationError,
          );
          const shifted = { ...headers, 'webhook-timestamp': String(offset >= 0 ? timestamp - 1 : timestamp + 1) };
          expect(() => verifySignature({ secret, body: payload, headers: shifted, now })).toThrow(WebhookVerificationError);
        },
      ),
      RUNS,
    );
  });
});
