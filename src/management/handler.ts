/**
 * The management REST API as one standard Fetch handler, `(request: Request) => Promise<Response>`:
 * it runs as is in Hono, Next.js route handlers, Bun, Deno and Node ≥ 20 (and in Express through
 * {@link toExpressMiddleware}). Routes follow Pack.cloud's shape, scoped by organization: the
 * organization id is the webhook's `tenantId`.
 *
 * Security model: every organization route is gated by the host's `authorize(request,
 * organizationId)` (required); a webhook of another organization is a 404, never a 403, so
 * existence is not revealed; the signing secret appears only in create and rotate answers; 500s
 * never carry the cause.
 *
 * @module
 */
import { z } from 'zod';
import { WebhookNotFoundError, WebhookValidationError } from '../errors.js';
import { parseInput } from '../input/parse.js';
import { triggerSchema } from '../input/fields.js';
import { type CreateWebhookInput, type RotateSecretInput, type UpdateWebhookInput } from '../input/webhook.js';
import { type ListExecutionsInput, type ListWebhooksInput, type TestEventInput } from '../input/queries.js';
import type { PayloadTemplate } from '../payload.js';
import type { DeliveryRecord, ExecutionRecord, Page, Trigger, WebhookRecord } from '../storage/types.js';
import { looksMasked } from '../credentials/mask.js';
import { EventCodes } from './event-codes.js';
import { HttpError, errorResponse, fromZodError, internalError, jsonResponse as json, toHttpError } from './http-errors.js';
import { buildOpenApiDocument, type RouteDoc } from './openapi.js';
import {
  DEFAULT_EVENT_CODE_ALIASES,
  DEFAULT_EVENT_CODES,
  buildApiSchemas,
  listExecutionsQuerySchema,
  listWebhooksQuerySchema,
  rotateSecretBodySchema,
  type EventCodeMap,
} from './schemas.js';
import { serializeExecution, serializeQueuedDelivery, serializeSavedWebhook, serializeWebhook } from './serialize.js';
import type { SaveWarning } from '../mergefields/unknown-fields.js';

/**
 * The slice of `WebhookDispatcher` the API calls. A `WebhookDispatcher` satisfies it; tests and
 * hosts may pass anything else that does (e.g. a wrapper that audits changes).
 */
export interface ManagementDispatcher {
  createWebhook(input: CreateWebhookInput): Promise<WebhookRecord & { warnings?: readonly SaveWarning[] }>;
  getWebhook(id: string): Promise<WebhookRecord>;
  listWebhooks(query?: ListWebhooksInput): Promise<Page<WebhookRecord>>;
  updateWebhook(id: string, patch: UpdateWebhookInput): Promise<WebhookRecord & { warnings?: readonly SaveWarning[] }>;
  deleteWebhook(id: string): Promise<void>;
  rotateSecret(id: string, input?: RotateSecretInput): Promise<WebhookRecord>;
  /** The signing secret in clear (`GET …/secret`). Optional: without it that route answers 501. */
  getWebhookSecret?(id: string): Promise<string>;
  listExecutions(query?: ListExecutionsInput): Promise<Page<ExecutionRecord>>;
  getDelivery(id: string): Promise<DeliveryRecord>;
  redeliver(deliveryId: string): Promise<DeliveryRecord>;
  /**
   * Sends a test event to one webhook. Optional: dispatchers without it answer `POST …/test`
   * with 501. The result may be the execution record, `{ execution }`, or the queued delivery.
   */
  sendTestEvent?(webhookId: string, input?: TestEventInput): Promise<unknown>;
}

