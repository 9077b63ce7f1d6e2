/**
 * Acceptance tests of the payload features, end to end against a real HTTP receiver on 127.0.0.1:
 * merchant templates in each MIME type, inert hostile values, prototype paths, template errors at
 * save time, the default ShopCtrl payloads (full and thin), render failures isolated to their
 * webhook, the payload size limit, the host's `transform`, and test sends.
 *
 * Preview, merge-field listing and the property test live in `payloads.preview.test.ts`.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterEach, describe, expect, it } from 'vitest';
import {
  PayloadTooLargeError,
  WebhookDispatcher,
  WebhookError,
  WebhookValidationError,
  verifySignature,
  type Alert,
  type CreateWebhookInput,
  type OutgoingPayload,
  type Webhook,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import { Receiver, type ReceivedRequest, type ReceiverOptions } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

// Receivers first (a held request then ends at once), then dispatchers.
const receivers: Receiver[] = [];
const dispatchers: WebhookDispatcher[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

async function startReceiver(options?: ReceiverOptions): Promise<Receiver> {
  const receiver = await Receiver.start(options);
  receivers.push(receiver);
  return receiver;
}

function newDispatcher(options?: WebhookDispatcherOptions): WebhookDispatcher {
  // Security opt-out: the receivers live on 127.0.0.1, which the SSRF guard blocks by default.
  // Failures here must be final and must not pause the endpoint, hence one attempt and no breaker.
  const dispatcher = new WebhookDispatcher({
    allowPrivateNetworks: true,
    retry: { maxAttempts: 1 },
    circuitBreaker: false,
    ...options,
  });
  dispatchers.push(dispatcher);
  return dispatcher;
}

function only(receiver: Receiver): ReceivedRequest {
  expect(receiver.requests).toHaveLength(1);
  return receiver.requests[0] as ReceivedRequest;
}

/** Creates one webhook on a fresh receiver, emits one order Create with `data` and waits for it. */
async function deliverOne(webhook: Partial<CreateWebhookInput>, data: unknown, dispatcherOptions?: WebhookDispatcherOptions) {
  const receiver = await startReceiver();
  const dispatcher = newDispatcher(dispatcherOptions);
  const created = await dispatcher.createWebhook({ url: receiver.url('/hook'), triggers: ORDER_CREATE, ...webhook });
  const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data });
  await dispatcher.drain();
  expect(deliveries).toHaveLength(1);
  const request = only(receiver);
  // Whatever the template, the signature covers exactly the bytes received.
  expect(verifySignature({ secret: created.secret, body: request.body, headers: request.headers }).id).toBe(deliveries[0]?.id);
  return { receiver, dispatcher, webhook: created, request, deliveryId: deliveries[0]?.id ?? '' };
}

/** An XML parser that keeps values as text, untrimmed, with attributes. */
function xmlParser(isArray: readonly string[] = []): XMLParser {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    htmlEntities: true,
    isArray: (name) => isArray.includes(name),
  });
}

