/**
 * The product documents taken literally (ShopCtrl's MIME types and its table of trigger events),
 * and the promise that bad input gets a typed error: emit's transaction, previewPayload's data,
 * unknown merge fields at save.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  MemoryStorage,
  SHOPCTRL_EVENTS,
  shopCtrlEvent,
  WebhookDispatcher,
  WebhookError,
  WebhookValidationError,
} from 'webhook-dispatcher';
import { compileTemplate } from '../src/mergefields/compile.js';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import { LifecycleHarness } from './helpers/lifecycle.js';

const harness = new LifecycleHarness();
afterEach(() => harness.cleanup());

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

/** Awaits `run` and returns what it threw (failing the test when it did not throw). */
async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('MIME types as ShopCtrl spells them', () => {
  it.each([
    ['application/JSON', 'application/json', '{"code":"{{order.OrderCode}}"}', 'application/json'],
    ['application/XML', 'application/xml', '<order><code>{{order.OrderCode}}</code></order>', 'application/xml; charset=utf-8'],
    ['text/plain', 'text/plain', 'Order {{order.OrderCode}}', 'text/plain; charset=utf-8'],
    ['TEXT/Plain', 'text/plain', 'Order {{order.OrderCode}}', 'text/plain; charset=utf-8'],
    [' Application/Json ', 'application/json', '{"code":"{{order.OrderCode}}"}', 'application/json'],
  ])('%j is accepted, stored as %s and delivered with its content type', async (given, stored, template, contentType) => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: ORDER_CREATE,
      payload: { mimeType: given as 'application/json', template },
    });
    expect(webhook.payload?.mimeType).toBe(stored);
    expect((await dispatcher.getWebhook(webhook.id)).payload?.mimeType).toBe(stored);
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1, OrderCode: 'SO-1' } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]!.headers['content-type']).toBe(contentType);
    expect(receiver.requests[0]!.body).toContain('SO-1');
  });

  it('updateWebhook, compileTemplate and previewPayload take any letter case too', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE });
    const updated = await dispatcher.updateWebhook(webhook.id, { payload: { mimeType: 'Application/XML' as 'application/xml', template: '<a>{{order.OrderCode}}</a>' } });
    expect(updated.payload?.mimeType).toBe('application/xml');
    expect(compileTemplate('<a>{{order.X}}</a>', 'APPLICATION/XML' as 'application/xml').mimeType).toBe('application/xml');
    const preview = await dispatcher.previewPayload({ mimeType: 'application/JSON' as 'application/json', template: '{"c":"{{order.OrderCode}}"}' }, {
      entity: 'order',
      event: 'Create',
      data: { OrderCode: 'SO-9' },
    });
    expect(preview).toMatchObject({ body: '{"c":"SO-9"}', contentType: 'application/json' });
  });

  it('refuses other MIME types naming payload.mimeType', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    for (const mimeType of ['application/yaml', 'json', '', 'application/json; charset=utf-8']) {
      const error = await thrown(() =>
        dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE, payload: { mimeType: mimeType as 'text/plain', template: 'x' } }),
      );
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('payload.mimeType');
    }
  });
});

