/**
 * What the management API needs of a dispatcher: the slice of `WebhookDispatcher` its routes call.
 *
 * @module
 */
import type { ListDeliveriesInput, ListExecutionsInput, ListMergeFieldsInput, ListWebhooksInput, RetryFailedInput, TestEventInput } from '../input/queries.js';
import type { CreateWebhookInput, RotateSecretInput, UpdateWebhookInput } from '../input/webhook.js';
import type { MergeFieldInfo } from '../mergefields/fields.js';
import type { SaveWarning } from '../mergefields/unknown-fields.js';
import type { PayloadPreview } from '../preview.js';
import type { DeliveryRecord, ExecutionRecord, Page, WebhookRecord } from '../storage/types.js';

/**
 * The slice of `WebhookDispatcher` the API calls. A `WebhookDispatcher` satisfies it; tests and
 * hosts may pass anything else that does (e.g. a wrapper that audits changes). The optional
 * methods serve one route each: without one, that route answers 501 `not_implemented` (after the
 * organization's ownership of the webhook or delivery is checked, so a 501 reveals nothing).
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
  /** A webhook's deliveries (`GET …/webhooks/{webhookId}/deliveries`). Optional: 501 without it. */
  listDeliveries?(query?: ListDeliveriesInput): Promise<Page<DeliveryRecord>>;
  /** Cancels a waiting delivery; false when it was not waiting (`POST …/deliveries/{deliveryId}/cancel`). Optional: 501 without it. */
  cancelDelivery?(deliveryId: string): Promise<boolean>;
  /** Requeues ended deliveries, answering their ids (`POST …/webhooks/{webhookId}/retry-failed`). Optional: 501 without it. */
  retryFailed?(input?: RetryFailedInput): Promise<string[]>;
  /** The request a delivery of an event would be (`POST …/webhooks/{webhookId}/preview`). Optional: 501 without it. */
  previewPayload?(webhookId: string, input: { entity: string; event: string; data: unknown }): Promise<PayloadPreview>;
  /** The merge fields of an event, or of one sample record (`…/merge-fields`). Optional: 501 without it. */
  listMergeFields?(input: ListMergeFieldsInput): MergeFieldInfo[] | Promise<MergeFieldInfo[]>;
}

/** The names of the optional methods, each serving one route. */
export type OptionalDispatcherMethod = {
  [K in keyof ManagementDispatcher]-?: undefined extends ManagementDispatcher[K] ? K : never;
}[keyof ManagementDispatcher];