/** The error `promise` rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<WebhookError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookError);
    return error as WebhookError;
  }
  throw new Error('expected a rejection, the promise resolved');
}

const ORDER = {
  OrderId: 42,
  OrderCode: 'SO-42',
  Total: 99.5,
  Paid: true,
  Customer: { Name: 'Ann de Vries', Email: 'ann@example.com' },
  Lines: [
    { Sku: 'A-1', Qty: 2 },
    { Sku: 'B-2', Qty: 1 },
  ],
};

describe('templates in each MIME type, through a real delivery', () => {
  it('application/json: the body JSON.parses to the expected object, Content-Type application/json', async () => {
    const template = [
      '{',
      '  "orderId": {{order.OrderId}},',
      '  "code": "{{order.OrderCode}}",',
      '  "total": {{order.Total}},',
      '  "paid": {{order.Paid}},',
      '  "customer": {{order.Customer}},',
      '  "label": "{{order.OrderCode}} for {{order.Customer.Name | upper}}",',
      '  "lines": [{{#each order.Lines}}{"sku": "{{Sku}}", "qty": {{Qty}}}{{#unless @last}},{{/unless}}{{/each}}],',
      '  "event": "{{meta.entity}}.{{meta.event}}",',
      '  "missing": {{order.Nope}},',
      '  "missingInString": "{{order.Nope}}"',
      '}',
    ].join('\n');
    const { request, deliveryId, dispatcher } = await deliverOne({ payload: { mimeType: 'application/json', template } }, ORDER);

    expect(request.headers['content-type']).toBe('application/json');
    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(body).toEqual({
      orderId: 42,
      code: 'SO-42',
      total: 99.5,
      paid: true,
      customer: { Name: 'Ann de Vries', Email: 'ann@example.com' },
      label: 'SO-42 for ANN DE VRIES',
      lines: [
        { sku: 'A-1', qty: 2 },
        { sku: 'B-2', qty: 1 },
      ],
      event: 'order.Create',
      missing: null,
      missingInString: '',
    });
    // The template's literal text (indentation, newlines) is kept: the merchant gets their layout.
    expect(request.body.startsWith('{\n  "orderId": 42,\n')).toBe(true);
    const delivery = await dispatcher.getDelivery(deliveryId);
    expect(delivery).toMatchObject({ status: 'succeeded', contentType: 'application/json', body: request.body });
  });

  it('application/xml: the body is well-formed, parses with fast-xml-parser, Content-Type application/xml', async () => {
    const template = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<order id="{{order.OrderId}}" code="{{order.OrderCode}}">',
      '  <total>{{order.Total | number:2}}</total>',
      '  <customer email="{{order.Customer.Email}}">{{order.Customer.Name}}</customer>',
      '  <lines>{{#each order.Lines}}<line sku="{{Sku}}" n="{{@index}}">{{Qty}}</line>{{/each}}</lines>',
      '  <event>{{meta.event}}</event>',
      '  <missing>{{order.Nope}}</missing>',
      '</order>',
    ].join('\n');
    const { request } = await deliverOne({ payload: { mimeType: 'application/xml', template } }, ORDER);

    expect(request.headers['content-type']?.split(';')[0]).toBe('application/xml');
    expect(XMLValidator.validate(request.body)).toBe(true);
    const doc = xmlParser(['line']).parse(request.body) as { order: Record<string, unknown> };
    expect(doc.order).toMatchObject({
      '@_id': '42',
      '@_code': 'SO-42',
      total: '99.50',
      customer: { '#text': 'Ann de Vries', '@_email': 'ann@example.com' },
      lines: {
        line: [
          { '#text': '2', '@_sku': 'A-1', '@_n': '0' },
          { '#text': '1', '@_sku': 'B-2', '@_n': '1' },
        ],
      },
      event: 'Create',
      missing: '',
    });
  });

  it('text/plain: the body is exactly the rendered text, Content-Type text/plain', async () => {
    const template = 'Order {{order.OrderCode}} ({{order.OrderId}}) total {{order.Total | number:2}}\n{{#each order.Lines}}- {{Sku}} x{{Qty}}\n{{/each}}{{#if order.Nope}}never{{else}}done{{/if}}';
    const { request } = await deliverOne({ payload: { mimeType: 'text/plain', template } }, ORDER);

    expect(request.headers['content-type']?.split(';')[0]).toBe('text/plain');
    expect(request.body).toBe('Order SO-42 (42) total 99.50\n- A-1 x2\n- B-2 x1\ndone');
  });
});

describe('hostile values stay inert', () => {
  // A 100 KB string with characters every format must escape sprinkled through it.
  const big = `${'abcdefghij'.repeat(1_000)}"quote" <tag> & 'apos' \\ {{order.Secret}}\r\n${'0123456789'.repeat(9_300)}`;
  const HOSTILE = {
    quotes: `she said "hi" and 'bye' \\ a backslash \\" and \\\\`,
    breakout: '"}, "admin": true, "x": "',
    markup: '</x><y>&amp; <![CDATA[ ]]> <!-- -->',
    mergeField: '{{order.Secret}} {{#each order.Lines}}loop{{/each}} \\{{order.Secret}}',
    crlf: 'line1\r\nline2\rline3\n\r\nInjected-Header: 1',
    unicode: 'emoji 😀 🇳🇱 👩‍👩‍👧, line separator \u2028, paragraph separator \u2029, ñ, 中文, \u00a0',
    big,
  };
  const data = { ...HOSTILE, Secret: 'TOP-SECRET-VALUE', Lines: [{ Sku: 'A-1' }] };
  const keys = Object.keys(HOSTILE) as Array<keyof typeof HOSTILE>;

  it('has a 100 KB value', () => {
    expect(Buffer.byteLength(big)).toBeGreaterThanOrEqual(100 * 1024);
  });

  it('in a JSON template (string and value positions): exactly the template keys, values round-trip', async () => {
    // Alternate string position ("{{…}}") and value position ({{…}}).
    const template = `{${keys.map((k, i) => (i % 2 === 0 ? `"${k}": "{{order.${k}}}"` : `"${k}": {{order.${k}}}`)).join(', ')}}`;
    const { request } = await deliverOne({ payload: { mimeType: 'application/json', template } }, data);

    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(keys);
    // Compared one by one, so a failure does not print the 100 KB value.
    for (const key of keys.filter((k) => k !== 'big')) expect(body[key], key).toBe(HOSTILE[key]);
    expect(body.big === big, 'the 100 KB value round-trips').toBe(true);
    expect(body).not.toHaveProperty('admin');
    // Merge fields inside values are never expanded.
    expect(request.body.includes('TOP-SECRET-VALUE')).toBe(false);
    // Line and paragraph separators are escaped, so the body is also safe to embed in JavaScript.
    expect(request.body).not.toMatch(/[\u2028\u2029]/);
  });

  it('in an XML template (text and attributes): exactly the template elements, values round-trip', async () => {
    const template = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<payload kind="{{order.breakout}}" note="{{order.markup}}">`,
      ...keys.map((k) => `<${k}>{{order.${k}}}</${k}>`),
      '</payload>',
    ].join('');
    const { request } = await deliverOne({ payload: { mimeType: 'application/xml', template } }, data);

    expect(XMLValidator.validate(request.body)).toBe(true);
    const doc = xmlParser().parse(request.body) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['?xml', 'payload']);
    const payload = doc.payload as Record<string, unknown>;
    expect(Object.keys(payload).sort()).toEqual([...keys, '@_kind', '@_note'].sort());
    for (const key of keys.filter((k) => k !== 'big')) expect(payload[key], key).toBe(HOSTILE[key]);
    expect(payload.big === big, 'the 100 KB value round-trips').toBe(true);
    expect(payload['@_kind']).toBe(HOSTILE.breakout);
    expect(payload['@_note']).toBe(HOSTILE.markup);
    expect(request.body.includes('TOP-SECRET-VALUE')).toBe(false);
    expect(request.body.includes('<y>')).toBe(false);
  });

  it('in a text/plain template: the values are copied verbatim and never expanded', async () => {
    const { request } = await deliverOne(
      { payload: { mimeType: 'text/plain', template: 'A[{{order.mergeField}}]B[{{order.crlf}}]C[{{order.unicode}}]' } },
      data,
    );
    expect(request.body).toBe(`A[${HOSTILE.mergeField}]B[${HOSTILE.crlf}]C[${HOSTILE.unicode}]`);
    expect(request.body.includes('TOP-SECRET-VALUE')).toBe(false);
  });
});

describe('prototype paths', () => {
  it('render nothing (JSON null or empty) and never pollute Object.prototype', async () => {
    // Own "__proto__" and "constructor" keys, as JSON.parse makes them from a request body.
    const data = JSON.parse(
      '{"OrderId": 1, "__proto__": {"polluted": "yes", "isAdmin": true}, "constructor": {"name": "evil", "prototype": {"polluted": "yes"}}}',
    ) as Record<string, unknown>;
    const template = [
      '{',
      '"a": {{__proto__.polluted}},',
      '"b": "{{__proto__.polluted}}",',
      '"c": {{order.constructor}},',
      '"d": "{{order.constructor.name}}",',
      '"e": {{order.__proto__}},',
      '"f": {{order.__proto__.isAdmin}},',
      '"g": {{data.constructor.prototype.polluted}},',
      '"h": "{{order.OrderId.constructor.name}}",',
      '"i": {{@root.order.__proto__.polluted}},',
      '"j": [{{#each order.__proto__}}1{{/each}}],',
      '"k": {{#if order.constructor}}true{{else}}false{{/if}},',
      '"l": {{order}}',
      '}',
    ].join('\n');
    const { request } = await deliverOne({ payload: { mimeType: 'application/json', template } }, data);

    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(body).toEqual({
      a: null,
      b: '',
      c: null,
      d: '',
      e: null,
      f: null,
      g: null,
      h: '',
      i: null,
      j: [],
      k: false,
      // The whole record serialized: the "__proto__" key is dropped, "constructor" is plain data.
      l: { OrderId: 1, constructor: { name: 'evil', prototype: { polluted: 'yes' } } },
    });
    expect(Object.hasOwn(body.l as object, '__proto__')).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
  });

  it('render empty in text/plain and XML templates', async () => {
    const data = JSON.parse('{"OrderId": 1, "__proto__": {"polluted": "yes"}}') as unknown;
    const dispatcher = newDispatcher({ autoStart: false });
    const text = await dispatcher.previewPayload(
      { mimeType: 'text/plain', template: '[{{__proto__.polluted}}][{{order.constructor}}][{{order.__proto__.polluted}}][{{order.prototype}}]' },
      { entity: 'order', event: 'Create', data },
    );
    expect(text.body).toBe('[][][][]');
    const xml = await dispatcher.previewPayload(
      { mimeType: 'application/xml', template: '<a b="{{order.__proto__.polluted}}">{{__proto__.polluted}}{{order.constructor.name}}</a>' },
      { entity: 'order', event: 'Create', data },
    );
    expect(xml.body).toBe('<a b=""></a>');
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

describe('template errors are reported when the webhook is saved', () => {
  /** 1-based column of `needle` on `line` (1-based) of `template`. */
  const columnOf = (template: string, line: number, needle: string): number => (template.split('\n')[line - 1] ?? '').indexOf(needle) + 1;

  const SYNTAX_ERRORS: Array<{ name: string; mimeType: 'application/json' | 'application/xml' | 'text/plain'; template: string; at: string }> = [
    {
      name: 'an unknown formatter',
      mimeType: 'application/json',
      template: '{\n  "code": "{{order.OrderCode}}",\n  "total": {{order.Total | nope}}\n}',
      at: 'nope',
    },
    {
      name: 'an unclosed {{#each}}',
      mimeType: 'application/json',
      template: '{\n  "code": "{{order.OrderCode}}",\n  "lines": [{{#each order.Lines}}"x"]\n}',
      at: '{{#each',
    },
    {
      name: 'an unclosed tag',
      mimeType: 'text/plain',
      template: 'Order {{order.OrderCode}}\nTotal {{order.Total}}\nBroken {{order.OrderId\nend',
      at: '{{order.OrderId',
    },
  ];

  for (const { name, mimeType, template, at } of SYNTAX_ERRORS) {
    it(`createWebhook rejects ${name} with field payload.template and its line and column; nothing is stored`, async () => {
      const dispatcher = newDispatcher({ autoStart: false });
      const error = await rejection(dispatcher.createWebhook({ url: 'https://example.com/hook', triggers: ORDER_CREATE, payload: { mimeType, template } }));
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('payload.template');
      expect(error.code).toBe('invalid_input');
      expect(error.message).toContain(`line 3, column ${columnOf(template, 3, at)}`);
      expect((await dispatcher.listWebhooks()).items).toEqual([]);
    });

    it(`updateWebhook rejects ${name} the same way and keeps the stored webhook unchanged`, async () => {
      const dispatcher = newDispatcher({ autoStart: false });
      const { warnings, ...original } = await dispatcher.createWebhook({
        url: 'https://example.com/hook',
        triggers: ORDER_CREATE,
        payload: { mimeType: 'text/plain', template: 'Order {{order.OrderCode}}' },
      });
      expect(warnings).toEqual([]);
      const before = await dispatcher.getWebhook(original.id);
      const error = await rejection(dispatcher.updateWebhook(original.id, { payload: { mimeType, template } }));
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('payload.template');
      expect(error.message).toContain(`line 3, column ${columnOf(template, 3, at)}`);
      expect(await dispatcher.getWebhook(original.id)).toEqual(before);
    });
  }

  it('rejects a JSON template that cannot render valid JSON, at create and at update', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const payload = { mimeType: 'application/json' as const, template: '{"a": {{order.OrderId}} {{order.OrderCode}}}' };
    const created = await rejection(dispatcher.createWebhook({ url: 'https://example.com/hook', triggers: ORDER_CREATE, payload }));
    expect(created).toBeInstanceOf(WebhookValidationError);
    expect((created as WebhookValidationError).field).toBe('payload.template');
    expect(created.message).toMatch(/JSON/);
    expect((await dispatcher.listWebhooks()).items).toEqual([]);

    const { warnings: _warnings, ...created2 } = await dispatcher.createWebhook({ url: 'https://example.com/hook', triggers: ORDER_CREATE });
    const original = await dispatcher.getWebhook(created2.id);
    const updated = await rejection(dispatcher.updateWebhook(original.id, { payload }));
    expect((updated as WebhookValidationError).field).toBe('payload.template');
    expect(await dispatcher.getWebhook(original.id)).toEqual(original);
  });

  it('rejects an XML template whose output is not well-formed', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const error = await rejection(
      dispatcher.createWebhook({
        url: 'https://example.com/hook',
        triggers: ORDER_CREATE,
        payload: { mimeType: 'application/xml', template: '<order><code>{{order.OrderCode}}</order>' },
      }),
    );
    expect((error as WebhookValidationError).field).toBe('payload.template');
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });
});