/** ShopCtrl's table, row by row as the document prints it: event names → entityData fields. */
const SHOPCTRL_TABLE: Array<[names: string[], fields: string]> = [
  [['Product Created', 'Product Changed', 'Product Deleted', 'Product Available Stock Changed', 'Product Locked', 'Product Unlocked', 'Product Dimensions Changed'], 'ProductId ProductCode ShopGroupId'],
  [['Product Package Created', 'Product Package Changed'], 'ProductPackageId ProductId ShopGroupId'],
  [['Product Package Deleted'], 'ProductPackageId ProductId ShopGroupId'],
  [['Product Selection Product Changed', 'Product Selection Product Deleted'], 'ProductId ProductCode ProductSelectionProductId ShopId'],
  [['Product Group Changed', 'Product Group Deleted'], 'ProductGroupId ProductGroupName'],
  [['Order Customer Rating Changed'], 'OrderId OrderCode CustomerRating'],
  [['Order Comment Changed'], 'OrderCommentId OrderId OrderCode TicketId TicketCode'],
  [['Invoice Payments Done', 'Order Invoices All Paid', 'Invoice Payments Not Done', 'Invoice Payments Partial Done', 'Non Draft Invoice Saved', 'Non Draft Credit Invoice Saved', 'Order Invoices Created'], 'InvoiceId InvoiceCode OrderId OrderCode'],
  [['New Shop Saved', 'Init New Shop'], 'ShopId'],
  [['Purchase Order Created', 'Purchase Order Delivery Provisioned', 'Purchase Order Delivery Received', 'Purchase Order Handed Over', 'Purchase Order Provisioned', 'Purchase Order Received', 'Purchase Order Main Status Changed', 'Purchase Order Submit Status Changed', 'Purchase Order Payment Status Changed', 'Purchase Order Provision Status Changed', 'Purchase Order Custom Status Changed'], 'PurchaseOrderId PurchaseOrderCode SupplierId WarehouseId OrderId OrderCode ShopId'],
  [['Shipment Created', 'Shipment Delivered', 'Parcel Status Change', 'Parcel Pickup Done', 'New Parcel Added', 'Shipment Picked', 'Shipment Packed', 'Shipment Shipped', 'Order Shipment Status hanged', 'Order Fully Shipped', 'Shipment Handover'], 'ParcelId TrackingCode OrderShipmentId OrderShipmentCode OrderId OrderCode'],
  [['Main Order Return Status Changed', 'Order Return Changed', 'Order Return Created'], 'OrderReturnId OrderReturnCode OrderId OrderCode'],
  [['Product Property Def Changed', 'Product Property Def Deleted'], 'Id Code'],
  [['Product Brand Changed', 'Product Brand Deleted'], 'Id Name'],
  [['Voip Call Changed'], 'Id'],
  [['Ticket Main Status Changed', 'Ticket Created'], 'TicketId TicketCode OrderId OrderCode ShopId'],
  [['Ticket Handling Employee Group Changed', 'Ticket Handling Employee Changed'], 'TicketId TicketCode OrderId OrderCode HandlingEmployeeGroupId HandlingEmployeeId OldHandlingEmployeeGroupId OldHandlingEmployeeId'],
  [['Ticket Incoming Message', 'Ticket Outcoming Message'], 'TicketId TicketCode OrderId OrderCode ShopId TicketMessageDirection'],
];
const TABLE_ROWS = SHOPCTRL_TABLE.flatMap(([names, fields]) => names.map((name) => [name, fields.split(' ')] as const));

describe("ShopCtrl's table of trigger events", () => {
  it('names every event of the document, each once, with distinct { entity, event } pairs', () => {
    expect(TABLE_ROWS).toHaveLength(61);
    expect(SHOPCTRL_EVENTS).toHaveLength(61);
    const pairs = new Set(SHOPCTRL_EVENTS.map((e) => `${e.entity}:${e.event}`));
    expect(pairs.size).toBe(61);
  });

  it.each(TABLE_ROWS)('%s: its default payload carries the table fields in entityData (null when the data lacks them)', async (name, fields) => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher();
    const trigger = shopCtrlEvent(name);
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: [trigger] });
    const data = Object.fromEntries(fields.slice(1).map((f, i) => [f, /Id$/.test(f) ? i + 10 : `${f}-x`]));
    const result = await dispatcher.emit({ ...trigger, data: { ...data, Extra: 'kept in data' } });
    expect(result.deliveries).toHaveLength(1);
    await dispatcher.drain();
    const body = JSON.parse(receiver.requests[0]!.body) as { entity: string; event: string; entityData: Record<string, unknown> };
    expect(body).toMatchObject({ entity: trigger.entity, event: trigger.event });
    expect(Object.keys(body.entityData)).toEqual(fields);
    expect(body.entityData[fields[0]!]).toBeNull();
    for (const field of fields.slice(1)) expect(body.entityData[field]).toBe(data[field]);
    // The merge-field list of the event (the "Available Mergefields" button) shows them too.
    const paths = dispatcher.listMergeFields(trigger).map((f) => f.path);
    for (const field of fields) expect(paths).toContain(`${trigger.entity}.${field}`);
  });

  it("the events listed under the order entity carry the invoice or shipment ids, not the order's defaults", () => {
    expect(shopCtrlEvent('Order Fully Shipped')).toEqual({ entity: 'order', event: 'FullyShipped' });
    expect(shopCtrlEvent('Order Invoices All Paid')).toEqual({ entity: 'order', event: 'InvoicesAllPaid' });
    const dispatcher = harness.dispatcher({ autoStart: false });
    const shipped = dispatcher.listMergeFields({ entity: 'order', event: 'FullyShipped' }).map((f) => f.path);
    expect(shipped).toContain('order.TrackingCode');
    const edit = dispatcher.listMergeFields({ entity: 'order', event: 'Edit' }).map((f) => f.path);
    expect(edit.filter((p) => p.startsWith('order.'))).toEqual(['order.OrderId', 'order.OrderCode']);
  });

  it('finds names in any case and spacing, and refuses unknown names naming the field', () => {
    expect(shopCtrlEvent('  order   fully SHIPPED ')).toEqual({ entity: 'order', event: 'FullyShipped' });
    expect(shopCtrlEvent('Order Shipment Status Changed')).toEqual(shopCtrlEvent('Order Shipment Status hanged'));
    for (const name of ['Order Teleported', '', '__proto__', 'constructor', 42, null]) {
      let error: unknown;
      try {
        shopCtrlEvent(name as string);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('name');
    }
  });
});

