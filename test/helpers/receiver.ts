/**
 * A real HTTP receiver for tests: a `node:http` server on 127.0.0.1 (random port) standing in for
 * a merchant's webhook endpoint.
 *
 * - Records every request: method, url, lower-cased headers, the raw body string and timings.
 * - Lets the test choose each response: status, body, headers, a delay, or "hold until released".
 * - Tracks requests in flight (arrived and not yet answered): current and maximum.
 *
 * ```ts
 * const receiver = await Receiver.start();
 * await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers });
 * ...
 * expect(receiver.requests[0]?.headers['webhook-id']).toBe(id);
 * await receiver.close();
 * ```
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the receiver got it. */
export interface ReceivedRequest {
  /** 0-based arrival index. */
  index: number;
  method: string;
  /** Path and query, as sent on the request line (`/hooks/orders?x=1`). */
  url: string;
  /** Path without the query. */
  path: string;
  /** Header names lower-cased; repeated headers joined with `, ` (Node's convention). */
  headers: Record<string, string>;
  /** Header names with their original casing, as `[name, value, name, value, …]`. */
  rawHeaders: string[];
  /** The raw body, decoded as UTF-8, exactly as received (use it to verify signatures). */
  body: string;
  /** `Date.now()` when the request line and headers arrived. */
  arrivedAt: number;
  /** `Date.now()` when the body was complete. */
  bodyReceivedAt: number;
  /** `Date.now()` when the receiver answered, or null while it has not (held, delayed, aborted). */
  respondedAt: number | null;
  /** True when the client went away before the receiver answered. */
  aborted: boolean;
}

/** How to answer one request. Every field is optional: the default is `200 {"ok":true}` at once. */
export interface ResponsePlan {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Keep the request open until {@link Receiver.release} / {@link Receiver.releaseAll}. */
  hold?: boolean;
}

/** A fixed plan for every request, or a function choosing one per request. */
export type Responder = ResponsePlan | ((request: ReceivedRequest) => ResponsePlan | Promise<ResponsePlan>);

/** Options of {@link Receiver.start}. */
export interface ReceiverOptions {
  /** How to answer requests (default `200 {"ok":true}`). Change later with {@link Receiver.respondWith}. */
  respond?: Responder;
}

interface HeldRequest {
  request: ReceivedRequest;
  plan: ResponsePlan;
  answer: (override?: ResponsePlan) => void;
}

