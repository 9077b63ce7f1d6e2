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
    // /ok answers after 80 ms, /fail at once: the latency summary must tell the two apart.
    receiver.respondWith((r) => (r.path === '/fail' ? { status: 500 } : { status: 200, delayMs: 80 }));
    await dispatcher.createWebhook({ url: receiver.url('/ok'), triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.createWebhook({ url: receiver.url('/fail'), triggers: [{ entity: 'order', event: 'Create' }] });
    const started = Date.now();
    for (let i = 0; i < 3; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
    await dispatcher.drain();
    const elapsed = Date.now() - started;

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
    const { count, p50, p90, p99, max } = metrics.attemptLatencyMs;
    expect(count).toBe(6);
    // Sorted, the six latencies are three quick 500s, then three 200s of at least 80 ms: p50 (the
    // fourth) is a slow one. Milliseconds, not seconds or nanoseconds: no attempt outlasted the test.
    expect(p50).toBeGreaterThanOrEqual(75);
    expect(max).toBeGreaterThanOrEqual(p50!);
    expect(max).toBeLessThanOrEqual(elapsed);
    expect([p90, p99]).toEqual([max, max]);
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
