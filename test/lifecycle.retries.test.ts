/**
 * Acceptance tests of the retry lifecycle against real HTTP receivers on 127.0.0.1: attempt
 * counts, schedule timings driven by an injected clock, Retry-After, 410 Gone, non-retryable
 * statuses, redirects, transport errors, credential redaction and the response body cap.
 *
 * Time: the dispatcher runs on a {@link ManualClock}. A retry is written to storage with a
 * `runAt`; a test moves the clock, calls `wake()` and awaits `drain()` to run the next attempt.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  REDACTED,
  SVIX_SCHEDULE,
  verifySignature,
  type Alert,
  type DeliveryRecord,
  type ExecutionRecord,
  type WebhookDispatcher,
} from 'webhook-dispatcher';
import { refusedUrl } from './helpers/receiver.js';
import {
  LifecycleHarness,
  ManualClock,
  T0,
  allExecutions,
  executionsOf,
  firstId,
  recordEvents,
  runDueAt,
  startStreamingServer,
} from './helpers/lifecycle.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const SECOND = 1_000;

const harness = new LifecycleHarness();
afterEach(() => harness.cleanup());

async function emitOrder(dispatcher: WebhookDispatcher, orderId = 1): Promise<string> {
  return firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: orderId } }));
}

/**
 * Runs attempts of `deliveryId` until it is no longer scheduled, moving the clock to each
 * `runAt` (at least `minStepMs` forward). Returns the clock time of every attempt.
 */
async function runToCompletion(
  dispatcher: WebhookDispatcher,
  clock: ManualClock,
  deliveryId: string,
  minStepMs = SECOND,
  maxRounds = 20,
): Promise<DeliveryRecord> {
  await dispatcher.drain();
  for (let round = 0; round < maxRounds; round++) {
    const delivery = await dispatcher.getDelivery(deliveryId);
    if (delivery.status !== 'scheduled' && delivery.status !== 'pending') return delivery;
    await runDueAt(dispatcher, clock, Math.max(delivery.runAt, clock.current + minStepMs));
  }
  throw new Error(`delivery ${deliveryId} still waiting after ${maxRounds} rounds`);
}

describe('attempt counts', () => {
  it('maxAttempts 4 against a 500: four signed attempts with one webhook-id, then failed, one alert', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 500, body: 'boom' } });
    const onAlert = vi.fn<(alert: Alert) => void>();
    const dispatcher = harness.dispatcher({ clock, retry: { maxAttempts: 4 }, onAlert });
    const events = recordEvents(dispatcher);
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    const signedAt: number[] = [];
    const verify = (index: number) => {
      const request = receiver.requests[index];
      expect(request, `request ${index + 1}`).toBeDefined();
      // Verified at the clock's time: the timestamp is the attempt's own.
      const verified = verifySignature({ secret: webhook.secret, body: request?.body ?? '', headers: request?.headers ?? {}, now: clock.now() });
      expect(verified.id).toBe(deliveryId);
      expect(verified.timestamp).toBe(Math.floor(clock.now() / 1000));
      signedAt.push(verified.timestamp);
    };
    expect(receiver.requests).toHaveLength(1);
    verify(0);

    for (let attempt = 2; attempt <= 4; attempt++) {
      const delivery = await dispatcher.getDelivery(deliveryId);
      expect(delivery.status).toBe('scheduled');
      expect(delivery.attempts).toBe(attempt - 1);
      // Default backoff waits at least 5 s, so each attempt is signed ≥ 1 s after the last.
      expect(delivery.runAt - clock.current).toBeGreaterThanOrEqual(5 * SECOND);
      // Not due yet: nothing is sent before runAt.
      await runDueAt(dispatcher, clock, delivery.runAt - 1);
      expect(receiver.requests).toHaveLength(attempt - 1);
      await runDueAt(dispatcher, clock, delivery.runAt);
      expect(receiver.requests).toHaveLength(attempt);
      verify(attempt - 1);
    }

    // Nothing more, however long we wait.
    await runDueAt(dispatcher, clock, clock.current + 7 * 24 * 3600 * SECOND);
    expect(receiver.requests).toHaveLength(4);

    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([deliveryId]));
    expect(new Set(signedAt).size).toBe(4);
    expect([...signedAt].sort((a, b) => a - b)).toEqual(signedAt);

    const delivery = await dispatcher.getDelivery(deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 4, lastStatus: 500 });
    expect(delivery.lastError).toMatch(/attempts exhausted \(4\)/);

    const executions = await executionsOf(dispatcher, deliveryId);
    expect(executions.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(executions.every((e) => e.status === 500 && !e.success && !e.hardError)).toBe(true);
    for (const e of executions.slice(0, 3)) {
      expect(e.nextAttemptAt).not.toBeNull();
      // The default backoff's shortest wait, as for runAt above.
      expect(e.nextAttemptAt! - e.endedAt).toBeGreaterThanOrEqual(5 * SECOND);
    }
    expect(executions[3]?.nextAttemptAt).toBeNull();

    const alerts = events.of('alert');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ type: 'delivery_failed', webhookId: webhook.id, delivery: { id: deliveryId, status: 'failed' } });
    expect(onAlert).toHaveBeenCalledTimes(1);
    expect(onAlert.mock.calls[0]?.[0]).toMatchObject({ type: 'delivery_failed', webhookId: webhook.id });
    expect(events.of('delivery.attempted')).toHaveLength(4);
    expect(events.of('delivery.scheduled')).toHaveLength(3);
    expect(events.of('delivery.failed')).toHaveLength(1);
    expect(events.of('delivery.succeeded')).toHaveLength(0);
    expect(events.of('error')).toEqual([]);
  });

  it('the default policy retries up to 10 times (ShopCtrl): 11 requests against a 503, then failed and one alert', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 503 } });
    const dispatcher = harness.dispatcher({ clock });
    const events = recordEvents(dispatcher);
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    const delivery = await runToCompletion(dispatcher, clock, deliveryId);

    expect(receiver.requests).toHaveLength(11);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 11, lastStatus: 503 });
    const executions = await executionsOf(dispatcher, deliveryId);
    expect(executions.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(executions.filter((e) => e.nextAttemptAt !== null)).toHaveLength(10);
    expect(events.of('delivery.failed')).toHaveLength(1);
    expect(events.of('alert').map((a) => a.type)).toEqual(['delivery_failed']);
  });
});