const DEFAULT_PLAN: Required<Omit<ResponsePlan, 'delayMs' | 'hold'>> = {
  status: 200,
  body: '{"ok":true}',
  headers: { 'content-type': 'application/json' },
};

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** A local webhook endpoint that records requests and answers as told. */
export class Receiver {
  /** Every request received, in arrival order. */
  readonly requests: ReceivedRequest[] = [];
  private responder: Responder;
  private readonly held: HeldRequest[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters = new Set<() => void>();
  private current = 0;
  private max = 0;
  private closed = false;

  private listeningPort = 0;

  private constructor(
    private readonly server: Server,
    options: ReceiverOptions,
  ) {
    this.responder = options.respond ?? {};
  }

  /** Starts a receiver on 127.0.0.1 and a free port. */
  static async start(options: ReceiverOptions = {}): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => receiver.handle(req, res));
    // Tests close dispatchers and receivers explicitly; idle keep-alive sockets must not delay close().
    server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    receiver.listeningPort = (server.address() as AddressInfo).port;
    return receiver;
  }

  /** The TCP port the receiver listens on. */
  get port(): number {
    return this.listeningPort;
  }

  /** Base URL of the receiver: `http://127.0.0.1:<port>`. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Absolute URL of `path` on this receiver (`/` by default). */
  url(path = '/'): string {
    return `${this.origin}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /** Requests currently in flight (arrived, not yet answered nor aborted). */
  get inFlight(): number {
    return this.current;
  }

  /** The highest number of requests in flight at once so far. */
  get maxInFlight(): number {
    return this.max;
  }

  /** Requests being held, waiting for {@link release}. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Requests whose path (without query) is `path`. */
  requestsTo(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Replaces how subsequent requests are answered (requests already held stay held). */
  respondWith(responder: Responder): void {
    this.responder = responder;
  }

  /**
   * Answers up to `count` held requests, oldest first (all when omitted), with their plan or
   * `override`. Returns how many were released.
   */
  release(count = Infinity, override?: ResponsePlan): number {
    const batch = this.held.splice(0, Math.min(count, this.held.length));
    for (const held of batch) held.answer(override);
    return batch.length;
  }

  /** Answers every held request. Returns how many were released. */
  releaseAll(override?: ResponsePlan): number {
    return this.release(Infinity, override);
  }

  /** Resolves once at least `count` requests have been received (body complete). */
  waitForRequests(count: number, timeoutMs = 5_000): Promise<ReceivedRequest[]> {
    return this.waitUntil(() => this.requests.length >= count, `${count} requests`, timeoutMs).then(() => this.requests);
  }

  /** Resolves once at least `count` requests are being held. */
  waitForHeld(count: number, timeoutMs = 5_000): Promise<void> {
    return this.waitUntil(() => this.held.length >= count, `${count} held requests`, timeoutMs);
  }

  /**
   * Stops the receiver: held and delayed requests are dropped, idle keep-alive sockets closed.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.held.length = 0;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await done;
  }

  private waitUntil(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `receiver: timed out after ${timeoutMs} ms waiting for ${what} (have ${this.requests.length} requests, ${this.held.length} held)`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const arrivedAt = Date.now();
    this.current++;
    this.max = Math.max(this.max, this.current);
    let open = true;
    const settle = () => {
      if (!open) return false;
      open = false;
      this.current--;
      return true;
    };

    let request: ReceivedRequest | null = null;
    // The client went away before we answered (timeout, abort on close).
    res.on('close', () => {
      if (res.writableFinished || !settle()) return;
      if (request) {
        request.aborted = true;
        const at = this.held.findIndex((h) => h.request === request);
        if (at >= 0) this.held.splice(at, 1);
      }
      this.notify();
    });

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '/';
      const received: ReceivedRequest = {
        index: this.requests.length,
        method: req.method ?? '',
        url,
        path: url.split('?')[0] ?? url,
        headers: flattenHeaders(req),
        rawHeaders: [...req.rawHeaders],
        body: Buffer.concat(chunks).toString('utf8'),
        arrivedAt,
        bodyReceivedAt: Date.now(),
        respondedAt: null,
        aborted: false,
      };
      request = received;
      this.requests.push(received);

      const answer = (plan: ResponsePlan) => {
        if (!open || res.destroyed) return;
        settle();
        received.respondedAt = Date.now();
        const status = plan.status ?? DEFAULT_PLAN.status;
        // Without a body in the plan, successes answer `{"ok":true}` (JSON) and errors an empty body.
        const useDefaultBody = plan.body === undefined && status < 300;
        res.writeHead(status, plan.headers ?? (useDefaultBody ? DEFAULT_PLAN.headers : {}));
        res.end(plan.body ?? (useDefaultBody ? DEFAULT_PLAN.body : ''));
        this.notify();
      };

      const responder = this.responder;
      void new Promise<ResponsePlan>((resolve) => resolve(typeof responder === 'function' ? responder(received) : responder)).then(
        (plan) => {
          const respond = () => {
            if (plan.hold) {
              this.held.push({ request: received, plan, answer: (override) => answer(override ?? { ...plan, hold: false }) });
              this.notify();
            } else {
              answer(plan);
            }
          };
          if (plan.delayMs && plan.delayMs > 0) {
            const timer = setTimeout(() => {
              this.timers.delete(timer);
              respond();
            }, plan.delayMs);
            this.timers.add(timer);
          } else {
            respond();
          }
        },
        (error: unknown) => answer({ status: 500, body: `receiver responder threw: ${String(error)}` }),
      );
      this.notify();
    });
  }
}

/**
 * A URL on 127.0.0.1 where nothing listens: starts a server, notes its port and closes it, so
 * connections are refused.
 */
export async function refusedUrl(path = '/'): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`;
}

/** Header record accepted by `standardwebhooks`' `verify()` (it wants plain strings). */
export function standardHeaders(request: Pick<ReceivedRequest, 'headers'>): Record<string, string> {
  return { ...request.headers };
}
