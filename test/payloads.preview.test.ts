/**
 * Acceptance tests of what template editors use: `previewPayload` (checked byte for byte against
 * a real delivery to a node:http receiver on 127.0.0.1), `listMergeFields`, and a fast-check
 * property over hostile data rendered through a fixed JSON template.
 */
import fc from 'fast-check';
import { XMLValidator } from 'fast-xml-parser';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TemplateSyntaxError,
  WebhookDispatcher,
  WebhookValidationError,
  verifySignature,
  type MergeFieldInfo,
  type PayloadTemplate,
  type Webhook,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import { Receiver, type ReceivedRequest } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

const receivers: Receiver[] = [];
const dispatchers: WebhookDispatcher[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

async function startReceiver(): Promise<Receiver> {
  const receiver = await Receiver.start();
  receivers.push(receiver);
  return receiver;
}

function newDispatcher(options?: WebhookDispatcherOptions): WebhookDispatcher {
  // Security opt-out: the receivers live on 127.0.0.1, which the SSRF guard blocks by default.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, retry: { maxAttempts: 1 }, circuitBreaker: false, ...options });
  dispatchers.push(dispatcher);
  return dispatcher;
}

const ORDER = {
  OrderId: 42,
  OrderCode: 'SO-42',
  Total: 99.5,
  CreatedAt: '2024-05-01T09:30:00.000Z',
  Customer: { Name: 'Zoë "Z" <Müller>', Email: 'zoe@example.com' },
  Lines: [
    { Sku: 'A-1', Qty: 2, Price: 10, ShippedAt: '2024-05-02T10:00:00Z' },
    { Sku: 'B-2', Qty: 1, Price: 79.5, ShippedAt: null },
  ],
  Note: 'line1\r\nline2 \u2028 😀 "}, "admin": true',
};

// Templates that do not use meta.id or meta.timestamp (which differ per emit).
const TEMPLATES: Record<string, PayloadTemplate> = {
  json: {
    mimeType: 'application/json',
    template: [
      '{',
      '  "id": {{order.OrderId}},',
      '  "code": "{{order.OrderCode}}",',
      '  "created": "{{order.CreatedAt | date:"yyyy-MM-dd"}}",',
      '  "customer": {{order.Customer}},',
      '  "note": "{{order.Note}}",',
      '  "lines": [{{#each order.Lines}}{"sku": "{{Sku}}", "total": {{Price | number:2}}}{{#unless @last}}, {{/unless}}{{/each}}],',
      '  "event": "{{meta.event}}", "webhook": "{{meta.webhookId}}"',
      '}',
    ].join('\n'),
  },
  xml: {
    mimeType: 'application/xml',
    template:
      '<?xml version="1.0" encoding="UTF-8"?>\n<order id="{{order.OrderId}}"><customer>{{order.Customer.Name}}</customer><note>{{order.Note}}</note>{{#each order.Lines}}<line sku="{{Sku}}">{{Qty}}</line>{{/each}}</order>',
  },
  text: { mimeType: 'text/plain', template: 'Order {{order.OrderCode}} for {{order.Customer.Name}}: {{order.Total | currency:EUR}}\n{{order.Note}}' },
};

describe('previewPayload', () => {
  for (const [name, payload] of Object.entries(TEMPLATES)) {
    it(`with a webhook (by id and as an object), the ${name} body is byte for byte what a real receiver gets, and its signature verifies`, async () => {
      const receiver = await startReceiver();
      const dispatcher = newDispatcher();
      const webhook = await dispatcher.createWebhook({ url: receiver.url('/hook'), triggers: ORDER_CREATE, payload });
      const input = { entity: 'order', event: 'Create', data: ORDER };

      const byId = await dispatcher.previewPayload(webhook.id, input);
      const byObject = await dispatcher.previewPayload(webhook, input);
      await dispatcher.emit(input);
      await dispatcher.drain();
      expect(receiver.requests).toHaveLength(1);
      const request = receiver.requests[0] as ReceivedRequest;

      for (const preview of [byId, byObject]) {
        expect(preview.body).toBe(request.body);
        expect(Buffer.from(preview.body).equals(Buffer.from(request.body))).toBe(true);
        expect(preview.contentType).toBe(request.headers['content-type']);
        expect(preview.method).toBe('POST');
        expect(preview.url).toBe(webhook.url);
        // Complete, signed headers: the preview verifies like a real delivery.
        const verified = verifySignature({ secret: webhook.secret, body: preview.body, headers: preview.headers });
        expect(verified.id).toBe(preview.headers['webhook-id']);
        expect(preview.headers).toMatchObject({
          'Content-Type': preview.contentType,
          'X-Pakk-WebhookID': webhook.id,
          'X-Pakk-Webhook-TriggerEvent': 'Create',
          'X-Pakk-Webhook-TriggerEntity': 'order',
        });
        expect(preview.headers['X-Pakk-Webhook-Test']).toBeUndefined();
        // Not valid for another secret, nor for another body.
        expect(() => verifySignature({ secret: `whsec_${Buffer.alloc(32, 9).toString('base64')}`, body: preview.body, headers: preview.headers })).toThrow();
        expect(() => verifySignature({ secret: webhook.secret, body: `${preview.body} `, headers: preview.headers })).toThrow();
      }
      if (payload.mimeType === 'application/xml') expect(XMLValidator.validate(byId.body)).toBe(true);
      if (payload.mimeType === 'application/json') expect(JSON.parse(byId.body)).toMatchObject({ webhook: webhook.id, note: ORDER.Note });
      // Previewing sends nothing and queues nothing.
      expect((await dispatcher.listDeliveries()).items).toHaveLength(1);
    });
  }

  it('of a default-payload webhook matches the delivered body except the per-emit id and timestamp', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hook'), triggers: [{ entity: 'invoice', event: 'PaymentsDone' }] });
    const input = { entity: 'invoice', event: 'PaymentsDone', data: { InvoiceId: 5, InvoiceCode: 'INV-5', OrderId: 42, Amount: 10 } };
    const preview = await dispatcher.previewPayload(webhook, input);
    await dispatcher.emit(input);
    await dispatcher.drain();
    const received = JSON.parse(receiver.requests[0]?.body ?? '{}') as Record<string, unknown>;
    const previewed = JSON.parse(preview.body) as Record<string, unknown>;
    expect(preview.contentType).toBe('application/json');
    expect({ ...previewed, id: 'x', timestamp: 'x' }).toEqual({ ...received, id: 'x', timestamp: 'x' });
    expect(previewed.entityData).toEqual({ InvoiceId: 5, InvoiceCode: 'INV-5', OrderId: 42, OrderCode: null });
    expect(() => verifySignature({ secret: webhook.secret, body: preview.body, headers: preview.headers })).not.toThrow();
  });

  it('of a thin webhook has no data key', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: 'https://example.com/hook', triggers: ORDER_CREATE, payloadMode: 'thin' });
    const preview = await dispatcher.previewPayload(webhook.id, { entity: 'order', event: 'Create', data: ORDER });
    expect(JSON.parse(preview.body)).toEqual({
      id: expect.stringMatching(/^evt_/),
      timestamp: expect.any(String),
      entity: 'order',
      event: 'Create',
      tenantId: null,
      entityData: { OrderId: 42, OrderCode: 'SO-42' },
    });
  });

  it('with a bare { mimeType, template } returns the body and content type (no webhook, no signature)', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const input = { entity: 'order', event: 'Create', data: ORDER };

    const xml = await dispatcher.previewPayload({ mimeType: 'application/xml', template: '<o c="{{order.OrderCode}}">{{order.Customer.Name}}</o>' }, input);
    expect(xml.body).toBe('<o c="SO-42">Zoë &quot;Z&quot; &lt;Müller&gt;</o>');
    expect(xml.contentType.split(';')[0]).toBe('application/xml');
    expect(xml.headers['webhook-signature']).toBeUndefined();

    const json = await dispatcher.previewPayload({ mimeType: 'application/json', template: '{"code": "{{order.OrderCode}}", "webhook": {{meta.webhookId}}}' }, input);
    expect(json.contentType).toBe('application/json');
    expect(JSON.parse(json.body)).toEqual({ code: 'SO-42', webhook: null });

    const text = await dispatcher.previewPayload({ mimeType: 'text/plain', template: '{{order.OrderCode}}/{{order.Lines.length}}' }, input);
    expect(text).toMatchObject({ body: 'SO-42/2', contentType: expect.stringMatching(/^text\/plain/) });

    // Nothing was created or queued.
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
  });

  it('reports a syntax error of a bare template with its position', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    await expect(
      dispatcher.previewPayload({ mimeType: 'text/plain', template: 'a\nb {{order.X | nope}}' }, { entity: 'order', event: 'Create', data: {} }),
    ).rejects.toSatisfy((error) => error instanceof TemplateSyntaxError && error.line === 2 && /line 2, column \d+/.test(error.message));
  });

  it('rejects invalid input and unknown webhooks', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    await expect(dispatcher.previewPayload('wh_missing', { entity: 'order', event: 'Create', data: {} })).rejects.toMatchObject({
      code: 'webhook_not_found',
    });
    await expect(dispatcher.previewPayload({ mimeType: 'text/plain', template: 'x' }, { entity: '', event: 'Create', data: {} })).rejects.toBeInstanceOf(
      WebhookValidationError,
    );
  });
});

