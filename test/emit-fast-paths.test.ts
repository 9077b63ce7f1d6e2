/**
 * The shortcuts on the emit hot path give exactly the results of the slow paths they bypass:
 * the emit input check (vs the zod schema), ULID ids (vs ulid's monotonic factory), trigger
 * lookup in MemoryStorage, and compiled-template reuse.
 */
import fc from 'fast-check';
import { decodeTime, isValid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { WebhookValidationError } from '../src/errors.js';
import { newId } from '../src/ids.js';
import { emitSchema, parseEmitInput } from '../src/input/emit.js';
import { parseInput } from '../src/input/parse.js';
import { renderTemplate, type PayloadEvent, type PayloadTemplate } from '../src/payload.js';
import { MemoryStorage } from '../src/storage/memory.js';
import type { WebhookRecord } from '../src/storage/types.js';

/** The parse result, or the validation error's message and issues. */
function outcome(parse: () => unknown): unknown {
  try {
    return { ok: parse() };
  } catch (error) {
    if (!(error instanceof WebhookValidationError)) throw error;
    return { error: error.message, issues: error.issues };
  }
}

/** Fields emit() reads; absent optional keys and keys set to undefined are the same to it. */
function relevant(result: unknown): unknown {
  const r = result as { ok?: Record<string, unknown> };
  if (!r.ok) return result;
  const { entity, event, data, tenantId, transaction } = r.ok;
  return { ok: { entity, event, data, tenantId, transaction } };
}

const WHITESPACE = [' ', '\t', '\n', '\u00a0', '\u2028', '\ufeff', '\u3000'];
const padded = (max: number) =>
  fc
    .tuple(
      fc.array(fc.constantFrom(...WHITESPACE), { maxLength: 3 }).map((a) => a.join('')),
      fc.oneof(
        fc.string({ maxLength: 5 }),
        fc.constantFrom('order', '*', 'x'.repeat(max), 'x'.repeat(max + 1), 'é'.repeat(max), '😀'.repeat(max / 2 + 1)),
      ),
      fc.array(fc.constantFrom(...WHITESPACE), { maxLength: 3 }).map((a) => a.join('')),
    )
    .map(([a, b, c]) => a + b + c);

const field = (max: number) =>
  fc.oneof(
    { weight: 8, arbitrary: padded(max) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, 1, {}, ['order'], new String('order')) },
  );

const emitInputs = fc.oneof(
  // Mostly well-formed, so both the accepting and the rejecting side are exercised.
  {
    weight: 6,
    arbitrary: fc.record(
      {
        entity: field(100),
        event: field(100),
        data: fc.oneof({ weight: 9, arbitrary: fc.anything({ maxDepth: 2 }) }, { weight: 1, arbitrary: fc.constant(undefined) }),
        tenantId: field(200),
        transaction: fc.anything({ maxDepth: 1 }),
      },
      { requiredKeys: ['entity', 'event', 'data'] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      { entity: field(100), event: field(100), data: fc.anything({ maxDepth: 1 }), tenant: fc.string(), Data: fc.integer() },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBoxedValues: true, withMap: true }) },
);

