/**
 * What the edit forms show: a webhook's values as form fields (a draft), either read from the
 * webhook or as the user submitted them (shown again, with the problems, when a save is refused).
 * Credential values are never part of a draft that reaches a page: the views render credential
 * fields empty.
 *
 * @module
 */
import type { WebhookRecord } from '../storage/types.js';
import { displayedHeaders, triggerKey } from './views/format.js';

/** The General tab's fields. */
export interface GeneralDraft {
  url: string;
  description: string;
  method: string;
  /** Triggers as `entity.event`. */
  triggers: string[];
  /** More triggers typed by hand: `entity.event`, separated by commas or new lines. */
  extraTriggers: string;
  headers: Array<{ name: string; value: string }>;
  priority: string;
  uniqueQueueItems: boolean;
  uniqueKeyPath: string;
}

/** The Payload tab's fields. */
export interface PayloadDraft {
  mimeType: string;
  template: string;
}

/** The General tab's fields of a saved webhook. */
export function generalDraftOf(webhook: WebhookRecord): GeneralDraft {
  return {
    url: webhook.url,
    description: webhook.description ?? '',
    method: webhook.method,
    triggers: webhook.triggers.map(triggerKey),
    extraTriggers: '',
    headers: Object.entries(displayedHeaders(webhook.headers)).map(([name, value]) => ({ name, value })),
    priority: String(webhook.priority),
    uniqueQueueItems: webhook.uniqueQueueItems !== null,
    uniqueKeyPath: webhook.uniqueQueueItems?.keyPath ?? '',
  };
}

/** The Payload tab's fields of a saved webhook (an empty template: the default payload). */
export function payloadDraftOf(webhook: WebhookRecord): PayloadDraft {
  return { mimeType: webhook.payload?.mimeType ?? 'application/json', template: webhook.payload?.template ?? '' };
}