describe('listMergeFields', () => {
  const pick = (fields: MergeFieldInfo[], path: string) => fields.find((f) => f.path === path);

  it('lists the generic fields of an entity type with types: the record, data and meta', () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const fields = dispatcher.listMergeFields({ entity: 'order', event: 'Create' });
    expect(fields).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'order', type: 'object' }),
        expect.objectContaining({ path: 'order.OrderId', type: 'number' }),
        expect.objectContaining({ path: 'order.OrderCode', type: 'string' }),
        expect.objectContaining({ path: 'data.OrderId', type: 'number' }),
        expect.objectContaining({ path: 'meta.id', type: 'string' }),
        expect.objectContaining({ path: 'meta.event', type: 'string' }),
        expect.objectContaining({ path: 'meta.entity', type: 'string' }),
        expect.objectContaining({ path: 'meta.timestamp', type: 'date' }),
        expect.objectContaining({ path: 'meta.webhookId', type: 'string' }),
      ]),
    );
    // Paths are unique.
    expect(new Set(fields.map((f) => f.path)).size).toBe(fields.length);

    // Other entities list their ShopCtrl fields under their own name.
    const ticket = dispatcher.listMergeFields({ entity: 'ticket', event: 'HandlingEmployeeChanged' });
    for (const field of ['TicketId', 'TicketCode', 'HandlingEmployeeId', 'OldHandlingEmployeeGroupId']) {
      expect(pick(ticket, `ticket.${field}`), field).toBeDefined();
    }
    expect(pick(ticket, 'ticket.TicketId')?.type).toBe('number');
    expect(pick(ticket, 'ticket.TicketCode')?.type).toBe('string');
  });

  it('lists a registered host entity’s fields', () => {
    const dispatcher = newDispatcher({ autoStart: false });
    dispatcher.registerEntityFields('gift_card', ['GiftCardId', 'GiftCardCode']);
    const fields = dispatcher.listMergeFields({ entity: 'gift_card', event: 'Redeemed' });
    expect(pick(fields, 'gift_card.GiftCardId')).toMatchObject({ type: 'number' });
    expect(pick(fields, 'gift_card.GiftCardCode')).toMatchObject({ type: 'string' });
  });

  it('lists one record’s fields: arrays as Lines[], element fields as Lines[].Sku, dates typed date', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const data = { ...ORDER, PaidAt: new Date('2024-05-03T00:00:00Z') };
    const fields = dispatcher.listMergeFields({ entity: 'order', event: 'Create', data });
    expect(pick(fields, 'order.Lines[]')).toMatchObject({ type: 'array' });
    expect(pick(fields, 'order.Lines[].Sku')).toMatchObject({ type: 'string', example: 'A-1' });
    expect(pick(fields, 'order.Lines[].Qty')).toMatchObject({ type: 'number', example: 2 });
    // The first element has a date, the second null: the field is a date.
    expect(pick(fields, 'order.Lines[].ShippedAt')).toMatchObject({ type: 'date' });
    expect(pick(fields, 'order.CreatedAt')).toMatchObject({ type: 'date', example: ORDER.CreatedAt });
    expect(pick(fields, 'order.PaidAt')).toMatchObject({ type: 'date' });
    expect(pick(fields, 'order.Customer')).toMatchObject({ type: 'object' });
    expect(pick(fields, 'order.Customer.Name')).toMatchObject({ type: 'string', example: ORDER.Customer.Name });
    expect(pick(fields, 'order.Total')).toMatchObject({ type: 'number', example: 99.5 });
    expect(pick(fields, 'data.Lines[].Sku')).toMatchObject({ type: 'string' });
    expect(pick(fields, 'meta.id')).toMatchObject({ type: 'string' });
    // Only what the record has: not the entity's generic fields.
    expect(pick(fields, 'order.Nope')).toBeUndefined();

    // Every listed leaf path outside arrays is usable in a template and renders its example.
    const leaves = fields.filter((f) => f.path.startsWith('order.') && !f.path.includes('[]') && 'example' in f);
    expect(leaves.map((f) => f.path)).toEqual(
      expect.arrayContaining(['order.OrderId', 'order.OrderCode', 'order.Total', 'order.CreatedAt', 'order.Customer.Name', 'order.Note']),
    );
    const template = `{${leaves.map((f, i) => `"f${i}": {{${f.path}}}`).join(', ')}}`;
    const preview = await dispatcher.previewPayload({ mimeType: 'application/json', template }, { entity: 'order', event: 'Create', data });
    const body = JSON.parse(preview.body) as Record<string, unknown>;
    expect(Object.values(body)).toEqual(leaves.map((f) => f.example));
  });

  it('skips prototype keys of a record', () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const data = JSON.parse('{"OrderId": 1, "__proto__": {"x": 1}, "constructor": {"y": 2}}') as unknown;
    const paths = dispatcher.listMergeFields({ entity: 'order', event: 'Create', data }).map((f) => f.path);
    expect(paths).toContain('order.OrderId');
    expect(paths.some((p) => /__proto__|constructor/.test(p))).toBe(false);
  });
});