describe('previewPayload refuses what emit refuses, with the same typed error', () => {
  const cyclic: Record<string, unknown> = { OrderId: 1 };
  cyclic.self = cyclic;
  it.each([
    ['BigInt', { OrderId: 1n }],
    ['a cycle', cyclic],
    ['a throwing toJSON', { toJSON: () => { throw new Error('nope'); } }],
    ['a function', () => 1],
  ])('%s in the data', async (_what, data) => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE });
    const templated = await dispatcher.createWebhook({
      url: 'https://example.com/h',
      triggers: ORDER_CREATE,
      payload: { mimeType: 'text/plain', template: 'Order {{order.OrderId}}' },
    });
    for (const target of [webhook.id, webhook, templated.id, { mimeType: 'application/json' as const, template: '{"a":"{{order.OrderId}}"}' }]) {
      const error = await thrown(() => dispatcher.previewPayload(target, { entity: 'order', event: 'Create', data }));
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('data');
    }
    const emitted = await thrown(() => dispatcher.emit({ entity: 'order', event: 'Create', data }));
    expect((emitted as WebhookValidationError).field).toBe('data');
  });

  it('a bare template with a bad MIME type or an empty template names the field', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const input = { entity: 'order', event: 'Create', data: {} };
    const mime = await thrown(() => dispatcher.previewPayload({ mimeType: 'text/html' as 'text/plain', template: 'x' }, input));
    expect((mime as WebhookValidationError).field).toBe('mimeType');
    const empty = await thrown(() => dispatcher.previewPayload({ mimeType: 'text/plain', template: '' }, input));
    expect((empty as WebhookValidationError).field).toBe('template');
  });
});

describe('emit({ transaction }) checks the transaction on every call', () => {
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it('MemoryStorage: refused even when no webhook matches', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false, storage: new MemoryStorage() });
    const error = await thrown(() => dispatcher.emit({ entity: 'order', event: 'Create', data: {}, transaction: {} }));
    expect(error).toBeInstanceOf(WebhookValidationError);
    expect((error as WebhookValidationError).field).toBe('transaction');
  });

  it('SQLite: a value that is not a Database inside a transaction is refused with no webhook registered', async () => {
    const db = new Database(':memory:');
    const storage = new SqliteStorage({ database: db });
    await storage.migrate();
    const dispatcher = harness.dispatcher({ autoStart: false, storage });
    for (const transaction of [{}, null, 'tx', db]) {
      const error = await thrown(() => dispatcher.emit({ entity: 'order', event: 'Create', data: {}, transaction }));
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('transaction');
    }
    db.exec('BEGIN IMMEDIATE');
    expect(await dispatcher.emit({ entity: 'order', event: 'Create', data: {}, transaction: db })).toEqual({ deliveries: [] });
    db.exec('COMMIT');
    db.close();
  });

  it('Postgres: a value without query() is refused before any round trip', async () => {
    // No connection is made: the pool is never queried.
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, max: 1 });
    pools.push(pool);
    const dispatcher = harness.dispatcher({ autoStart: false, storage: new PostgresStorage({ pool }), webhookCacheMs: 0 });
    const error = await thrown(() => dispatcher.emit({ entity: 'order', event: 'Create', data: {}, transaction: { notAClient: true } }));
    expect(error).toBeInstanceOf(WebhookValidationError);
    expect((error as WebhookValidationError).field).toBe('transaction');
  });
});

