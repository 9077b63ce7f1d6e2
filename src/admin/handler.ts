/**
 * `createAdminHandler`: the admin page as one standard Fetch handler, `(request: Request) =>
 * Promise<Response>`, for Next.js route handlers, Hono, Bun and Deno as is, and for Express and
 * node:http through {@link toNodeHandler}. Server-rendered HTML, one small script and one
 * stylesheet served by the handler itself.
 *
 * Security model: every organization page and action is gated by the host's `authorize(request,
 * organizationId)`; a webhook, delivery or execution of another organization is a 404. A POST must
 * come from the page's own origin (`Origin`, and `Sec-Fetch-Site` when sent) and carry the
 * organization's CSRF token. Everything shown is HTML-escaped; the Content-Security-Policy allows
 * no inline script or style. Credentials are write-only: nothing the page renders contains a
 * signing secret, a basic-auth password or a credential header value.
 *
 * @module
 */
import { z } from 'zod';
import { parseInput } from '../input/parse.js';
import { SHOPCTRL_EVENTS } from '../shopctrl-events.js';
import type { Trigger } from '../storage/types.js';
import { DEFAULTS } from '../input/defaults.js';
import { redeliverAction, runWebhookAction } from './actions.js';
import { ADMIN_DISPATCHER_METHODS, type AdminDispatcher } from './admin-dispatcher.js';
import { assetResponse } from './assets.js';
import type { AdminContext } from './context.js';
import { CsrfTokens } from './csrf-token.js';
import { csrfTokenOf, readForm } from './forms.js';
import { noticeText } from './notices.js';
import { executionPage, webhookListPage, webhookPageFor } from './pages.js';
import { AdminPaths, TABS, WEBHOOK_ACTIONS, type Tab, type WebhookAction } from './paths.js';
import { AdminHttpError, htmlResponse, jsonResponse } from './responses.js';
import { crossSiteReason, normalizeOrigin } from './same-origin.js';
import { errorPage, errorTitle } from './views/error-page.js';
import { layout } from './views/layout.js';

/** Options of {@link createAdminHandler}. */
export interface AdminHandlerOptions {
  /** The dispatcher whose webhooks the page shows and changes (a `WebhookDispatcher`). */
  dispatcher: AdminDispatcher;
  /**
   * Required: whether the caller of `request` may manage the webhooks of `organizationId`
   * (authenticate from its headers: session cookie, …). Called for every page and every action;
   * only `true` grants access, anything else answers 403, a throw answers 500 (reported through
   * `onError`, never shown). Read headers only, not the body.
   */
  authorize: (request: Request, organizationId: string) => boolean | Promise<boolean>;
  /** Path prefix the page is mounted under, e.g. `/admin/webhooks-ui` (default `''`). */
  basePath?: string;
  /**
   * Key of the CSRF tokens, at least 32 characters. Default: a random key of this handler, so a
   * token holds only in this process; give every instance the same secret when several processes
   * serve the page (behind a load balancer) or a restart must not invalidate open pages.
   */
  csrfSecret?: string;
  /**
   * Origins besides the request's own that may POST (`https://admin.example.com`), for when a
   * proxy makes the URL the handler sees differ from the browser's (TLS ended in front of
   * Express without `trust proxy`, another host name). Default none.
   */
  trustedOrigins?: string[];
  /** The triggers the General tab offers as checkboxes (`name` is the label). Default: ShopCtrl's event table. */
  triggerChoices?: ReadonlyArray<Trigger & { name?: string }>;
  /**
   * Sample record for a trigger, used by the live preview and "Send test" (e.g. a real order of
   * the organization). Default: the preview rebuilds one from the listed merge fields' examples,
   * "Send test" sends the dispatcher's sample.
   */
  sampleData?: (trigger: Trigger, organizationId: string) => unknown;
  /** Grace period the rotation form proposes, in ms (default 24 h, the dispatcher's default). */
  secretRotationGraceMs?: number;
  /** Rows per page of the webhook list and of History (default 25). */
  pageSize?: number;
  /** Largest form accepted, in bytes (default 1 MiB: a template can be 100,000 characters). */
  maxBodyBytes?: number;
  /** Called with the cause of every 500 (the page itself stays generic). Default: `console.error`. */
  onError?: (error: unknown, request: Request) => void;
}

/** The Fetch handler {@link createAdminHandler} returns, with the prefix it serves (for {@link toNodeHandler}). */
export interface AdminHandler {
  (request: Request): Promise<Response>;
  /** The `basePath` the handler serves ('' for the root). */
  readonly basePath: string;
}

/** Default {@link AdminHandlerOptions.maxBodyBytes}: 1 MiB. */
export const DEFAULT_ADMIN_MAX_BODY_BYTES = 1024 * 1024;

const isFunction = (value: unknown): boolean => typeof value === 'function';