describe('property: any data through a fixed JSON template', () => {
  // Hostile strings: JSON syntax, markup, merge-field syntax, control and separator characters,
  // lone surrogates, and arbitrary code points.
  const hostileString = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 3 }),
    fc
      .array(
        fc.constantFrom('"', '\\', '"}, "admin": true, "x": "', '</x><y>', '{{order.Code}}', '{{#each order}}', '\\{{', '}}', '\r\n', '\u2028', '\u2029', '\u0000', '\t', '😀', '\\u0041', '\''),
        { maxLength: 8 },
      )
      .map((parts) => parts.join('')),
  );

  /** JSON values as JSON.parse would give them back (the renderer drops "__proto__" keys, as documented). */
  const normalize = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(normalize);
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (key !== '__proto__') out[key] = normalize((value as Record<string, unknown>)[key]);
      }
      return out;
    }
    return JSON.parse(JSON.stringify(value)) as unknown;
  };

  it('previewPayload always gives a body that JSON.parses and whose string fields equal the data’s strings', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const webhook: Webhook = await dispatcher.createWebhook({
      url: 'https://example.com/hook',
      triggers: ORDER_CREATE,
      payload: {
        mimeType: 'application/json',
        template:
          '{"code": "{{order.Code}}", "note": {{order.Note}}, "nested": {"s": "{{order.Inner.S}}", "v": {{order.Inner.S}}}, ' +
          '"pair": "{{order.Code}}|{{order.Note}}", "payload": {{order.Payload}}, ' +
          '"list": [{{#each order.List}}"{{this}}"{{#unless @last}},{{/unless}}{{/each}}]}',
      },
    });

    await fc.assert(
      fc.asyncProperty(
        fc.record({
          Code: hostileString,
          Note: hostileString,
          Inner: fc.record({ S: hostileString }),
          Payload: fc.jsonValue({ maxDepth: 3 }),
          List: fc.array(hostileString, { maxLength: 4 }),
        }),
        async (data) => {
          const preview = await dispatcher.previewPayload(webhook, { entity: 'order', event: 'Create', data });
          const body = JSON.parse(preview.body) as Record<string, unknown>;
          expect(Object.keys(body)).toEqual(['code', 'note', 'nested', 'pair', 'payload', 'list']);
          expect(body.code).toBe(data.Code);
          expect(body.note).toBe(data.Note);
          expect(body.nested).toEqual({ s: data.Inner.S, v: data.Inner.S });
          expect(body.pair).toBe(`${data.Code}|${data.Note}`);
          expect(body.payload).toEqual(normalize(data.Payload));
          expect(body.list).toEqual(data.List);
          expect(preview.body).not.toMatch(/[\u2028\u2029]/);
          expect(() => verifySignature({ secret: webhook.secret, body: preview.body, headers: preview.headers })).not.toThrow();
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('previewPayload with a transform', () => {
  it('applies the dispatcher transform, so the preview matches what is sent and still verifies', async () => {
    const dispatcher = new WebhookDispatcher({
      autoStart: false,
      transform: ({ payload }) => ({ payload: { ...(payload as object), source: 'shop' }, headers: { 'X-Transformed': 'yes' } }),
    });
    try {
      const hook = await dispatcher.createWebhook({ url: 'https://merchant.example/h', triggers: [{ entity: 'order', event: 'Create' }] });
      const preview = await dispatcher.previewPayload(hook.id, { entity: 'order', event: 'Create', data: { OrderId: 5 } });
      expect(JSON.parse(preview.body)).toMatchObject({ source: 'shop', data: { OrderId: 5 } });
      expect(preview.headers['X-Transformed']).toBe('yes');
      expect(verifySignature({ secret: hook.secret, body: preview.body, headers: preview.headers }).id).toMatch(/^msg_/);
    } finally {
      await dispatcher.close();
    }
  });
});
