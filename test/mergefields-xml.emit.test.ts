/**
 * Issue #16 through `emit()`, against a real receiver on 127.0.0.1: a webhook whose XML template
 * cannot render well-formed XML for the emitted data gets a failed delivery with the reason and one
 * `alert`, and its receiver gets no request — whether the compile-time check refuses the template
 * (one saved before the check existed) or the render-time check catches the output.
 *
 * No accepted template can produce malformed output (see `mergefields-xml.property.test.ts`), so to
 * exercise the render-time check end to end this file can break the XML text encoder: with
 * `sabotage.on`, values in element text are not escaped.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, TemplateRenderError, WebhookDispatcher, type Alert } from 'webhook-dispatcher';
import { compileTemplate } from '../src/mergefields/compile.js';
import type * as Encode from '../src/mergefields/encode.js';
import { Receiver } from './helpers/receiver.js';

const sabotage = vi.hoisted(() => ({ on: false }));

vi.mock('../src/mergefields/encode.js', async (importOriginal) => {
  const original = await importOriginal<typeof Encode>();
  return {
    ...original,
    encodeXmlText: (value: unknown, budget: number): string =>
      sabotage.on ? original.plainText(value, budget) : original.encodeXmlText(value, budget),
  };
});

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

const receivers: Receiver[] = [];
const dispatchers: WebhookDispatcher[] = [];
afterEach(async () => {
  sabotage.on = false;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

async function setup() {
  const receiver = await Receiver.start();
  receivers.push(receiver);
  const storage = new MemoryStorage();
  // Security opt-out: the receiver lives on 127.0.0.1. One attempt, no breaker: failures are final.
  // webhookCacheMs 0: a webhook changed in storage behind the dispatcher's back is seen at once.
  const dispatcher = new WebhookDispatcher({
    storage,
    allowPrivateNetworks: true,
    retry: { maxAttempts: 1 },
    circuitBreaker: false,
    webhookCacheMs: 0,
  });
  dispatchers.push(dispatcher);
  const alerts: Alert[] = [];
  dispatcher.on('alert', (alert) => alerts.push(alert));
  dispatcher.on('error', () => {});
  return { receiver, storage, dispatcher, alerts };
}

describe('an XML template that cannot render well-formed XML, through emit()', () => {
  it('a template saved before the branch check: refused at emit, failed delivery, one alert, no request', async () => {
    const { receiver, storage, dispatcher, alerts } = await setup();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/hook'),
      triggers: ORDER_CREATE,
      payload: { mimeType: 'application/xml', template: '<r/>' },
    });
    // The fuzzer's template: {A:1} would render <r><broken></r>. Written to storage directly, as
    // an older version (which only test-rendered three data sets) could have saved it.
    const template = '<r>{{#if order.A}}{{#if order.B}}<ok/>{{else}}<broken>{{/if}}{{/if}}</r>';
    const stored = await storage.getWebhook(webhook.id);
    expect(await storage.updateWebhook({ ...stored!, payload: { mimeType: 'application/xml', template } })).toBe(true);

    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { A: 1 } });
    await dispatcher.drain();

    expect(deliveries).toHaveLength(1);
    const delivery = await dispatcher.getDelivery(deliveries[0]!.id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 0 });
    expect(delivery.lastError).toMatch(/^payload could not be rendered: unbalanced XML in \{\{#if\}\} at line 1, column 19: .*\(line 1, column 55\)$/);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'delivery_failed', webhookId: webhook.id, execution: null, delivery: { status: 'failed' } });
    expect(receiver.requests).toEqual([]);
  });

  it('output the render-time check finds malformed: TemplateRenderError, failed delivery, one alert, no request', async () => {
    const { receiver, dispatcher, alerts } = await setup();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/hook'),
      triggers: ORDER_CREATE,
      payload: { mimeType: 'application/xml', template: '<order><note>{{order.Note}}</note></order>' },
    });
    const data = { Note: '</note><injected/>' };

    // The renderer itself: with the text encoder broken, it throws rather than return the document.
    sabotage.on = true;
    const compiled = compileTemplate('<order><note>{{order.Note}}</note></order>', 'application/xml');
    expect(() => compiled.render({ order: data })).toThrow(TemplateRenderError);
    expect(() => compiled.render({ order: data })).toThrow(
      'template output is not well-formed XML: </note> does not close <order> at line 1, column 32 of the output',
    );

    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data });
    await dispatcher.drain();

    const delivery = await dispatcher.getDelivery(deliveries[0]!.id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 0 });
    expect(delivery.lastError).toBe(
      'payload could not be rendered: template output is not well-formed XML: </note> does not close <order> at line 1, column 32 of the output',
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'delivery_failed', webhookId: webhook.id, execution: null });
    expect(alerts[0]?.type === 'delivery_failed' ? alerts[0].reason : '').toBe(delivery.lastError);
    expect(receiver.requests).toEqual([]);

    // Control: with the encoder intact the same emit is delivered, the value escaped.
    sabotage.on = false;
    const again = await dispatcher.emit({ entity: 'order', event: 'Create', data });
    await dispatcher.drain();
    expect(await dispatcher.getDelivery(again.deliveries[0]!.id)).toMatchObject({ status: 'succeeded' });
    expect(receiver.requests.map((r) => r.body)).toEqual(['<order><note>&lt;/note&gt;&lt;injected/&gt;</note></order>']);
    expect(alerts).toHaveLength(1);
  });
});
