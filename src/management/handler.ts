/**
 * The management REST API as one standard Fetch handler, `(request: Request) => Promise<Response>`:
 * it runs as is in Hono, Next.js route handlers, Bun, Deno and Node ≥ 20 (and in Express through
 * {@link toExpressMiddleware}). Routes follow Pack.cloud's shape, scoped by organization: the
 * organization id is the webhook's `tenantId`.
 *
 * Security model: every organization route is gated by the host's `authorize(request,
 * organizationId)` (required); a webhook or delivery of another organization is a 404, never a
 * 403, so existence is not revealed; the signing secret appears in clear only in the create and
 * rotate answers and `GET …/secret`, every other credential only masked; 500s never carry the
 * cause. The routes themselves are in `routes/` (webhooks, deliveries, payloads).
 *
 * @module
 */
import { z } from 'zod';
import { WebhookValidationError } from '../errors.js';
import { parseInput } from '../input/parse.js';
import { triggerSchema } from '../input/fields.js';
import type { ApiContext } from './api-context.js';
import { EventCodes } from './event-codes.js';
import { HttpError, errorResponse, internalError, toHttpError } from './http-errors.js';
import type { ManagementDispatcher } from './management-dispatcher.js';
import { buildOpenApiDocument } from './openapi.js';
import { bodyReader } from './request-body.js';
import { routeMatcher, routeNotFound, type Route } from './router.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { payloadRoutes } from './routes/payloads.js';
import { webhookRoutes } from './routes/webhooks.js';
import { DEFAULT_EVENT_CODE_ALIASES, DEFAULT_EVENT_CODES, buildApiSchemas, type EventCodeMap } from './schemas.js';

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
  const api: ApiContext = { dispatcher, codes, schemas, basePath, readBody: bodyReader(maxBodyBytes) };

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
    ...webhookRoutes(api),
    ...deliveryRoutes(api),
    ...payloadRoutes(api),
  ];
  const match = routeMatcher(routes);

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
