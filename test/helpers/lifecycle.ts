/**
 * Helpers for the delivery-lifecycle acceptance tests (`test/lifecycle.*.test.ts`):
 *
 * - {@link ManualClock}: the injected time source; tests move it and then `wake()` + `drain()`.
 * - {@link LifecycleHarness}: opens receivers, dispatchers (allowed to reach 127.0.0.1: the
 *   address guard refuses loopback by default) and raw servers, and closes everything at the end
 *   of each test.
 * - {@link recordEvents}: a listener on every dispatcher event.
 * - {@link startStreamingServer}: an endpoint that answers 200 and streams a body forever.
 * - small readers: every execution of a delivery (oldest first), a delivery's body data.
 *
 * @module
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  WebhookDispatcher,
  type DispatcherEvents,
  type ExecutionRecord,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import { Receiver, type ReceivedRequest, type ReceiverOptions } from './receiver.js';

/** A whole second, so Retry-After HTTP-dates (second precision) land exactly. */
export const T0 = Date.UTC(2030, 0, 15, 12, 0, 0);

/** A time source the test moves by hand. */
export class ManualClock {
  constructor(public current: number = T0) {}

  /** The `Clock` interface. */
  now = (): number => this.current;

  advance(ms: number): number {
    this.current += ms;
    return this.current;
  }

  set(at: number): number {
    this.current = at;
    return this.current;
  }
}

/** Every event name of {@link DispatcherEvents}; the `satisfies` keeps the list complete. */
const EVENT_NAMES = {
  'delivery.attempted': true,
  'delivery.succeeded': true,
  'delivery.scheduled': true,
  'delivery.failed': true,
  'webhook.disabled': true,
  'webhook.paused': true,
  'webhook.resumed': true,
  alert: true,
  'webhook.created': true,
  'webhook.updated': true,
  'webhook.deleted': true,
  error: true,
} satisfies Record<keyof DispatcherEvents, true>;

export const ALL_EVENT_NAMES = Object.keys(EVENT_NAMES) as Array<keyof DispatcherEvents>;

/** One event as a listener got it. */
export interface RecordedEvent<K extends keyof DispatcherEvents = keyof DispatcherEvents> {
  name: K;
  payload: Parameters<DispatcherEvents[K]>[0];
}

/** What {@link recordEvents} returns. */
export interface EventLog {
  readonly all: RecordedEvent[];
  of<K extends keyof DispatcherEvents>(name: K): Array<Parameters<DispatcherEvents[K]>[0]>;
  names(): string[];
}

/** Subscribes to every dispatcher event and keeps the payloads in arrival order. */
export function recordEvents(dispatcher: WebhookDispatcher): EventLog {
  const all: RecordedEvent[] = [];
  for (const name of ALL_EVENT_NAMES) {
    dispatcher.on(name, ((payload: never) => {
      all.push({ name, payload } as RecordedEvent);
    }) as never);
  }
  return {
    all,
    of: <K extends keyof DispatcherEvents>(name: K) =>
      all.filter((e) => e.name === name).map((e) => e.payload as Parameters<DispatcherEvents[K]>[0]),
    names: () => all.map((e) => e.name),
  };
}

/** Lets a dispatcher reach the loopback receivers (and nothing else private). */
export const LOOPBACK_ONLY = { allowedCidrs: ['127.0.0.1/32'] } as const satisfies Pick<WebhookDispatcherOptions, 'allowedCidrs'>;

/** Opens test resources and closes them all in {@link cleanup}. */
export class LifecycleHarness {
  private readonly receivers: Receiver[] = [];
  private readonly dispatchers: WebhookDispatcher[] = [];
  private readonly servers: Server[] = [];

  async receiver(options?: ReceiverOptions): Promise<Receiver> {
    const receiver = await Receiver.start(options);
    this.receivers.push(receiver);
    return receiver;
  }

  /**
   * A dispatcher allowed to reach 127.0.0.1. Defaults suited to these tests: the circuit breaker
   * and auto-disable off (tests about them turn them on).
   */
  dispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
    const dispatcher = new WebhookDispatcher({ circuitBreaker: false, autoDisable: false, allowedCidrs: [...LOOPBACK_ONLY.allowedCidrs], ...options });
    this.dispatchers.push(dispatcher);
    return dispatcher;
  }

  /** Remembers a raw server so cleanup closes it. */
  track(server: Server): void {
    this.servers.push(server);
  }

  /** Receivers and servers first (held requests end at once), then dispatchers. */
  async cleanup(): Promise<void> {
    await Promise.all(this.receivers.splice(0).map((r) => r.close()));
    await Promise.all(
      this.servers.splice(0).map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    await Promise.all(this.dispatchers.splice(0).map((d) => d.close({ timeoutMs: 100 })));
  }
}

/** Every execution of a delivery, oldest attempt first. */
export async function executionsOf(dispatcher: WebhookDispatcher, deliveryId: string): Promise<ExecutionRecord[]> {
  const items: ExecutionRecord[] = [];
  let cursor: string | null = null;
  do {
    const page: Awaited<ReturnType<WebhookDispatcher['listExecutions']>> = await dispatcher.listExecutions({
      deliveryId,
      limit: 1000,
      cursor,
    });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items.sort((a, b) => a.attempt - b.attempt);
}

/** Every execution the dispatcher logged (all webhooks). */
export async function allExecutions(dispatcher: WebhookDispatcher): Promise<ExecutionRecord[]> {
  const items: ExecutionRecord[] = [];
  let cursor: string | null = null;
  do {
    const page: Awaited<ReturnType<WebhookDispatcher['listExecutions']>> = await dispatcher.listExecutions({ limit: 1000, cursor });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** The `data` of a delivered envelope. */
export function dataOf(request: ReceivedRequest | undefined): Record<string, unknown> {
  const envelope = JSON.parse(request?.body ?? 'null') as { data?: Record<string, unknown> } | null;
  return envelope?.data ?? {};
}

/** The first emitted delivery id of an emit result (fails loudly when there is none). */
export function firstId(result: { deliveries: Array<{ id: string }> }): string {
  const id = result.deliveries[0]?.id;
  if (id === undefined) throw new Error('emit queued no delivery');
  return id;
}

/** Moves the clock to `at` (never backwards), wakes the dispatcher and waits for due work. */
export async function runDueAt(dispatcher: WebhookDispatcher, clock: ManualClock, at: number): Promise<void> {
  if (at > clock.current) clock.set(at);
  dispatcher.wake();
  await dispatcher.drain();
}

/** A server answering 200 to everything with a body that never ends (until the client goes away). */
export interface StreamingServer {
  url: string;
  /** Requests received. */
  readonly requests: number;
  /** Bytes written to clients so far. */
  readonly bytesWritten: number;
  /** Connections the client closed while the stream was running. */
  readonly clientClosed: number;
  server: Server;
}

export async function startStreamingServer(chunkBytes = 4096, everyMs = 2): Promise<StreamingServer> {
  const state = { requests: 0, bytesWritten: 0, clientClosed: 0 };
  const chunk = Buffer.alloc(chunkBytes, 'y');
  const server = createServer((req, res: ServerResponse) => {
    state.requests++;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => {
      if (res.destroyed) return;
      res.write(chunk);
      state.bytesWritten += chunk.length;
    }, everyMs);
    res.on('close', () => {
      clearInterval(timer);
      state.clientClosed++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/stream`,
    get requests() {
      return state.requests;
    },
    get bytesWritten() {
      return state.bytesWritten;
    },
    get clientClosed() {
      return state.clientClosed;
    },
    server,
  };
}