describe('default payloads (the ShopCtrl table)', () => {
  // From ShopCtrl's "Default webhook payloads" table: the entityData fields per trigger event.
  const TABLE: Array<{ entity: string; event: string; fields: string[] }> = [
    { entity: 'product', event: 'Created', fields: ['ProductId', 'ProductCode', 'ShopGroupId'] },
    { entity: 'invoice', event: 'PaymentsDone', fields: ['InvoiceId', 'InvoiceCode', 'OrderId', 'OrderCode'] },
    {
      entity: 'shipment',
      event: 'Shipped',
      fields: ['ParcelId', 'TrackingCode', 'OrderShipmentId', 'OrderShipmentCode', 'OrderId', 'OrderCode'],
    },
    {
      entity: 'purchase_order',
      event: 'Created',
      fields: ['PurchaseOrderId', 'PurchaseOrderCode', 'SupplierId', 'WarehouseId', 'OrderId', 'OrderCode', 'ShopId'],
    },
    { entity: 'return', event: 'Created', fields: ['OrderReturnId', 'OrderReturnCode', 'OrderId', 'OrderCode'] },
    { entity: 'ticket', event: 'Created', fields: ['TicketId', 'TicketCode', 'OrderId', 'OrderCode', 'ShopId'] },
    {
      entity: 'ticket',
      event: 'HandlingEmployeeChanged',
      fields: [
        'TicketId',
        'TicketCode',
        'OrderId',
        'OrderCode',
        'HandlingEmployeeGroupId',
        'HandlingEmployeeId',
        'OldHandlingEmployeeGroupId',
        'OldHandlingEmployeeId',
      ],
    },
    { entity: 'order', event: 'CustomerRatingChanged', fields: ['OrderId', 'OrderCode', 'CustomerRating'] },
    // "Default (other events)".
    { entity: 'order', event: 'Create', fields: ['OrderId', 'OrderCode'] },
    { entity: 'gift_card', event: 'Redeemed', fields: ['OrderId', 'OrderCode'] },
  ];

  /** A record with every field of the list (ids as numbers), plus fields the table does not list. */
  const recordWith = (fields: readonly string[]): Record<string, unknown> => ({
    ...Object.fromEntries(fields.map((f, i) => [f, /Id$/.test(f) ? 1000 + i : `${f}-value`])),
    Unlisted: 'kept in data only',
    Nested: { Deep: [1, 2] },
  });

  /** Emits each case to one webhook per case and returns the parsed body each received. */
  async function deliverTable(
    cases: ReadonlyArray<{ entity: string; event: string }>,
    dataFor: (entity: string, event: string) => unknown,
    webhook: Partial<CreateWebhookInput> = {},
    dispatcherOptions?: WebhookDispatcherOptions,
    prepare?: (dispatcher: WebhookDispatcher) => void,
  ): Promise<Array<Record<string, unknown>>> {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher(dispatcherOptions);
    prepare?.(dispatcher);
    for (const [i, { entity, event }] of cases.entries()) {
      await dispatcher.createWebhook({ url: receiver.url(`/case/${i}`), triggers: [{ entity, event }], ...webhook });
    }
    for (const { entity, event } of cases) {
      const { deliveries } = await dispatcher.emit({ entity, event, data: dataFor(entity, event) });
      expect(deliveries, `${entity} ${event}`).toHaveLength(1);
    }
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(cases.length);
    return cases.map((_, i) => {
      const request = receiver.requestsTo(`/case/${i}`)[0] as ReceivedRequest;
      expect(request.headers['content-type']).toBe('application/json');
      return JSON.parse(request.body) as Record<string, unknown>;
    });
  }

  it('carry entityData with exactly the listed fields, in order, and the full record as data', async () => {
    const fieldsOf = (entity: string, event: string) => TABLE.find((c) => c.entity === entity && c.event === event)?.fields ?? [];
    const bodies = await deliverTable(TABLE, (entity, event) => recordWith(fieldsOf(entity, event)));
    for (const [i, { entity, event, fields }] of TABLE.entries()) {
      const body = bodies[i] as Record<string, unknown>;
      const data = recordWith(fields);
      expect(Object.keys(body), `${entity} ${event}`).toEqual(['id', 'timestamp', 'entity', 'event', 'tenantId', 'entityData', 'data']);
      expect(body, `${entity} ${event}`).toMatchObject({ entity, event, tenantId: null, data });
      expect(Object.keys(body.entityData as object), `${entity} ${event}`).toEqual(fields);
      expect(body.entityData, `${entity} ${event}`).toEqual(Object.fromEntries(fields.map((f) => [f, data[f]])));
    }
  });

  it('send null for listed fields the data lacks (and for data that is not an object)', async () => {
    const cases = [
      { entity: 'shipment', event: 'Shipped' },
      { entity: 'ticket', event: 'HandlingEmployeeChanged' },
      { entity: 'purchase_order', event: 'Created' },
      { entity: 'order', event: 'Create' },
    ];
    const partial: Record<string, unknown> = { OrderId: 7, TrackingCode: '3SABC', TicketId: 9, ShopId: null, Other: 1 };
    const bodies = await deliverTable(cases, (entity) => (entity === 'order' ? ['not', 'a', 'record'] : partial));

    expect(bodies[0]?.entityData).toEqual({
      ParcelId: null,
      TrackingCode: '3SABC',
      OrderShipmentId: null,
      OrderShipmentCode: null,
      OrderId: 7,
      OrderCode: null,
    });
    expect(bodies[1]?.entityData).toEqual({
      TicketId: 9,
      TicketCode: null,
      OrderId: 7,
      OrderCode: null,
      HandlingEmployeeGroupId: null,
      HandlingEmployeeId: null,
      OldHandlingEmployeeGroupId: null,
      OldHandlingEmployeeId: null,
    });
    expect(bodies[2]?.entityData).toEqual({
      PurchaseOrderId: null,
      PurchaseOrderCode: null,
      SupplierId: null,
      WarehouseId: null,
      OrderId: 7,
      OrderCode: null,
      ShopId: null,
    });
    expect(bodies[3]).toMatchObject({ entityData: { OrderId: null, OrderCode: null }, data: ['not', 'a', 'record'] });
  });

  it('in thin mode have no data key (entityData only)', async () => {
    const cases = [
      { entity: 'invoice', event: 'PaymentsDone' },
      { entity: 'order', event: 'Create' },
    ];
    const record = recordWith(['InvoiceId', 'InvoiceCode', 'OrderId', 'OrderCode']);
    const bodies = await deliverTable(cases, () => record, { payloadMode: 'thin' });
    expect(Object.keys(bodies[0] ?? {})).toEqual(['id', 'timestamp', 'entity', 'event', 'tenantId', 'entityData']);
    expect(bodies[0]?.entityData).toEqual({ InvoiceId: 1000, InvoiceCode: 'InvoiceCode-value', OrderId: 1002, OrderCode: 'OrderCode-value' });
    expect(bodies[1]).not.toHaveProperty('data');
    expect(bodies[1]?.entityData).toEqual({ OrderId: 1002, OrderCode: 'OrderCode-value' });
  });

  it('full and thin webhooks on one emit each get their own shape', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    await dispatcher.createWebhook({ url: receiver.url('/full'), triggers: ORDER_CREATE });
    await dispatcher.createWebhook({ url: receiver.url('/thin'), triggers: ORDER_CREATE, payloadMode: 'thin' });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: ORDER });
    await dispatcher.drain();
    const full = JSON.parse(receiver.requestsTo('/full')[0]?.body ?? '{}') as Record<string, unknown>;
    const thin = JSON.parse(receiver.requestsTo('/thin')[0]?.body ?? '{}') as Record<string, unknown>;
    expect(full.data).toEqual(ORDER);
    expect(thin).not.toHaveProperty('data');
    const { data: _data, ...fullWithoutData } = full;
    expect(thin).toEqual(fullWithoutData);
  });

  it('use lists from the entityFields option and registerEntityFields for host entities and events', async () => {
    const cases = [
      { entity: 'warehouse', event: 'Changed' },
      { entity: 'ticket', event: 'Created' },
      { entity: 'gift_card', event: 'Redeemed' },
      { entity: 'gift_card', event: 'Expired' },
      { entity: 'product', event: 'Created' },
    ];
    const data = {
      WarehouseId: 3,
      WarehouseCode: 'WH-3',
      TicketId: 4,
      TicketCode: 'T-4',
      GiftCardId: 5,
      GiftCardCode: 'GC-5',
      Balance: 12.5,
      ProductId: 6,
      ProductCode: 'P-6',
      ShopGroupId: 7,
      OrderId: 8,
    };
    const bodies = await deliverTable(
      cases,
      () => data,
      {},
      { entityFields: { warehouse: ['WarehouseId', 'WarehouseCode'], 'ticket:Created': ['TicketId', 'TicketCode'] } },
      (dispatcher) => {
        dispatcher.registerEntityFields('gift_card', ['GiftCardId', 'GiftCardCode']);
        dispatcher.registerEntityFields('gift_card', ['GiftCardId', 'Balance', 'Missing'], { event: 'Expired' });
      },
    );
    expect(bodies.map((b) => b.entityData)).toEqual([
      { WarehouseId: 3, WarehouseCode: 'WH-3' },
      { TicketId: 4, TicketCode: 'T-4' },
      { GiftCardId: 5, GiftCardCode: 'GC-5' },
      { GiftCardId: 5, Balance: 12.5, Missing: null },
      // The ShopCtrl defaults stay in place beside the host's lists.
      { ProductId: 6, ProductCode: 'P-6', ShopGroupId: 7 },
    ]);
  });

  it('registerEntityFields rejects a list that is not field names', () => {
    const dispatcher = newDispatcher({ autoStart: false });
    expect(() => dispatcher.registerEntityFields('gift_card', ['GiftCardId', ''])).toThrow(WebhookValidationError);
    expect(() => dispatcher.registerEntityFields('', ['GiftCardId'])).toThrow(WebhookValidationError);
  });
});