describe('unknown merge fields are reported at save', () => {
  const template = (body: string) => ({ mimeType: 'application/json' as const, template: body });

  it('a misspelt field is a warning in the result, with the closest known name, and the webhook is saved', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const saved = await dispatcher.createWebhook({
      url: 'https://example.com/h',
      triggers: ORDER_CREATE,
      payload: template('{"code":"{{order.OrdrCode}}","id":{{order.OrderId}}}'),
    });
    expect(saved.warnings).toEqual([
      expect.objectContaining({ field: 'payload.template', mergeField: 'order.OrdrCode', message: expect.stringContaining('did you mean {{order.OrderCode}}') }),
    ]);
    expect((await dispatcher.getWebhook(saved.id)).payload).toEqual(saved.payload);
  });

  it('with strictMergeFields the save is refused naming payload.template, and nothing is stored', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false, strictMergeFields: true });
    const error = await thrown(() =>
      dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE, payload: template('{"t":"{{order.Totl}}","u":"{{meta.nope}}"}') }),
    );
    expect(error).toBeInstanceOf(WebhookValidationError);
    expect((error as WebhookValidationError).issues.map((i) => i.path)).toEqual(['payload.template', 'payload.template']);
    expect(String((error as Error).message)).toContain('order.Totl');
    expect(String((error as Error).message)).toContain('meta.nope');
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });

  it('a sample record given at save, registered fields and the ShopCtrl table make fields known', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false, strictMergeFields: true, entityFields: { warehouse: ['WarehouseId'] } });
    const sample = { OrderId: 1, Total: 9.5, Lines: [{ Sku: 'A' }] };
    const withSample = await dispatcher.createWebhook({
      url: 'https://example.com/h',
      triggers: ORDER_CREATE,
      payloadSample: sample,
      payload: template('{"t":{{order.Total}},"l":[{{#each order.Lines}}"{{Sku}}"{{#unless @last}},{{/unless}}{{/each}}],"d":{{data.OrderId}},"m":"{{meta.webhookId}}"}'),
    });
    expect(withSample.warnings).toEqual([]);
    const registered = await dispatcher.createWebhook({
      url: 'https://example.com/h',
      triggers: [{ entity: 'warehouse', event: 'Edit' }, shopCtrlEvent('Order Fully Shipped')],
      payload: template('{"w":"{{warehouse.WarehouseId}}","p":"{{order.ParcelId}}","n":"{{order.TrackingCode.Deep}}"}'),
    });
    expect(registered.warnings).toEqual([]);
  });

  it('a root that is no trigger entity is named; a wildcard entity is not checked beyond meta', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const saved = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE, payload: template('{"c":"{{customer.Name}}"}') });
    expect(saved.warnings[0]?.message).toMatch(/"customer" is not the entity of any trigger/);
    const wildcard = await dispatcher.createWebhook({
      url: 'https://example.com/h',
      triggers: [{ entity: '*', event: '*' }],
      payload: template('{"c":"{{customer.Name}}","m":"{{meta.nope}}"}'),
    });
    expect(wildcard.warnings.map((w) => w.mergeField)).toEqual(['meta.nope']);
  });

  it('updateWebhook reports them the same way; an unrelated change reports none', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const created = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE, payload: template('{"c":"{{order.Cod}}"}') });
    expect(created.warnings).toHaveLength(1);
    expect((await dispatcher.updateWebhook(created.id, { description: 'x' })).warnings).toEqual([]);
    expect((await dispatcher.updateWebhook(created.id, { payload: template('{"c":"{{order.Kode}}"}') })).warnings).toHaveLength(1);
  });

  it('property: warnings name exactly the fields outside the sample, whatever the names', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(name, { minLength: 1, maxLength: 5 }), fc.uniqueArray(name, { maxLength: 5 }), async (used, present) => {
        const sample = Object.fromEntries(present.map((p) => [p, 'v']));
        const saved = await dispatcher.createWebhook({
          url: 'https://example.com/h',
          triggers: ORDER_CREATE,
          payloadSample: sample,
          payload: { mimeType: 'text/plain', template: used.map((u) => `{{order.${u}}}`).join(' ') },
        });
        expect(saved.warnings.map((w) => w.mergeField).sort()).toEqual(used.filter((u) => !present.includes(u)).map((u) => `order.${u}`).sort());
      }),
      { numRuns: 150 },
    );
  });
});