describe('schedule timings', () => {
  it('an explicit schedule without jitter: runAt is endedAt + 5000, not sent at +4999, then a 300000 gap', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 500 } });
    const dispatcher = harness.dispatcher({ clock });
    await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: ORDER_CREATE,
      retry: { schedule: [5000, 300000], jitter: 0, maxAttempts: 3 },
    });

    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    const [first] = await executionsOf(dispatcher, deliveryId);
    expect(first?.nextAttemptAt).toBe((first?.endedAt ?? NaN) + 5000);
    expect((await dispatcher.getDelivery(deliveryId)).runAt).toBe((first?.endedAt ?? NaN) + 5000);

    await runDueAt(dispatcher, clock, (first?.endedAt ?? 0) + 4999);
    expect(receiver.requests).toHaveLength(1);
    await runDueAt(dispatcher, clock, (first?.endedAt ?? 0) + 5000);
    expect(receiver.requests).toHaveLength(2);

    const second = (await executionsOf(dispatcher, deliveryId))[1];
    expect(second?.attempt).toBe(2);
    expect(second?.nextAttemptAt).toBe((second?.endedAt ?? NaN) + 300000);
    await runDueAt(dispatcher, clock, (second?.endedAt ?? 0) + 299999);
    expect(receiver.requests).toHaveLength(2);
    await runDueAt(dispatcher, clock, (second?.endedAt ?? 0) + 300000);
    expect(receiver.requests).toHaveLength(3);

    const delivery = await dispatcher.getDelivery(deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3 });
    expect((await executionsOf(dispatcher, deliveryId))[2]?.nextAttemptAt).toBeNull();
  });

  it('SVIX_SCHEDULE with ±20 % jitter: every gap stays within 20 % of its schedule entry', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 502 } });
    const dispatcher = harness.dispatcher({ clock, retry: { schedule: SVIX_SCHEDULE, jitter: 0.2, maxAttempts: SVIX_SCHEDULE.length + 1 } });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    // Several deliveries, so the jitter is sampled often enough to mean something.
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await emitOrder(dispatcher, i));
    for (const id of ids) await runToCompletion(dispatcher, clock, id);

    expect(receiver.requests).toHaveLength(3 * (SVIX_SCHEDULE.length + 1));
    const gaps: number[] = [];
    for (const id of ids) {
      const executions = await executionsOf(dispatcher, id);
      expect(executions).toHaveLength(SVIX_SCHEDULE.length + 1);
      SVIX_SCHEDULE.forEach((base, i) => {
        const e = executions[i] as ExecutionRecord;
        const gap = (e.nextAttemptAt ?? NaN) - e.endedAt;
        gaps.push(gap / base);
        expect(gap, `gap after attempt ${i + 1}`).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(gap, `gap after attempt ${i + 1}`).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      });
    }
    // Jitter is applied, not a constant factor.
    expect(new Set(gaps.map((g) => g.toFixed(4))).size).toBeGreaterThan(1);
  });
});