/** Options of {@link createManagementHandler}. */
export interface ManagementHandlerOptions {
  /** The dispatcher whose webhooks are managed. */
  dispatcher: ManagementDispatcher;
  /**
   * Required: decides whether the caller of `request` may manage the webhooks of
   * `organizationId` (authenticate from its headers: session cookie, bearer token, …). Only
   * `true` grants access; anything else answers 403, a throw answers 500 (logged through
   * `onError`, never shown). Called before the body is read: read headers only, not the body.
   */
  authorize: (request: Request, organizationId: string) => boolean | Promise<boolean>;
  /** Path prefix the routes are mounted under, e.g. `/api` (default `''`). */
  basePath?: string;
  /**
   * API event codes and the triggers they stand for. Default: `order.created` → order Create,
   * `order.updated` → order Edit, `order.canceled` → order Cancel, `order.shipped` → order Ship.
   */
  eventCodes?: EventCodeMap;
  /** Also accept any `<entity>.<event>` code (e.g. `product.Edit`) besides `eventCodes`. Default false. */
  allowAnyEventCode?: boolean;
  /**
   * Codes accepted in requests as another code (`alias` → `code`); answers name the code. Default:
   * `orders.created` → `order.created` (the example of Pack.cloud's document), kept only when
   * `order.created` is one of `eventCodes`. Pass `{}` for none.
   */
  eventCodeAliases?: Record<string, string>;
  /** Largest request body accepted, in bytes (default 64 KiB); larger ones answer 413. */
  maxBodyBytes?: number;
  /**
   * Called with the cause of every 500 (the answer itself stays generic). Default:
   * `console.error`, so failures are never silent.
   */
  onError?: (error: unknown, request: Request) => void;
}

/** Default {@link ManagementHandlerOptions.maxBodyBytes}: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

const ORGANIZATIONS = '/v1/organizations/{organizationId}';
const WEBHOOKS = `${ORGANIZATIONS}/webhooks`;
const WEBHOOK = `${WEBHOOKS}/{webhookId}`;

const isFunction = (value: unknown): boolean => typeof value === 'function';
const hasMethods = (...names: string[]) => (value: unknown) =>
  typeof value === 'object' && value !== null && names.every((n) => isFunction((value as Record<string, unknown>)[n]));

const optionsSchema = z.strictObject({
  dispatcher: z.custom<ManagementDispatcher>(
    hasMethods('createWebhook', 'getWebhook', 'listWebhooks', 'updateWebhook', 'deleteWebhook', 'rotateSecret', 'listExecutions', 'getDelivery', 'redeliver'),
    'is required: pass the WebhookDispatcher whose webhooks this API manages',
  ),
  authorize: z.custom<ManagementHandlerOptions['authorize']>(
    isFunction,
    'is required: pass authorize(request, organizationId) => boolean | Promise<boolean>, which decides whether the caller may ' +
      'manage that organization\'s webhooks (the API has no authentication of its own)',
  ),
  basePath: z
    .string()
    .regex(/^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*\/?$/, 'must be a path such as "/api" (or "" for none)')
    .optional(),
  eventCodes: z.record(z.string().regex(/^[^\s]{1,200}$/, 'event codes must be 1-200 characters without spaces'), triggerSchema).optional(),
  allowAnyEventCode: z.boolean().optional(),
  eventCodeAliases: z.record(z.string().regex(/^[^\s]{1,200}$/, 'aliases must be 1-200 characters without spaces'), z.string()).optional(),
  maxBodyBytes: z.number().int().min(1).max(100 * 1024 * 1024).optional(),
  onError: z.custom<NonNullable<ManagementHandlerOptions['onError']>>(isFunction, 'must be a function').optional(),
});

/** Everything a route's implementation gets. */
interface RouteContext {
  request: Request;
  url: URL;
  params: Record<string, string>;
  /** The organization of the path (already authorized); '' on routes without one. */
  organizationId: string;
}

interface Route extends RouteDoc {
  run: (context: RouteContext) => Promise<Response>;
}

const notFound = (): HttpError => new HttpError(404, 'webhook_not_found', 'webhook not found', 'webhook_id');

