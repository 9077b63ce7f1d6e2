import diagnosticsChannel from 'node:diagnostics_channel';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, type TracerLike } from 'webhook-dispatcher';
import { CHANNELS } from 'webhook-dispatcher/observability';
import { Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(options: ConstructorParameters<typeof WebhookDispatcher>[0] = {}) {
  const receiver = await Receiver.start({ respond: (r) => ({ status: r.path === '/fail' ? 500 : 200 }) });
  cleanups.push(() => receiver.close());
  // Security opt-out: the receiver is on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, retry: { maxAttempts: 1 }, circuitBreaker: false, ...options });
  cleanups.push(() => dispatcher.close());
  return { receiver, dispatcher };
}

describe('observability', () => {
  it('publishes the lifecycle on node:diagnostics_channel', async () => {
    const { receiver, dispatcher } = await setup();
    const messages: Array<[string, unknown]> = [];
    for (const name of Object.values(CHANNELS)) {
      const listener = (message: unknown) => messages.push([name, message]);
      diagnosticsChannel.subscribe(name, listener);
      cleanups.push(() => void diagnosticsChannel.unsubscribe(name, listener));
    }
    const hook = await dispatcher.createWebhook({ url: receiver.url('/ok'), triggers: [{ entity: 'order', event: 'Create' }] });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();

    expect(messages.map(([name]) => name)).toEqual([CHANNELS.emit, CHANNELS.attemptStart, CHANNELS.attemptEnd]);
    expect(messages[0]![1]).toMatchObject({ entity: 'order', event: 'Create', deliveryIds: [deliveries[0]!.id] });
    expect(messages[1]![1]).toMatchObject({ deliveryId: deliveries[0]!.id, webhookId: hook.id, attempt: 1, method: 'POST' });
    expect(messages[2]![1]).toMatchObject({ deliveryId: deliveries[0]!.id, status: 200, success: true, outcome: 'succeeded' });
    // No secret travels on a channel.
    expect(JSON.stringify(messages)).not.toContain(hook.secret);
  });

  it('counts emits, attempts by outcome and latency, and reports the queue depth by status', async () => {
    const { receiver, dispatcher } = await setup();
    await dispatcher.createWebhook({ url: receiver.url('/ok'), triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.createWebhook({ url: receiver.url('/fail'), triggers: [{ entity: 'order', event: 'Create' }] });
    for (let i = 0; i < 3; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
    await dispatcher.drain();

    const metrics = await dispatcher.getMetrics();
    expect(metrics).toMatchObject({
      emits: 3,
      deliveriesQueued: 6,
      attempts: 6,
      attemptsByOutcome: { succeeded: 3, retry_scheduled: 0, failed: 3 },
      hardErrors: 0,
      inFlight: 0,
      deliveriesByStatus: { succeeded: 3, failed: 3 },
    });
    expect(metrics.attemptLatencyMs.count).toBe(6);
    expect(metrics.attemptLatencyMs.p50).toBeGreaterThanOrEqual(0);
    expect(metrics.attemptLatencyMs.max).toBeGreaterThanOrEqual(metrics.attemptLatencyMs.p50!);
  });

  it('makes one client span per attempt with semantic HTTP attributes, without the query string', async () => {
    const spans: Array<{ name: string; attributes: Record<string, unknown>; status?: { code: number }; ended: boolean }> = [];
    const tracer: TracerLike = {
      startSpan(name, options) {
        const span = { name, attributes: { ...(options?.attributes ?? {}) } as Record<string, unknown>, status: undefined as { code: number } | undefined, ended: false };
        spans.push(span);
        return {
          setAttribute: (k, v) => (span.attributes[k] = v),
          setStatus: (s) => (span.status = s),
          end: () => void (span.ended = true),
        };
      },
    };
    const { receiver, dispatcher } = await setup({ tracer });
    const hook = await dispatcher.createWebhook({ url: `${receiver.url('/fail')}?token=abc`, triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();

    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({
      name: 'POST webhook',
      ended: true,
      status: { code: 2 },
      attributes: {
        'http.request.method': 'POST',
        'url.full': receiver.url('/fail'),
        'server.address': '127.0.0.1',
        'http.response.status_code': 500,
        'error.type': '500',
        'webhook.id': hook.id,
        'http.request.resend_count': 0,
      },
    });
    expect(JSON.stringify(spans)).not.toContain('token=abc');
  });

  it("accepts @opentelemetry/api's tracer as is (a no-op without an SDK)", async () => {
    const { receiver, dispatcher } = await setup({ tracer: trace.getTracer('webhook-dispatcher') });
    await dispatcher.createWebhook({ url: receiver.url('/ok'), triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
  });
});