describe('Retry-After', () => {
  async function firstRetryAfter(respond: { status: number; headers: Record<string, string> }) {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond });
    const dispatcher = harness.dispatcher({ clock });
    await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: ORDER_CREATE,
      // The schedule's own delay (1 s) is shorter than any Retry-After used below.
      retry: { schedule: [1000], jitter: 0, maxAttempts: 3 },
    });
    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    const [execution] = await executionsOf(dispatcher, deliveryId);
    const delivery = await dispatcher.getDelivery(deliveryId);
    return { clock, receiver, dispatcher, deliveryId, execution: execution as ExecutionRecord, delivery };
  }

  it('429 with Retry-After: 120 postpones the next attempt to endedAt + 120 s', async () => {
    const { clock, receiver, dispatcher, execution, delivery } = await firstRetryAfter({ status: 429, headers: { 'retry-after': '120' } });
    expect(delivery.status).toBe('scheduled');
    expect(delivery.runAt).toBeGreaterThanOrEqual(execution.endedAt + 120_000);
    expect(execution.nextAttemptAt).toBe(delivery.runAt);
    expect(delivery.lastError).toMatch(/Retry-After/);

    // The schedule alone would have retried after 1 s: it must not.
    await runDueAt(dispatcher, clock, execution.endedAt + 1000);
    await runDueAt(dispatcher, clock, execution.endedAt + 119_999);
    expect(receiver.requests).toHaveLength(1);
    await runDueAt(dispatcher, clock, delivery.runAt);
    expect(receiver.requests).toHaveLength(2);
  });

  it('429 with an HTTP-date Retry-After waits until that date', async () => {
    const at = T0 + 180_000;
    const { execution, delivery } = await firstRetryAfter({ status: 429, headers: { 'retry-after': new Date(at).toUTCString() } });
    expect(execution.endedAt).toBe(T0);
    expect(delivery.runAt).toBeGreaterThanOrEqual(at);
    expect(delivery.runAt).toBeLessThanOrEqual(at + 1000);
  });

  it('503 with Retry-After is honoured too', async () => {
    const { clock, receiver, dispatcher, execution, delivery } = await firstRetryAfter({ status: 503, headers: { 'retry-after': '60' } });
    expect(delivery.runAt).toBeGreaterThanOrEqual(execution.endedAt + 60_000);
    await runDueAt(dispatcher, clock, execution.endedAt + 59_999);
    expect(receiver.requests).toHaveLength(1);
    await runDueAt(dispatcher, clock, delivery.runAt);
    expect(receiver.requests).toHaveLength(2);
  });
});

