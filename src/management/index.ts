/**
 * The management REST API of webhook-dispatcher: a standard Fetch handler for an organization's
 * webhooks (create, list, get, update, delete, every delivery setting of the library API, secret
 * reveal and rotation), their deliveries (queue state, History, redeliver, cancel, retry-failed)
 * and payload tools (preview, merge fields, test send), plus its OpenAPI 3.1 document, and an
 * Express/Connect adapter.
 *
 * ```ts
 * import { createManagementHandler, toExpressMiddleware } from 'webhook-dispatcher/management';
 * const handler = createManagementHandler({ dispatcher, authorize: (request, organizationId) => canManage(request, organizationId) });
 * ```
 *
 * @module
 */
export { createManagementHandler, DEFAULT_MAX_BODY_BYTES } from './handler.js';
export type { ManagementHandlerOptions } from './handler.js';
export type { ManagementDispatcher } from './management-dispatcher.js';
export { toExpressMiddleware } from './express.js';
export type { ExpressManagementMiddleware, ExpressMiddlewareOptions, FetchHandler, NextFunction, NodeRequest } from './express.js';
export { DEFAULT_EVENT_CODES, DEFAULT_EVENT_CODE_ALIASES, GENERIC_EVENT_CODE } from './schemas.js';
export type { EventCodeMap, WebhookResponse, ExecutionResponse } from './schemas.js';
export type { DeliveryResponse } from './delivery-schemas.js';
export type { ManagementErrorCode } from './http-errors.js';