describe('a payload that cannot be built for one webhook', () => {
  it('fails only that webhook’s delivery (failed, lastError, alert with execution null); the other webhook is delivered', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ maxPayloadBytes: 20_000 });
    const alerts: Alert[] = [];
    const errors: unknown[] = [];
    dispatcher.on('alert', (alert) => alerts.push(alert));
    dispatcher.on('error', ({ error }) => errors.push(error));
    // Each item renders 60 bytes of text: fine for a few, far over the limit for 2,000.
    const broken = await dispatcher.createWebhook({
      url: receiver.url('/broken'),
      triggers: ORDER_CREATE,
      payload: { mimeType: 'text/plain', template: '{{#each order.Items}}item {{@index}} of a rather verbose merchant template ........\n{{/each}}' },
    });
    const healthy = await dispatcher.createWebhook({ url: receiver.url('/healthy'), triggers: ORDER_CREATE });

    const data = { OrderId: 1, Items: Array.from({ length: 2_000 }, () => 0) };
    expect(Buffer.byteLength(JSON.stringify(data))).toBeLessThan(20_000);
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data });
    expect(deliveries).toHaveLength(2);
    await dispatcher.drain();

    const brokenId = deliveries.find((d) => d.webhookId === broken.id)?.id ?? '';
    const healthyId = deliveries.find((d) => d.webhookId === healthy.id)?.id ?? '';
    const failed = await dispatcher.getDelivery(brokenId);
    expect(failed).toMatchObject({ status: 'failed', attempts: 0 });
    expect(failed.lastError).toMatch(/payload/);
    expect(failed.lastError).toMatch(/20000/);
    expect(await dispatcher.getDelivery(healthyId)).toMatchObject({ status: 'succeeded', attempts: 1, lastStatus: 200 });

    expect(receiver.requestsTo('/broken')).toEqual([]);
    expect(receiver.requestsTo('/healthy')).toHaveLength(1);
    expect(JSON.parse(receiver.requestsTo('/healthy')[0]?.body ?? '{}')).toMatchObject({ data });

    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'delivery_failed', webhookId: broken.id, execution: null, delivery: { id: brokenId, status: 'failed' } });
    expect(alerts[0]?.type === 'delivery_failed' ? alerts[0].reason : '').toBe(failed.lastError);
    expect(errors).toHaveLength(1);
    expect((await dispatcher.listExecutions({ webhookId: broken.id })).items).toEqual([]);
  });

  it('fails the delivery when the template exceeds its own render limit (iterations) too', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const alerts: Alert[] = [];
    dispatcher.on('alert', (alert) => alerts.push(alert));
    dispatcher.on('error', () => {});
    const nested = await dispatcher.createWebhook({
      url: receiver.url('/nested'),
      triggers: ORDER_CREATE,
      // 400 × 400 = 160,000 iterations, over the 100,000 a render may make.
      payload: { mimeType: 'text/plain', template: '{{#each order.Rows}}{{#each @root.order.Rows}}.{{/each}}{{/each}}' },
    });
    const healthy = await dispatcher.createWebhook({ url: receiver.url('/healthy'), triggers: ORDER_CREATE, payloadMode: 'thin' });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { Rows: Array.from({ length: 400 }, () => 1) } });
    await dispatcher.drain();

    const failed = await dispatcher.getDelivery(deliveries.find((d) => d.webhookId === nested.id)?.id ?? '');
    expect(failed.status).toBe('failed');
    expect(failed.lastError).toMatch(/maxIterations/);
    expect(alerts).toMatchObject([{ type: 'delivery_failed', webhookId: nested.id, execution: null }]);
    expect(receiver.requestsTo('/nested')).toEqual([]);
    expect(receiver.requestsTo('/healthy')).toHaveLength(1);
    expect(await dispatcher.getDelivery(deliveries.find((d) => d.webhookId === healthy.id)?.id ?? '')).toMatchObject({ status: 'succeeded' });
  });
});

