/**
 * The admin page of webhook-dispatcher (`webhook-dispatcher/admin`): server-rendered screens for
 * an organization's webhooks (list; General, Authentication, Payload with live preview, History
 * with View and Redeliver, Queue; Send test), as one standard Fetch handler plus a Node adapter.
 *
 * ```ts
 * import { createAdminHandler, toNodeHandler } from 'webhook-dispatcher/admin';
 * const admin = createAdminHandler({ dispatcher, basePath: '/admin', authorize: (request, organizationId) => canManage(request, organizationId) });
 * ```
 *
 * @module
 */
export { createAdminHandler, DEFAULT_ADMIN_MAX_BODY_BYTES } from './handler.js';
export type { AdminHandler, AdminHandlerOptions } from './handler.js';
export type { AdminDispatcher } from './admin-dispatcher.js';
export { toNodeHandler } from './node-handler.js';
export type { AdminNodeRequest, NodeHandlerOptions } from './node-handler.js';
export { CONTENT_SECURITY_POLICY } from './security-headers.js';