describe('every error the public API throws is a WebhookError', () => {
  /** Runs `call` and fails the property unless it succeeded or threw a WebhookError. */
  async function onlyTyped(call: () => unknown): Promise<void> {
    try {
      await call();
    } catch (error) {
      if (!(error instanceof WebhookError)) throw new Error(`untyped error: ${String(error)}`, { cause: error });
    }
  }

  it('property: arbitrary input to constructors and methods, mixed', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_CREATE });
    const value = fc.oneof(
      fc.anything({ withBigInt: true, withDate: true, withMap: true, withNullPrototype: true, withTypedArray: true }),
      fc.record({ entity: fc.constantFrom('order', '', '*', 1), event: fc.constantFrom('Create', '', null), data: fc.anything({ withBigInt: true }) }, { requiredKeys: [] }),
      fc.record(
        {
          url: fc.constantFrom('https://example.com/x', 'ftp://x', '', 'http://127.0.0.1/'),
          triggers: fc.constantFrom(ORDER_CREATE, [], [{ entity: '' }], 'x'),
          payload: fc.record({ mimeType: fc.constantFrom('application/JSON', 'text/html', 1), template: fc.string() }, { requiredKeys: [] }),
          secret: fc.string(),
          headers: fc.dictionary(fc.string(), fc.string()),
        },
        { requiredKeys: [] },
      ),
    );
    const calls: Array<(a: unknown, b: unknown) => unknown> = [
      (a) => new WebhookDispatcher(a as never).close(),
      (a) => new SqliteStorage(a as never),
      (a) => new PostgresStorage(a as never),
      (a) => shopCtrlEvent(a as never),
      (a, b) => compileTemplate(a as never, b as never),
      (a) => dispatcher.createWebhook(a as never),
      (a) => dispatcher.updateWebhook(webhook.id, a as never),
      (a) => dispatcher.emit(a as never),
      (a, b) => dispatcher.previewPayload(a as never, b as never),
      (a, b) => dispatcher.previewPayload(webhook.id, { entity: 'order', event: 'Create', data: a, ...(typeof b === 'object' ? b : {}) } as never),
      (a) => dispatcher.listMergeFields(a as never),
      (a) => dispatcher.listWebhooks(a as never),
      (a) => dispatcher.listExecutions(a as never),
      (a) => dispatcher.listDeliveries(a as never),
      (a) => dispatcher.retryFailed(a as never),
      (a) => dispatcher.prune(a as never),
      (a) => dispatcher.rotateSecret(webhook.id, a as never),
      (a) => dispatcher.getWebhook(a as never),
      (a) => dispatcher.getDelivery(a as never),
      (a, b) => dispatcher.registerEntityFields(a as never, b as never),
    ];
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: calls.length - 1 }), value, value, async (index, a, b) => {
        await onlyTyped(() => calls[index]!(a, b));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('README', () => {
  it("lists every row of SHOPCTRL_EVENTS in its ShopCtrl table, as the code has it", async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const e of SHOPCTRL_EVENTS) {
      expect(readme).toContain(`| ${e.name} | \`${e.entity}\` \`${e.event}\` | ${e.fields.join(', ')} |`);
    }
  });
});