const optionsSchema = z.strictObject({
  dispatcher: z.custom<AdminDispatcher>(
    (value) =>
      typeof value === 'object' && value !== null && ADMIN_DISPATCHER_METHODS.every((name) => isFunction((value as Record<string, unknown>)[name])),
    'is required: pass the WebhookDispatcher whose webhooks the page manages',
  ),
  authorize: z.custom<AdminHandlerOptions['authorize']>(
    isFunction,
    "is required: pass authorize(request, organizationId) => boolean | Promise<boolean>, which decides whether the caller may manage that organization's webhooks (the page has no authentication of its own)",
  ),
  basePath: z
    .string()
    .regex(/^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*\/?$/, 'must be a path such as "/admin" (or "" for none)')
    .optional(),
  csrfSecret: z.string().min(32, 'must be at least 32 characters').max(1000).optional(),
  trustedOrigins: z
    .array(
      z.string().transform((value, ctx) => {
        try {
          return normalizeOrigin(value);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
    )
    .max(100)
    .optional(),
  triggerChoices: z
    .array(z.object({ entity: z.string().min(1).max(100), event: z.string().min(1).max(100), name: z.string().max(200).optional() }))
    .max(1000)
    .optional(),
  sampleData: z.custom<NonNullable<AdminHandlerOptions['sampleData']>>(isFunction, 'must be a function').optional(),
  secretRotationGraceMs: z.number().int().min(0).max(30 * 24 * 3_600_000).optional(),
  pageSize: z.number().int().min(1).max(1000).optional(),
  maxBodyBytes: z.number().int().min(1024).max(100 * 1024 * 1024).optional(),
  onError: z.custom<NonNullable<AdminHandlerOptions['onError']>>(isFunction, 'must be a function').optional(),
});

/** A route the path names, before the method is looked at. */
type Route =
  | { kind: 'asset'; name: string }
  | { kind: 'list'; organizationId: string }
  | { kind: 'webhook'; organizationId: string; webhookId: string }
  | { kind: 'action'; organizationId: string; webhookId: string; action: WebhookAction }
  | { kind: 'execution'; organizationId: string; webhookId: string; deliveryId: string; executionId: string }
  | { kind: 'redeliver'; organizationId: string; webhookId: string; deliveryId: string };

/**
 * Path ids: non-empty, at most 200 characters, no surrounding whitespace (the dispatcher trims
 * tenant ids, so `" a"` would be stored as `"a"` and never match its own path again).
 */
const isValidId = (value: string): boolean => value.length > 0 && value.length <= 200 && value.trim() === value;

function routeOf(path: string): Route | null {
  let parts: string[];
  try {
    parts = path.split('/').slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return null;
  }
  if (parts.length === 2 && parts[0] === 'assets') return { kind: 'asset', name: parts[1]! };
  if (parts[0] !== 'organizations' || parts[2] !== 'webhooks' || parts.length < 3) return null;
  const ids = [parts[1]!, parts[3], parts[5], parts[7]].filter((id): id is string => id !== undefined);
  if (!ids.every(isValidId)) return null;
  const [organizationId, webhookId, deliveryId, executionId] = ids as [string, string?, string?, string?];
  if (parts.length === 3) return { kind: 'list', organizationId };
  if (parts.length === 4) return { kind: 'webhook', organizationId, webhookId: webhookId! };
  if (parts.length === 5 && (WEBHOOK_ACTIONS as readonly string[]).includes(parts[4]!)) {
    return { kind: 'action', organizationId, webhookId: webhookId!, action: parts[4] as WebhookAction };
  }
  if (parts[4] !== 'deliveries') return null;
  if (parts.length === 7 && parts[6] === 'redeliver') return { kind: 'redeliver', organizationId, webhookId: webhookId!, deliveryId: parts[5]! };
  if (parts.length === 8 && parts[6] === 'executions') {
    return { kind: 'execution', organizationId, webhookId: webhookId!, deliveryId: deliveryId!, executionId: executionId! };
  }
  return null;
}

const methodOf = (route: Route): 'GET' | 'POST' => (route.kind === 'action' || route.kind === 'redeliver' ? 'POST' : 'GET');

/**
 * Creates the admin page handler. The organization's page is `{basePath}/organizations/{id}/webhooks`.
 *
 * ```ts
 * const admin = createAdminHandler({
 *   dispatcher,
 *   basePath: '/admin/webhooks',
 *   authorize: async (request, organizationId) => (await session(request))?.organizations.includes(organizationId) ?? false,
 * });
 * app.use(toNodeHandler(admin));                            // Express
 * export { admin as GET, admin as POST };                   // Next.js app/admin/webhooks/[...path]/route.ts
 * ```
 *
 * @throws {WebhookValidationError} when an option is missing or invalid (notably `authorize`).
 */
export function createAdminHandler(options: AdminHandlerOptions): AdminHandler {
  const parsed = parseInput(optionsSchema, options, 'createAdminHandler');
  const basePath = (parsed.basePath ?? '').replace(/\/$/, '');
  const paths = new AdminPaths(basePath);
  const authorize = parsed.authorize;
  const trustedOrigins = new Set(parsed.trustedOrigins ?? []);
  const maxBodyBytes = parsed.maxBodyBytes ?? DEFAULT_ADMIN_MAX_BODY_BYTES;
  const reportError = parsed.onError ?? ((error: unknown) => console.error('webhook-dispatcher admin page: unexpected error', error));
  const context: AdminContext = {
    dispatcher: parsed.dispatcher,
    paths,
    csrf: new CsrfTokens(parsed.csrfSecret),
    triggerChoices: parsed.triggerChoices ?? SHOPCTRL_EVENTS,
    sampleData: parsed.sampleData ?? null,
    secretRotationGraceMs: parsed.secretRotationGraceMs ?? DEFAULTS.secretRotationGraceMs,
    pageSize: parsed.pageSize ?? 25,
  };

  async function handle(request: Request, route: Route, url: URL): Promise<Response> {
    const method = request.method.toUpperCase();
    if (route.kind === 'asset') {
      if (method !== 'GET' && method !== 'HEAD') throw new AdminHttpError(405, 'Use GET.', { allow: 'GET, HEAD' });
      const asset = assetResponse(route.name, method);
      if (!asset) throw new AdminHttpError(404, 'No such file.');
      return asset;
    }
    const expected = methodOf(route);
    if (method !== expected) throw new AdminHttpError(405, `Use ${expected}.`, { allow: expected });

    const { organizationId } = route;
    if (expected === 'POST') {
      const reason = crossSiteReason(request, trustedOrigins);
      if (reason !== null) throw new AdminHttpError(403, `Cross-site request refused: ${reason}.`);
    }
    // The host decides; nothing below runs without its explicit `true`.
    let allowed: unknown;
    try {
      allowed = await authorize(request, organizationId);
    } catch (error) {
      reportError(error, request);
      throw new AdminHttpError(500, 'The request could not be completed.');
    }
    if (allowed !== true) throw new AdminHttpError(403, "You are not allowed to manage this organization's webhooks.");
    if (request.bodyUsed) throw new Error('authorize() consumed the request body; read headers only');

    switch (route.kind) {
      case 'list':
        return webhookListPage(context, organizationId, cursorOf(url));
      case 'webhook': {
        const tab = url.searchParams.get('tab');
        return webhookPageFor(context, {
          organizationId,
          webhookId: route.webhookId,
          tab: (TABS as readonly string[]).includes(tab ?? '') ? (tab as Tab) : 'general',
          notice: noticeText(url.searchParams.get('notice')),
          historyCursor: cursorOf(url),
        });
      }
      case 'execution':
        return executionPage(context, organizationId, route);
      case 'action':
      case 'redeliver': {
        const form = await readForm(request, maxBodyBytes);
        if (!context.csrf.verify(organizationId, csrfTokenOf(form))) {
          throw new AdminHttpError(403, 'The form has expired or did not come from this page (CSRF token mismatch). Reload the page and try again.');
        }
        if (route.kind === 'redeliver') return redeliverAction(context, { ...route, form });
        return runWebhookAction(context, route.action, { ...route, form });
      }
    }
  }

  function errorAnswer(error: AdminHttpError, route: Route | null): Response {
    if (route?.kind === 'action' && route.action === 'preview') return jsonResponse(error.status, { ok: false, error: error.message });
    const organizationId = route && route.kind !== 'asset' && error.status !== 403 ? route.organizationId : null;
    const body = errorPage(error.status, error.message);
    return htmlResponse(error.status, layout({ title: errorTitle(error.status), paths, organizationId, body }), error.headers);
  }

  const handler = async function adminHandler(request: Request): Promise<Response> {
    let route: Route | null = null;
    try {
      const url = new URL(request.url);
      let path = url.pathname;
      if (basePath) {
        if (path !== basePath && !path.startsWith(`${basePath}/`)) throw new AdminHttpError(404, 'No such page.');
        path = path.slice(basePath.length);
      }
      if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
      route = routeOf(path);
      if (!route) throw new AdminHttpError(404, 'No such page.');
      return await handle(request, route, url);
    } catch (error) {
      if (error instanceof AdminHttpError) return errorAnswer(error, route);
      reportError(error, request);
      return errorAnswer(new AdminHttpError(500, 'The request could not be completed.'), route);
    }
  };
  return Object.assign(handler, { basePath }) as AdminHandler;
}

/** The `cursor` query parameter, when it looks like one. */
function cursorOf(url: URL): string | null {
  const cursor = url.searchParams.get('cursor');
  return cursor && cursor.length <= 200 ? cursor : null;
}