describe('maxPayloadBytes', () => {
  it('refuses an emit whose data is over the limit with payload_too_large, queueing nothing', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ maxPayloadBytes: 1_000 });
    await dispatcher.createWebhook({ url: receiver.url('/hook'), triggers: ORDER_CREATE });
    const data = { OrderId: 1, Note: 'x'.repeat(1_000) };

    const error = await rejection(dispatcher.emit({ entity: 'order', event: 'Create', data }));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error.code).toBe('payload_too_large');
    expect(error).toMatchObject({ limitBytes: 1_000, sizeBytes: Buffer.byteLength(JSON.stringify(data)) });
    await dispatcher.drain();
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
    expect(receiver.requests).toEqual([]);

    // Multi-byte characters count as bytes, not as UTF-16 units.
    const euros = { Note: '€'.repeat(400) };
    expect(JSON.stringify(euros).length).toBeLessThan(1_000);
    expect((await rejection(dispatcher.emit({ entity: 'order', event: 'Create', data: euros }))).code).toBe('payload_too_large');

    // Under the limit (data and the default payload around it) is fine.
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { Note: 'x'.repeat(600) } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('transform', () => {
  it('renames a key and adds a header; the receiver gets both and the signature covers the transformed body', async () => {
    const seen: OutgoingPayload[] = [];
    const { request, webhook, dispatcher, deliveryId } = await deliverOne({}, ORDER, {
      transform: (outgoing) => {
        seen.push(outgoing);
        const { data, ...rest } = outgoing.payload as Record<string, unknown>;
        return { payload: { ...rest, record: data }, headers: { 'X-Transformed': 'renamed data to record' } };
      },
    });

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      webhookId: webhook.id,
      deliveryId,
      entity: 'order',
      event: 'Create',
      isTest: false,
      tenantId: null,
      contentType: 'application/json',
    });
    expect(seen[0]?.payload).toEqual(JSON.parse(seen[0]?.body ?? ''));

    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(body).not.toHaveProperty('data');
    expect(body.record).toEqual(ORDER);
    expect(Object.keys(body)).toEqual(['id', 'timestamp', 'entity', 'event', 'tenantId', 'entityData', 'record']);
    expect(request.headers['x-transformed']).toBe('renamed data to record');
    // deliverOne verified the signature over the received (transformed) body; the stored
    // delivery keeps the original body and the execution log records what was sent.
    const [execution] = (await dispatcher.listExecutions({ deliveryId })).items;
    expect(execution?.requestBody).toBe(request.body);
    expect(execution?.success).toBe(true);
  });

  it('can replace the body of a non-JSON payload (payload undefined, body given)', async () => {
    const { request } = await deliverOne({ payload: { mimeType: 'text/plain', template: 'code={{order.OrderCode}}' } }, ORDER, {
      transform: (outgoing) => {
        expect(outgoing.payload).toBeUndefined();
        return { body: `${outgoing.body};signed-by=host` };
      },
    });
    expect(request.body).toBe('code=SO-42;signed-by=host');
    expect(request.headers['content-type']?.split(';')[0]).toBe('text/plain');
  });

  /** Two webhooks on one receiver; the transform misbehaves for the first only. */
  async function transformCase(misbehave: (outgoing: OutgoingPayload) => ReturnType<NonNullable<WebhookDispatcherOptions['transform']>>) {
    const receiver = await startReceiver();
    let victim = '';
    const dispatcher = newDispatcher({
      // Retries allowed: a transform failure must still not be retried.
      retry: { maxAttempts: 5 },
      transform: (outgoing) => (outgoing.webhookId === victim ? misbehave(outgoing) : { headers: { 'X-Ok': '1' } }),
    });
    const bad: Webhook = await dispatcher.createWebhook({ url: receiver.url('/bad'), triggers: ORDER_CREATE });
    victim = bad.id;
    const good = await dispatcher.createWebhook({ url: receiver.url('/good'), triggers: ORDER_CREATE });
    const failures: Alert[] = [];
    dispatcher.on('alert', (alert) => failures.push(alert));
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: ORDER });
    await dispatcher.drain();
    const badDelivery = await dispatcher.getDelivery(deliveries.find((d) => d.webhookId === bad.id)?.id ?? '');
    const goodDelivery = await dispatcher.getDelivery(deliveries.find((d) => d.webhookId === good.id)?.id ?? '');
    const executions = (await dispatcher.listExecutions({ webhookId: bad.id })).items;
    return { receiver, bad, good, badDelivery, goodDelivery, executions, failures };
  }

  it('a throwing transform fails that delivery (transform_error, status 0, hard error, not retried); others are delivered', async () => {
    const { receiver, bad, badDelivery, goodDelivery, executions, failures } = await transformCase(() => {
      throw new Error('host transform exploded');
    });
    expect(badDelivery).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 0 });
    expect(executions).toHaveLength(1);
    expect(executions[0]).toMatchObject({
      errorCode: 'transform_error',
      status: 0,
      hardError: true,
      success: false,
      nextAttemptAt: null,
    });
    expect(executions[0]?.errorMessage).toContain('host transform exploded');
    expect(failures).toMatchObject([{ type: 'delivery_failed', webhookId: bad.id }]);

    expect(receiver.requestsTo('/bad')).toEqual([]);
    expect(goodDelivery).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(receiver.requestsTo('/good')[0]?.headers['x-ok']).toBe('1');
  });

  it('a transform returning a header with CRLF fails that delivery: no header injection', async () => {
    const { receiver, badDelivery, goodDelivery, executions } = await transformCase(() => ({
      headers: { 'X-Evil': 'a\r\nX-Injected: 1\r\n\r\nsmuggled' },
    }));
    expect(badDelivery).toMatchObject({ status: 'failed', attempts: 1 });
    expect(executions).toMatchObject([{ errorCode: 'transform_error', status: 0, hardError: true }]);
    expect(receiver.requestsTo('/bad')).toEqual([]);
    expect(receiver.requests.some((r) => 'x-injected' in r.headers || 'x-evil' in r.headers)).toBe(false);
    expect(goodDelivery.status).toBe('succeeded');
  });

  it('a transform returning an invalid header name fails that delivery too', async () => {
    const { receiver, badDelivery, executions } = await transformCase(() => ({ headers: { 'X Bad:Name': 'v' } }));
    expect(badDelivery.status).toBe('failed');
    expect(executions[0]?.errorCode).toBe('transform_error');
    expect(receiver.requestsTo('/bad')).toEqual([]);
  });

  it('transform failures are the host’s, not the endpoint’s: they do not open its circuit breaker', async () => {
    // Three webhooks whose transform throws and one healthy webhook share an endpoint. With the
    // default breaker (≥ 70 % failures over ≥ 10 attempts), counting the host's transform errors
    // as endpoint failures would pause the healthy webhook.
    const receiver = await startReceiver();
    const victims = new Set<string>();
    const dispatcher = newDispatcher({
      circuitBreaker: {}, // the default breaker
      concurrency: 1,
      transform: (outgoing) => {
        if (victims.has(outgoing.webhookId)) throw new Error('host bug');
      },
    });
    const paused: unknown[] = [];
    dispatcher.on('webhook.paused', (event) => paused.push(event));
    for (let i = 0; i < 3; i++) {
      victims.add((await dispatcher.createWebhook({ url: receiver.url(`/bad/${i}`), triggers: ORDER_CREATE })).id);
    }
    const good = await dispatcher.createWebhook({ url: receiver.url('/good'), triggers: ORDER_CREATE });
    for (let i = 0; i < 6; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
    await dispatcher.drain();

    const goodDeliveries = (await dispatcher.listDeliveries({ webhookId: good.id })).items;
    expect.soft(paused).toEqual([]);
    expect.soft(goodDeliveries.map((d) => d.status)).toEqual(Array.from({ length: 6 }, () => 'succeeded'));
    expect.soft(receiver.requestsTo('/good')).toHaveLength(6);
  });
});