describe('final failures', () => {
  it('410 Gone fails the delivery, disables the webhook with a reason and alerts; later emits queue nothing', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 410 } });
    const onAlert = vi.fn<(alert: Alert) => void>();
    const dispatcher = harness.dispatcher({ clock, onAlert });
    const events = recordEvents(dispatcher);
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    expect(await dispatcher.getDelivery(deliveryId)).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 410 });

    const disabled = await dispatcher.getWebhook(webhook.id);
    expect(disabled.enabled).toBe(false);
    expect(disabled.disabledReason).toMatch(/410/);
    expect(events.of('webhook.disabled')).toEqual([{ webhookId: webhook.id, tenantId: null, reason: disabled.disabledReason }]);
    const alertTypes = events.of('alert').map((a) => a.type);
    expect(alertTypes).toContain('webhook_disabled');
    expect(onAlert.mock.calls.map(([a]) => a.type)).toContain('webhook_disabled');

    const later = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 2 } });
    expect(later.deliveries).toEqual([]);
    await runDueAt(dispatcher, clock, clock.current + 3600 * SECOND);
    expect(receiver.requests).toHaveLength(1);
  });

  it('404 is not retried: failed after one attempt', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 404 } });
    const dispatcher = harness.dispatcher({ clock });
    const events = recordEvents(dispatcher);
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    const delivery = await runToCompletion(dispatcher, clock, deliveryId);
    expect(receiver.requests).toHaveLength(1);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 404 });
    expect(delivery.lastError).toMatch(/not retried/);
    expect(events.of('delivery.scheduled')).toHaveLength(0);
    expect(events.of('delivery.failed')).toHaveLength(1);
  });

  it('404 with the webhook override retryOn4xx: 2 gets three attempts', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 404 } });
    const dispatcher = harness.dispatcher({ clock });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE, retry: { retryOn4xx: 2 } });

    const deliveryId = await emitOrder(dispatcher);
    const delivery = await runToCompletion(dispatcher, clock, deliveryId);
    expect(receiver.requests).toHaveLength(3);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, lastStatus: 404 });
    const executions = await executionsOf(dispatcher, deliveryId);
    expect(executions.map((e) => e.nextAttemptAt === null)).toEqual([false, false, true]);
  });

  it('a redirect is not followed and is logged as a failure (3xx not retried by default)', async () => {
    const clock = new ManualClock();
    const target = await harness.receiver();
    const receiver = await harness.receiver({ respond: { status: 302, headers: { location: target.url('/elsewhere') } } });
    const dispatcher = harness.dispatcher({ clock });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    const delivery = await runToCompletion(dispatcher, clock, deliveryId);
    expect(receiver.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 302 });
    const [execution] = await executionsOf(dispatcher, deliveryId);
    expect(execution).toMatchObject({ status: 302, success: false, hardError: false, nextAttemptAt: null });
    expect(execution?.responseHeaders.location).toBe(target.url('/elsewhere'));
  });

  it('a closed port: status 0, hardError, transport_error, and the delivery is scheduled for a retry', async () => {
    const clock = new ManualClock();
    const dispatcher = harness.dispatcher({ clock });
    const events = recordEvents(dispatcher);
    await dispatcher.createWebhook({ url: await refusedUrl('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    const [execution] = await executionsOf(dispatcher, deliveryId);
    expect(execution).toMatchObject({ attempt: 1, status: 0, success: false, hardError: true, errorCode: 'transport_error' });
    expect(execution?.errorMessage).toMatch(/ECONNREFUSED/);
    expect(execution?.nextAttemptAt).not.toBeNull();

    const delivery = await dispatcher.getDelivery(deliveryId);
    expect(delivery).toMatchObject({ status: 'scheduled', attempts: 1, lastStatus: 0 });
    expect(delivery.runAt).toBe(execution?.nextAttemptAt);
    expect(events.of('delivery.scheduled')).toHaveLength(1);
    expect(events.of('delivery.failed')).toHaveLength(0);
  });
});

describe('redaction', () => {
  it('no execution record, event payload or alert contains a credential or a webhook secret', async () => {
    const TOKEN = 'SECRET-TOKEN-123';
    const KEY = 'KEY-456';
    const PASSWORD = 'BASIC-PASS-789';
    const clock = new ManualClock();
    const bearerReceiver = await harness.receiver();
    const basicReceiver = await harness.receiver({ respond: { status: 500, body: 'down' } });
    const alerts: Alert[] = [];
    const dispatcher = harness.dispatcher({
      clock,
      retry: { maxAttempts: 2, schedule: [5000], jitter: 0 },
      autoDisable: { afterConsecutiveFailures: 2 },
      circuitBreaker: { minimumAttempts: 2, failureRateThreshold: 0.5, cooldownMs: 1000 },
      onAlert: (alert) => {
        alerts.push(alert);
      },
    });
    const events = recordEvents(dispatcher);

    const bearer = await dispatcher.createWebhook({
      url: bearerReceiver.url('/bearer'),
      triggers: ORDER_CREATE,
      headers: { Authorization: `Bearer ${TOKEN}`, 'X-Api-Key': KEY },
    });
    const basic = await dispatcher.createWebhook({
      url: basicReceiver.url('/basic'),
      triggers: ORDER_CREATE,
      basicAuth: { username: 'shop', password: PASSWORD },
    });
    // The bearer endpoint fails once, then succeeds; the basic one always fails (and is disabled).
    bearerReceiver.respondWith((request) => (request.index === 0 ? { status: 503 } : { status: 200 }));

    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    await runDueAt(dispatcher, clock, clock.current + 5000);
    await dispatcher.updateWebhook(bearer.id, { description: 'still here' });

    // The credentials really were sent …
    expect(bearerReceiver.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(bearerReceiver.requests[0]?.headers['x-api-key']).toBe(KEY);
    const basicHeader = `Basic ${Buffer.from(`shop:${PASSWORD}`).toString('base64')}`;
    expect(basicReceiver.requests[0]?.headers.authorization).toBe(basicHeader);

    // … and everything recorded went through every path (success, retry, failure, disable, breaker).
    const names = new Set(events.names());
    for (const name of ['delivery.attempted', 'delivery.succeeded', 'delivery.scheduled', 'delivery.failed', 'webhook.disabled', 'alert', 'webhook.updated']) {
      expect(names, name).toContain(name);
    }
    const executions = await allExecutions(dispatcher);
    expect(executions).toHaveLength(4);
    const bearerExecution = executions.find((e) => e.webhookId === bearer.id);
    expect(bearerExecution?.requestHeaders.Authorization).toBe(`Bearer ${REDACTED}`);
    expect(bearerExecution?.requestHeaders['X-Api-Key']).toBe(REDACTED);
    expect(executions.find((e) => e.webhookId === basic.id)?.requestHeaders.Authorization).toBe(`Basic ${REDACTED}`);

    const forbidden = [TOKEN, KEY, PASSWORD, basicHeader.slice('Basic '.length), bearer.secret, basic.secret];
    const recorded: Array<[string, unknown]> = [
      ...executions.map((e) => [`execution ${e.id}`, e] as [string, unknown]),
      ...events.all.map((e, i) => [`event ${i} ${e.name}`, e.payload] as [string, unknown]),
      ...alerts.map((a, i) => [`onAlert ${i} ${a.type}`, a] as [string, unknown]),
      ['deliveries', (await dispatcher.listDeliveries()).items],
    ];
    expect(alerts.length).toBeGreaterThanOrEqual(2);
    for (const [what, value] of recorded) {
      const json = JSON.stringify(value);
      for (const secret of forbidden) expect(json.includes(secret), `${what} leaks ${secret.slice(0, 12)}…`).toBe(false);
    }
  });
});

describe('response body cap', () => {
  it('keeps at most maxResponseBodyBytes of a 100,000-byte answer', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 200, body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } } });
    const dispatcher = harness.dispatcher({ clock, maxResponseBodyBytes: 20_000 });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    const [execution] = await executionsOf(dispatcher, deliveryId);
    expect(execution).toMatchObject({ status: 200, success: true });
    expect(execution?.responseBody.length).toBeLessThanOrEqual(20_000);
    expect(execution?.responseBody.length).toBeGreaterThan(0);
    expect(execution?.responseBody).toMatch(/^x+$/);
    expect((await dispatcher.getDelivery(deliveryId)).status).toBe('succeeded');
  });

  it('an endless response body still ends the attempt at the cap, and the attempt is recorded', async () => {
    const clock = new ManualClock();
    const stream = await startStreamingServer();
    harness.track(stream.server);
    // A long request timeout: if the cap did not end the attempt, the test would time out.
    const dispatcher = harness.dispatcher({ clock, maxResponseBodyBytes: 20_000, requestTimeoutMs: 30_000 });
    await dispatcher.createWebhook({ url: stream.url, triggers: ORDER_CREATE });

    const started = Date.now();
    const deliveryId = await emitOrder(dispatcher);
    await dispatcher.drain();
    expect(Date.now() - started).toBeLessThan(5_000);

    expect(stream.requests).toBe(1);
    const [execution] = await executionsOf(dispatcher, deliveryId);
    expect(execution).toMatchObject({ attempt: 1, status: 200, errorCode: null });
    expect(execution?.responseBody.length).toBeLessThanOrEqual(20_000);
    expect(execution?.responseBody.length).toBeGreaterThan(0);
    expect((await dispatcher.getDelivery(deliveryId)).status).not.toBe('delivering');
    // The client hung up: the server stops streaming.
    await vi.waitFor(() => expect(stream.clientClosed).toBe(1));
  });
});