/**
 * Creates the management API handler.
 *
 * ```ts
 * const handler = createManagementHandler({
 *   dispatcher,
 *   authorize: async (request, organizationId) => (await session(request))?.organizations.includes(organizationId) ?? false,
 * });
 * Bun.serve({ fetch: handler });                 // or Deno.serve(handler), Hono: app.all('/v1/*', (c) => handler(c.req.raw))
 * const api = toExpressMiddleware(handler); app.use(api, api.errorHandler); // Express
 * ```
 *
 * `GET {basePath}/openapi.json` serves the OpenAPI 3.1 document without authorization (it
 * describes the API, not any organization's data).
 *
 * @throws {WebhookValidationError} when an option is missing or invalid (notably `authorize`).
 */
export function createManagementHandler(options: ManagementHandlerOptions): (request: Request) => Promise<Response> {
  const parsed = parseInput(optionsSchema, options, 'createManagementHandler');
  const dispatcher = parsed.dispatcher;
  const authorize = parsed.authorize;
  const basePath = (parsed.basePath ?? '').replace(/\/$/, '');
  const maxBodyBytes = parsed.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const allowAnyEventCode = parsed.allowAnyEventCode ?? false;
  const eventCodeMap = parsed.eventCodes ?? DEFAULT_EVENT_CODES;
  if (!allowAnyEventCode && Object.keys(eventCodeMap).length === 0) {
    throw new WebhookValidationError([{ path: 'eventCodes', message: 'must map at least one code (or set allowAnyEventCode: true)' }], {
      context: 'createManagementHandler',
    });
  }
  const reportError =
    parsed.onError ?? ((error: unknown) => console.error('webhook-dispatcher management API: unexpected error', error));
  const aliases = aliasesFor(parsed.eventCodeAliases, eventCodeMap);
  const codes = new EventCodes(eventCodeMap, allowAnyEventCode, aliases);
  const schemas = buildApiSchemas({ eventCodes: codes.codes, allowAnyEventCode, aliases });

  // ------------------------------------------------------------------ helpers

  /** The webhook, if it belongs to the organization; otherwise 404 (never 403: existence stays hidden). */
  async function ownedWebhook(organizationId: string, webhookId: string): Promise<WebhookRecord> {
    let webhook: WebhookRecord;
    try {
      webhook = await dispatcher.getWebhook(webhookId);
    } catch (error) {
      if (error instanceof WebhookNotFoundError || error instanceof WebhookValidationError) throw notFound();
      throw error;
    }
    // Untenanted webhooks (tenantId null) belong to no organization, so no organization sees them.
    if (webhook.tenantId !== organizationId) throw notFound();
    return webhook;
  }

  function parse<S extends z.ZodType>(schema: S, value: unknown, hints?: Record<string, string>): z.output<S> {
    const result = schema.safeParse(value);
    if (!result.success) throw fromZodError(result.error, hints);
    return result.data;
  }

  function query(url: URL): Record<string, string> {
    // A repeated parameter takes its last value, as most frameworks do.
    return Object.fromEntries(url.searchParams);
  }

  function triggersOf(input: { event_code?: string | undefined; event_codes?: string[] | undefined }): Trigger[] | undefined {
    const list = input.event_codes ?? (input.event_code !== undefined ? [input.event_code] : undefined);
    if (!list) return undefined;
    const seen = new Set<string>();
    const triggers: Trigger[] = [];
    for (const code of list) {
      if (seen.has(code)) continue;
      seen.add(code);
      const trigger = codes.toTrigger(code);
      // The schema already accepted the code; a null here means the two disagree.
      if (!trigger) throw new HttpError(422, 'invalid_input', `event_code: ${code} is not a known event code`, 'event_code');
      triggers.push(trigger);
    }
    return triggers;
  }

  async function readBody(request: Request, required: boolean): Promise<unknown> {
    const type = request.headers.get('content-type');
    const jsonType = type !== null && isJsonMediaType(type);
    if (type !== null && !jsonType) {
      throw new HttpError(415, 'unsupported_media_type', `send the body as application/json, not ${type.split(';')[0]?.trim() || type}`);
    }
    if (required && !jsonType) throw new HttpError(415, 'unsupported_media_type', 'send a JSON body with Content-Type: application/json');
    const declared = Number(request.headers.get('content-length') ?? NaN);
    if (declared > maxBodyBytes) throw tooLarge(maxBodyBytes);
    const bytes = request.body ? await readLimited(request.body, maxBodyBytes) : new Uint8Array(0);
    if (bytes.byteLength === 0) {
      if (required) throw new HttpError(400, 'malformed_json', 'the request body is empty; expected a JSON object');
      return undefined;
    }
    if (!jsonType) throw new HttpError(415, 'unsupported_media_type', 'send the body with Content-Type: application/json');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new HttpError(400, 'malformed_json', 'the request body is not valid UTF-8');
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new HttpError(400, 'malformed_json', `the request body is not valid JSON: ${(error as Error).message}`);
    }
  }

  // ------------------------------------------------------------------ routes

  async function listWebhooks({ url, organizationId }: RouteContext): Promise<Response> {
    const q = parse(listWebhooksQuerySchema, query(url));
    const page = await dispatcher.listWebhooks({ tenantId: organizationId, limit: q.limit, cursor: q.cursor ?? null });
    return json(200, {
      // The tenant filter is the storage's job; checking again costs nothing and survives a buggy adapter.
      data: page.items.filter((w) => w.tenantId === organizationId).map((w) => serializeWebhook(w, codes)),
      next_cursor: page.nextCursor,
    });
  }

  async function createWebhook({ request, organizationId }: RouteContext): Promise<Response> {
    const body = parse(schemas.createWebhookBody, codes.canonicalBody(await readBody(request, true)));
    const webhook = await dispatcher.createWebhook({
      url: body.endpoint,
      triggers: triggersOf(body) ?? [],
      tenantId: organizationId,
      ...(body.secret !== undefined ? { secret: body.secret } : {}),
      ...(body.secret_encoding !== undefined ? { secretEncoding: body.secret_encoding } : {}),
      ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
      ...(body.headers !== undefined ? { headers: body.headers } : {}),
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.payload !== undefined ? { payload: payloadOf(body.payload) } : {}),
    });
    const location = `${basePath}/v1/organizations/${encodeURIComponent(organizationId)}/webhooks/${encodeURIComponent(webhook.id)}`;
    return json(201, serializeSavedWebhook(webhook, codes), { location });
  }

  async function getWebhook({ params, organizationId }: RouteContext): Promise<Response> {
    return json(200, serializeWebhook(await ownedWebhook(organizationId, params.webhookId ?? ''), codes));
  }

  async function updateWebhook({ request, params, organizationId }: RouteContext): Promise<Response> {
    // Masks a GET showed are set aside before the schema (a mask is no valid header value) and
    // handed to the dispatcher, which keeps the stored value for its own mask and refuses others.
    const { rest, masked, secret } = setMasksAside(codes.canonicalBody(await readBody(request, true)));
    const body = parse(schemas.updateWebhookBody, rest, {
      secret: 'cannot be changed with PATCH; use POST …/rotate-secret',
    });
    if (body.headers !== undefined) Object.assign(body.headers, masked);
    const current = await ownedWebhook(organizationId, params.webhookId ?? '');
    // The masked secret of a GET sent back unchanged keeps it; a changed one is no way to set it.
    if (secret !== undefined && secret !== current.secret) {
      const message = 'cannot be changed with PATCH; use POST …/rotate-secret';
      throw new HttpError(422, 'invalid_input', `secret: ${message}`, 'secret', {}, [{ field: 'secret', message }]);
    }
    const triggers = triggersOf(body);
    const updated = await dispatcher.updateWebhook(current.id, {
      ...(body.endpoint !== undefined ? { url: body.endpoint } : {}),
      ...(triggers !== undefined ? { triggers } : {}),
      ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
      ...(body.headers !== undefined ? { headers: body.headers } : {}),
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.payload !== undefined ? { payload: payloadOf(body.payload) } : {}),
    });
    return json(200, serializeSavedWebhook(updated, codes));
  }

  async function deleteWebhook({ params, organizationId }: RouteContext): Promise<Response> {
    const current = await ownedWebhook(organizationId, params.webhookId ?? '');
    await dispatcher.deleteWebhook(current.id);
    return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } });
  }

  async function listExecutions({ url, params, organizationId }: RouteContext): Promise<Response> {
    const q = parse(listExecutionsQuerySchema, query(url));
    const webhook = await ownedWebhook(organizationId, params.webhookId ?? '');
    const page = await dispatcher.listExecutions({
      webhookId: webhook.id,
      ...(q.success !== undefined ? { success: q.success } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      cursor: q.cursor ?? null,
    });
    return json(200, {
      data: page.items.filter((e) => e.webhookId === webhook.id).map((e) => serializeExecution(e, codes)),
      next_cursor: page.nextCursor,
    });
  }

  async function redeliver({ request, params, organizationId }: RouteContext): Promise<Response> {
    parse(z.strictObject({}), (await readBody(request, false)) ?? {});
    const webhook = await ownedWebhook(organizationId, params.webhookId ?? '');
    const missing = new HttpError(404, 'delivery_not_found', 'delivery not found', 'delivery_id');
    let delivery: DeliveryRecord;
    try {
      delivery = await dispatcher.getDelivery(params.deliveryId ?? '');
    } catch (error) {
      if (toHttpError(error)?.status === 404 || error instanceof WebhookValidationError) throw missing;
      throw error;
    }
    // A delivery of another webhook (perhaps another organization's) does not exist here.
    if (delivery.webhookId !== webhook.id) throw missing;
    try {
      return json(202, serializeQueuedDelivery(await dispatcher.redeliver(delivery.id)));
    } catch (error) {
      if (error instanceof WebhookValidationError) {
        // The only input left is the delivery's state: waiting or in flight, not a bad field.
        throw new HttpError(409, 'conflict', `delivery is ${delivery.status}; only finished deliveries can be redelivered`, 'delivery_id');
      }
      throw error;
    }
  }

  async function sendTest({ request, params, organizationId }: RouteContext): Promise<Response> {
    const webhook = await ownedWebhook(organizationId, params.webhookId ?? '');
    if (typeof dispatcher.sendTestEvent !== 'function') {
      throw new HttpError(501, 'not_implemented', 'this server\'s webhook dispatcher cannot send test events (no sendTestEvent)');
    }
    const body = parse(schemas.testEventBody, codes.canonicalBody((await readBody(request, false)) ?? {}));
    const trigger = body.event_code !== undefined ? codes.toTrigger(body.event_code) : null;
    const input: NonNullable<TestEventInput> = {
      ...(trigger ? { entity: trigger.entity, event: trigger.event } : {}),
      ...(body.data !== undefined ? { data: body.data } : {}),
    };
    const result = await dispatcher.sendTestEvent(webhook.id, Object.keys(input).length > 0 ? input : undefined);
    const execution = executionOf(result);
    if (execution) return json(200, serializeExecution(execution, codes));
    const delivery = deliveryOf(result);
    // The dispatcher queued the test without waiting for it: its History will show the attempt.
    if (delivery) return json(202, serializeQueuedDelivery(delivery));
    throw new Error('sendTestEvent returned neither an execution nor a delivery');
  }

  async function revealSecret({ params, organizationId }: RouteContext): Promise<Response> {
    const current = await ownedWebhook(organizationId, params.webhookId ?? '');
    if (!dispatcher.getWebhookSecret) throw new HttpError(501, 'not_implemented', 'this server\'s webhook dispatcher cannot reveal secrets (no getWebhookSecret)');
    return json(200, { secret: await dispatcher.getWebhookSecret(current.id) });
  }

  async function rotateSecret({ request, params, organizationId }: RouteContext): Promise<Response> {
    const body = parse(rotateSecretBodySchema, (await readBody(request, false)) ?? {});
    const current = await ownedWebhook(organizationId, params.webhookId ?? '');
    const rotated = await dispatcher.rotateSecret(
      current.id,
      body.grace_period_ms !== undefined ? { gracePeriodMs: body.grace_period_ms } : undefined,
    );
    return json(200, serializeWebhook(rotated, codes));
  }

  let openApiJson: string | null = null;
  async function openApi(): Promise<Response> {
    // Built on first request: generating the schemas costs a few ms nobody needs at startup.
    openApiJson ??= JSON.stringify(buildOpenApiDocument(routes, schemas, basePath));
    return new Response(openApiJson, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' } });
  }

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/openapi.json',
      operationId: 'getOpenApiDocument',
      summary: 'This OpenAPI document',
      auth: false,
      success: { status: 200, description: 'The document.', schema: 'OpenApiDocument' },
      errors: [],
      run: openApi,
    },
    {
      method: 'GET',
      path: WEBHOOKS,
      operationId: 'listWebhooks',
      summary: 'List webhooks',
      description: 'Newest first, credentials masked.',
      auth: true,
      query: listWebhooksQuerySchema,
      success: { status: 200, description: 'A page of webhooks.', schema: 'WebhookList' },
      errors: [422],
      run: listWebhooks,
    },
    {
      method: 'POST',
      path: WEBHOOKS,
      operationId: 'createWebhook',
      summary: 'Create webhook',
      description: 'The answer shows the secret in clear, as rotation does; every read masks it (see `GET …/secret`).',
      auth: true,
      body: { schema: 'CreateWebhookRequest', required: true },
      success: { status: 201, description: 'Created (with the secret).', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: createWebhook,
    },
    {
      method: 'GET',
      path: WEBHOOK,
      operationId: 'getWebhook',
      summary: 'Get a webhook',
      auth: true,
      success: { status: 200, description: 'The webhook, credentials masked.', schema: 'Webhook' },
      errors: [],
      run: getWebhook,
    },
    {
      method: 'PATCH',
      path: WEBHOOK,
      operationId: 'updateWebhook',
      summary: 'Update a webhook',
      auth: true,
      body: { schema: 'UpdateWebhookRequest', required: true },
      success: { status: 200, description: 'The updated webhook, credentials masked.', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: updateWebhook,
    },
    {
      method: 'DELETE',
      path: WEBHOOK,
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook',
      description: 'Its waiting deliveries are cancelled.',
      auth: true,
      success: { status: 204, description: 'Deleted.' },
      errors: [],
      run: deleteWebhook,
    },
    {
      method: 'GET',
      path: `${WEBHOOK}/executions`,
      operationId: 'listExecutions',
      summary: 'History: attempts of a webhook',
      description: 'One record per HTTP attempt, newest first.',
      auth: true,
      query: listExecutionsQuerySchema,
      success: { status: 200, description: 'A page of executions.', schema: 'ExecutionList' },
      errors: [422],
      run: listExecutions,
    },
    {
      method: 'POST',
      path: `${WEBHOOK}/deliveries/{deliveryId}/redeliver`,
      operationId: 'redeliver',
      summary: 'Send a finished delivery again',
      description: 'Same delivery id, so the receiver sees the same `webhook-id` and can deduplicate.',
      auth: true,
      success: { status: 202, description: 'Queued for redelivery.', schema: 'DeliveryQueued' },
      errors: [409, 413, 415, 422],
      run: redeliver,
    },
    {
      method: 'POST',
      path: `${WEBHOOK}/test`,
      operationId: 'sendTestEvent',
      summary: 'Send a test event',
      description: 'The receiver sees the test marker header (`X-Pakk-Webhook-Test: true` with the default prefix).',
      auth: true,
      body: { schema: 'TestEventRequest', required: false },
      success: { status: 200, description: 'The execution of the test send (202 with the delivery when only queued).', schema: 'Execution' },
      errors: [400, 413, 415, 422, 501],
      run: sendTest,
    },
    {
      method: 'GET',
      path: `${WEBHOOK}/secret`,
      operationId: 'getWebhookSecret',
      summary: 'Reveal the signing secret',
      description: 'The one read that answers the secret in clear (as Svix\'s "reveal"). Every other read masks it.',
      auth: true,
      success: { status: 200, description: 'The current signing secret.', schema: 'WebhookSecret' },
      errors: [501],
      run: revealSecret,
    },
    {
      method: 'POST',
      path: `${WEBHOOK}/rotate-secret`,
      operationId: 'rotateSecret',
      summary: 'Rotate the signing secret',
      description: 'The old secret keeps signing alongside the new one for the grace period.',
      auth: true,
      body: { schema: 'RotateSecretRequest', required: false },
      success: { status: 200, description: 'The webhook with its new secret.', schema: 'Webhook' },
      errors: [400, 413, 415, 422],
      run: rotateSecret,
    },
  ];

  const compiled = routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }));

  function match(path: string): Array<{ route: Route; params: Record<string, string> }> | null {
    const parts = path.split('/').slice(1);
    let decoded: string[];
    try {
      decoded = parts.map((p) => decodeURIComponent(p));
    } catch {
      return null;
    }
    const found: Array<{ route: Route; params: Record<string, string> }> = [];
    for (const { route, segments } of compiled) {
      if (segments.length !== decoded.length) continue;
      const params: Record<string, string> = {};
      const ok = segments.every((segment, i) => {
        const value = decoded[i] ?? '';
        if (segment.startsWith('{')) {
          params[segment.slice(1, -1)] = value;
          return isValidId(value);
        }
        return segment === value;
      });
      if (ok) found.push({ route, params });
    }
    return found;
  }

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    let path = url.pathname;
    if (basePath) {
      if (path !== basePath && !path.startsWith(`${basePath}/`)) throw routeNotFound();
      path = path.slice(basePath.length);
    }
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const candidates = match(path);
    if (!candidates || candidates.length === 0) throw routeNotFound();
    const method = request.method.toUpperCase();
    const hit = candidates.find((c) => c.route.method === method);
    if (!hit) {
      const allow = candidates.map((c) => c.route.method).join(', ');
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allow}`, null, { allow });
    }
    const organizationId = hit.params.organizationId ?? '';
    if (hit.route.auth) {
      // The host decides; nothing below runs without its explicit `true`.
      let allowed: unknown;
      try {
        allowed = await authorize(request, organizationId);
      } catch (error) {
        reportError(error, request);
        throw internalError();
      }
      if (allowed !== true) {
        throw new HttpError(403, 'forbidden', 'you are not allowed to manage the webhooks of this organization');
      }
      if (request.bodyUsed) throw new Error('authorize() consumed the request body; read headers only');
    }
    return hit.route.run({ request, url, params: hit.params, organizationId });
  }

  return async function managementHandler(request: Request): Promise<Response> {
    try {
      return await handle(request);
    } catch (error) {
      const http = toHttpError(error);
      if (http) return errorResponse(http);
      reportError(error, request);
      return errorResponse(internalError());
    }
  };
}

/**
 * The aliases in force: the given ones, each of which must name an accepted code; by default
 * those of {@link DEFAULT_EVENT_CODE_ALIASES} whose code is configured.
 */
function aliasesFor(given: Record<string, string> | undefined, map: EventCodeMap): Record<string, string> {
  const known = (code: string) => Object.hasOwn(map, code);
  if (given === undefined) {
    return Object.fromEntries(Object.entries(DEFAULT_EVENT_CODE_ALIASES).filter(([alias, code]) => known(code) && !known(alias)));
  }
  const issues = Object.entries(given).flatMap(([alias, code]) => {
    if (known(alias)) return [{ path: `eventCodeAliases.${alias}`, message: 'is itself a configured event code' }];
    if (!known(code)) return [{ path: `eventCodeAliases.${alias}`, message: `names ${JSON.stringify(code)}, which is not one of eventCodes` }];
    return [];
  });
  if (issues.length > 0) throw new WebhookValidationError(issues, { context: 'createManagementHandler' });
  return given;
}

/** The API's `{ mime_type, template }` (already validated and normalised) as the dispatcher's `{ mimeType, template }`. */
function payloadOf(payload: { mime_type: PayloadTemplate['mimeType']; template: string } | null): PayloadTemplate | null {
  return payload === null ? null : { mimeType: payload.mime_type, template: payload.template };
}

function routeNotFound(): HttpError {
  return new HttpError(404, 'route_not_found', 'no such route');
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `the request body is larger than ${limit} bytes`);
}

/**
 * Path ids: non-empty, at most 200 characters, no surrounding whitespace. The dispatcher trims
 * tenant ids, so `" a"` would be stored as `"a"` and then never match its own path again.
 */
function isValidId(value: string): boolean {
  return value.length > 0 && value.length <= 200 && value.trim() === value;
}

/** `application/json` or any `+json` type, with or without parameters. */
function isJsonMediaType(type: string): boolean {
  const essence = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return essence === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(essence);
}

/** Reads a body stream up to `limit` bytes; beyond that, stops reading and answers 413. */
async function readLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      // A request body fails mid-way only when the client (or its connection) goes away: its
      // doing, answered as such and not reported as a server error.
      throw new HttpError(400, 'request_aborted', 'the request body ended before it was complete (the client disconnected)');
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      // Cancel rather than drain: an oversized body is not worth receiving.
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The execution record in whatever `sendTestEvent` returned (the record itself or `{ execution }`). */
function executionOf(result: unknown): ExecutionRecord | null {
  const looksLikeExecution = (v: unknown): v is ExecutionRecord =>
    isRecord(v) && typeof v.deliveryId === 'string' && typeof v.startedAt === 'number' && typeof v.status === 'number';
  if (looksLikeExecution(result)) return result;
  if (isRecord(result) && looksLikeExecution(result.execution)) return result.execution;
  return null;
}

/** The delivery in whatever `sendTestEvent` returned (the record itself or `{ delivery }`). */
function deliveryOf(result: unknown): DeliveryRecord | null {
  const looksLikeDelivery = (v: unknown): v is DeliveryRecord =>
    isRecord(v) && typeof v.id === 'string' && typeof v.webhookId === 'string' && typeof v.status === 'string';
  if (looksLikeDelivery(result)) return result;
  if (isRecord(result) && looksLikeDelivery(result.delivery)) return result.delivery;
  return null;
}

/**
 * A PATCH body with the header values that look masked taken out, and those values apart: the
 * schema checks the rest, the dispatcher decides on the masks.
 */
function setMasksAside(body: unknown): { rest: unknown; masked: Record<string, string>; secret?: string } {
  const masked: Record<string, string> = {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { rest: body, masked };
  const { headers, ...rest } = body as { headers?: unknown; secret?: unknown };
  let secret: string | undefined;
  if (looksMasked(rest.secret)) {
    secret = rest.secret;
    delete rest.secret;
  }
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    return { rest: headers === undefined ? rest : { ...rest, headers }, masked, ...(secret !== undefined ? { secret } : {}) };
  }
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (looksMasked(value)) masked[name] = value;
    else kept[name] = value;
  }
  return { rest: { ...rest, headers: kept }, masked, ...(secret !== undefined ? { secret } : {}) };
}
