/**
 * The slice of `WebhookDispatcher` the admin page calls: the library API itself, no REST hop.
 *
 * @module
 */
import type { WebhookDispatcher } from '../dispatcher.js';

/**
 * The methods of `WebhookDispatcher` the admin page uses. A `WebhookDispatcher` satisfies it;
 * a host may pass a wrapper with the same methods (e.g. one that audits changes). The page never
 * calls a method that reveals a credential: it renders what `getWebhook`/`listWebhooks` return and
 * masks credential header values itself as well.
 */
export type AdminDispatcher = Pick<
  WebhookDispatcher,
  | 'listWebhooks'
  | 'getWebhook'
  | 'updateWebhook'
  | 'duplicateWebhook'
  | 'rotateSecret'
  | 'getWebhookHealth'
  | 'listExecutions'
  | 'listDeliveries'
  | 'getDelivery'
  | 'getQueueStats'
  | 'redeliver'
  | 'sendTestEvent'
  | 'previewPayload'
  | 'listMergeFields'
>;

/** The method names of {@link AdminDispatcher}, checked when the handler is created. */
export const ADMIN_DISPATCHER_METHODS = [
  'listWebhooks',
  'getWebhook',
  'updateWebhook',
  'duplicateWebhook',
  'rotateSecret',
  'getWebhookHealth',
  'listExecutions',
  'listDeliveries',
  'getDelivery',
  'getQueueStats',
  'redeliver',
  'sendTestEvent',
  'previewPayload',
  'listMergeFields',
] as const satisfies ReadonlyArray<keyof AdminDispatcher>;