describe('sendTestEvent', () => {
  it('delivers the entity’s sample fields with the test header, even to a disabled webhook', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/test'),
      triggers: [{ entity: 'invoice', event: 'PaymentsDone' }],
      enabled: false,
    });
    const { delivery, execution } = await dispatcher.sendTestEvent(webhook.id);

    expect(execution?.status).toBe(200);
    expect(execution?.success).toBe(true);
    expect(delivery).toMatchObject({ status: 'succeeded', isTest: true, attempts: 1, webhookId: webhook.id, entity: 'invoice', event: 'PaymentsDone' });
    const request = only(receiver);
    expect(request.headers['x-pakk-webhook-test']).toBe('true');
    expect(request.headers['webhook-id']).toBe(delivery.id);
    expect(() => verifySignature({ secret: webhook.secret, body: request.body, headers: request.headers })).not.toThrow();
    const sample = { InvoiceId: 1, InvoiceCode: 'InvoiceCode-1', OrderId: 1, OrderCode: 'OrderCode-1' };
    expect(JSON.parse(request.body)).toMatchObject({ entity: 'invoice', event: 'PaymentsDone', entityData: sample, data: sample });
    // The webhook stays disabled; regular emits still skip it.
    expect((await dispatcher.getWebhook(webhook.id)).enabled).toBe(false);
    expect((await dispatcher.emit({ entity: 'invoice', event: 'PaymentsDone', data: sample })).deliveries).toEqual([]);
  });

  it('renders the webhook’s template with the given entity, event and data', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/test'),
      triggers: ORDER_CREATE,
      payload: { mimeType: 'application/xml', template: '<t e="{{meta.entity}}" v="{{meta.event}}">{{data.OrderCode}}</t>' },
    });
    const { execution } = await dispatcher.sendTestEvent(webhook.id, { entity: 'order', event: 'Paid', data: { OrderCode: 'SO-<1>' } });
    expect(execution?.status).toBe(200);
    const request = only(receiver);
    expect(request.body).toBe('<t e="order" v="Paid">SO-&lt;1&gt;</t>');
    expect(request.headers['x-pakk-webhook-test']).toBe('true');
    expect(request.headers['x-pakk-webhook-triggerevent']).toBe('Paid');
  });

  it('uses the entityData sample of a registered host entity', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ entityFields: { warehouse: ['WarehouseId', 'WarehouseCode'] } });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/test'), triggers: [{ entity: 'warehouse', event: 'Changed' }] });
    await dispatcher.sendTestEvent(webhook.id);
    expect(JSON.parse(only(receiver).body)).toMatchObject({ entityData: { WarehouseId: 1, WarehouseCode: 'WarehouseCode-1' } });
  });

  it('makes one attempt only: a 500 answer fails the test delivery without a retry', async () => {
    const receiver = await startReceiver({ respond: { status: 500, body: 'boom' } });
    // Ten attempts for regular deliveries: the test send must still stop after one.
    const dispatcher = newDispatcher({ retry: { maxAttempts: 10 } });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/test'), triggers: ORDER_CREATE });
    const { delivery, execution } = await dispatcher.sendTestEvent(webhook.id);

    expect(execution).toMatchObject({ status: 500, success: false, nextAttemptAt: null, responseBody: 'boom' });
    expect(delivery).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 500, isTest: true });
    await dispatcher.drain();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(receiver.requests).toHaveLength(1);
    expect((await dispatcher.listExecutions({ deliveryId: delivery.id })).items).toHaveLength(1);
  });

  it('rejects clearly when the dispatcher was not started (autoStart: false)', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: 'https://example.com/hook', triggers: ORDER_CREATE });
    const error = await rejection(dispatcher.sendTestEvent(webhook.id));
    expect(error.message).toMatch(/start\(\)/);
    expect((await dispatcher.listDeliveries()).items).toEqual([]);
  });

  it('rejects an unknown webhook id', async () => {
    const dispatcher = newDispatcher();
    expect((await rejection(dispatcher.sendTestEvent('wh_missing'))).code).toBe('webhook_not_found');
  });
});