describe('parseEmitInput', () => {
  it('gives what parseInput(emitSchema) gives: the same fields, or the same error', () => {
    fc.assert(
      fc.property(emitInputs, (input) => {
        expect(relevant(outcome(() => parseEmitInput(input, 'emit')))).toEqual(
          relevant(outcome(() => parseInput(emitSchema, input, 'emit'))),
        );
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ['a null-prototype object', Object.assign(Object.create(null) as object, { entity: 'order', event: 'Create', data: 1 })],
    ['a class instance', new (class { entity = 'order'; event = 'Create'; data = 1; })()],
    ['an inherited unknown key', Object.create({ inherited: 1 }, { entity: { value: 'order', enumerable: true }, event: { value: 'Create', enumerable: true }, data: { value: 1, enumerable: true } }) as object],
    ['an own __proto__ key', JSON.parse('{"entity":"order","event":"Create","data":1,"__proto__":{"x":1}}') as object],
    ['a trimmed entity', { entity: '  order\n', event: '\tCreate ', data: {}, tenantId: ' shop-1 ' }],
    ['an entity that is only whitespace', { entity: ' \u00a0', event: 'Create', data: {} }],
    ['a 101-character event', { entity: 'order', event: 'x'.repeat(101), data: {} }],
    ['a 201-character tenantId', { entity: 'order', event: 'Create', data: {}, tenantId: 'x'.repeat(201) }],
    ['an explicit undefined tenantId', { entity: 'order', event: 'Create', data: {}, tenantId: undefined }],
  ])('matches zod for %s', (_name, input) => {
    expect(relevant(outcome(() => parseEmitInput(input, 'emit')))).toEqual(relevant(outcome(() => parseInput(emitSchema, input, 'emit'))));
  });

  it('hands data through by reference, like zod', () => {
    const data = { OrderId: 1 };
    expect(parseEmitInput({ entity: 'order', event: 'Create', data }, 'emit').data).toBe(data);
  });
});

describe('newId', () => {
  it('is a prefixed ULID stamped with the given time, increasing within a millisecond and when the clock goes back', () => {
    const t = 1_800_000_000_000;
    const ids: string[] = [];
    for (let i = 0; i < 3_000; i++) ids.push(newId(i % 3 === 0 ? 'evt' : 'msg', i < 2_000 ? t + (i >> 9) : t - i));
    for (const id of ids) {
      expect(id).toMatch(/^(evt|msg)_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(isValid(id.slice(4))).toBe(true);
    }
    const ulids = ids.map((id) => id.slice(4));
    expect([...ulids].sort()).toEqual(ulids);
    expect(new Set(ulids).size).toBe(ulids.length);
    expect(decodeTime(ulids[0]!)).toBe(t);
    expect(decodeTime(ulids[1_999]!)).toBe(t + 3);
    // Behind the last time: stays on it (monotonic), like ulid's monotonicFactory.
    expect(decodeTime(ulids[2_999]!)).toBe(t + 3);
  });

  it('gives every prefix the current ULID, whichever prefix asked last (each keeps its own buffer)', () => {
    // Each run starts after the last one's time: behind it, ids would stay on that time.
    let runStart = 1_900_000_000_000;
    fc.assert(
      fc.property(
        fc.array(fc.record({ prefix: fc.constantFrom('wh', 'evt', 'msg', 'exec' as const), step: fc.constantFrom(0, 0, 0, 1, 2) }), {
          minLength: 1,
          maxLength: 60,
        }),
        (calls) => {
          let t = (runStart += 1_000);
          const ulids: string[] = [];
          for (const { prefix, step } of calls) {
            t += step;
            const id = newId(prefix, t);
            expect(id.startsWith(`${prefix}_`)).toBe(true);
            const ulid = id.slice(prefix.length + 1);
            expect(isValid(ulid)).toBe(true);
            expect(decodeTime(ulid)).toBe(t);
            ulids.push(ulid);
          }
          for (let i = 1; i < ulids.length; i++) expect(ulids[i]! > ulids[i - 1]!).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects times ulid rejects', () => {
    expect(() => newId('msg', 2 ** 49)).toThrow(/larger than/);
  });
});

describe('MemoryStorage trigger lookup', () => {
  const webhook = (id: string, triggers: WebhookRecord['triggers'], extra: Partial<WebhookRecord> = {}): WebhookRecord => ({
    id,
    url: 'https://example.com/hook',
    method: 'POST',
    triggers,
    headers: {},
    basicAuth: null,
    secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
    previousSecrets: [],
    priority: 0,
    enabled: true,
    tenantId: null,
    description: null,
    metadata: {},
    retryPolicy: null,
    payload: null,
    payloadMode: 'full',
    tls: null,
    uniqueQueueItems: null,
    disabledReason: null,
    concurrency: null,
    rateLimit: null,
    ordering: 'none',
    createdAt: 0,
    updatedAt: 0,
    ...extra,
  });

  it('returns a webhook with several matching triggers once, exact matches first', async () => {
    const storage = new MemoryStorage();
    await storage.insertWebhook(webhook('wh_all', [{ entity: '*', event: '*' }]));
    await storage.insertWebhook(webhook('wh_many', [{ entity: '*', event: '*' }, { entity: 'order', event: '*' }, { entity: 'order', event: 'Create' }]));
    await storage.insertWebhook(webhook('wh_exact', [{ entity: 'order', event: 'Create' }]));
    const ids = async (entity: string, event: string) =>
      (await storage.findWebhooksForEvent({ entity, event, tenantId: null })).map((w) => w.id);
    expect(await ids('order', 'Create')).toEqual(['wh_many', 'wh_exact', 'wh_all']);
    expect(await ids('order', 'Edit')).toEqual(['wh_many', 'wh_all']);
    expect(await ids('product', 'Create')).toEqual(['wh_all', 'wh_many']);
    // An emitted '*' is a name like any other; it names each index group once.
    expect(await ids('*', '*')).toEqual(['wh_all', 'wh_many']);
    expect(await ids('order', '*')).toEqual(['wh_many', 'wh_all']);
    await storage.deleteWebhook('wh_many');
    expect(await ids('order', 'Create')).toEqual(['wh_exact', 'wh_all']);
  });

  it('hands out frozen webhooks: callers cannot change what is stored', async () => {
    const storage = new MemoryStorage();
    await storage.insertWebhook(webhook('wh_1', [{ entity: 'order', event: 'Create' }], { headers: { 'X-A': '1' } }));
    const [found] = await storage.findWebhooksForEvent({ entity: 'order', event: 'Create', tenantId: null });
    expect(Object.isFrozen(found)).toBe(true);
    expect(Object.isFrozen(found!.headers)).toBe(true);
    expect(Object.isFrozen(found!.triggers[0])).toBe(true);
    expect(() => {
      (found!.headers as Record<string, string>)['X-A'] = '2';
    }).toThrow(TypeError);
    expect((await storage.getWebhook('wh_1'))!.headers).toEqual({ 'X-A': '1' });
  });
});

describe('renderTemplate', () => {
  const event: PayloadEvent = { id: 'evt_1', entity: 'order', event: 'Create', timestamp: '2026-01-01T00:00:00.000Z', tenantId: null, data: { OrderId: 7 } };

  it('renders a template object again after it was changed', () => {
    const template: PayloadTemplate = { mimeType: 'text/plain', template: 'order {{order.OrderId}}' };
    expect(renderTemplate(template, event, null).body).toBe('order 7');
    template.template = 'id {{meta.id}}';
    expect(renderTemplate(template, event, null).body).toBe('id evt_1');
    template.mimeType = 'application/json';
    template.template = '{"id": {{order.OrderId}}}';
    expect(renderTemplate(template, event, null)).toEqual({ body: '{"id": 7}', contentType: 'application/json' });
  });
});
