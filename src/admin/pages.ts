/**
 * The pages (GET): the organization's webhook list, a webhook's page with its five tabs, and one
 * execution in full. Each reads through the dispatcher's library API, scoped to the organization.
 *
 * @module
 */
import { WebhookValidationError } from '../errors.js';
import type { DeliveryRecord, ExecutionRecord, WebhookHealth, WebhookRecord } from '../storage/types.js';
import { executionNotFound, ownedDelivery, ownedWebhook, type AdminContext } from './context.js';
import { generalDraftOf, payloadDraftOf, type GeneralDraft, type PayloadDraft } from './drafts.js';
import { html, type SafeHtml } from './html.js';
import type { FieldIssue } from './forms.js';
import type { Tab } from './paths.js';
import { AdminHttpError, htmlResponse } from './responses.js';
import { mergeFieldsFor, previewTrigger, renderPreview } from './template-preview.js';
import { authenticationTab } from './views/authentication-tab.js';
import { executionDetail } from './views/execution-detail.js';
import { generalTab } from './views/general-tab.js';
import { historyTab } from './views/history-tab.js';
import { errorBox, layout, noticeBox } from './views/layout.js';
import { payloadTab } from './views/payload-tab.js';
import { queueTab } from './views/queue-tab.js';
import { webhookList } from './views/webhook-list.js';
import { webhookPage } from './views/webhook-page.js';

/** Statuses the Queue tab lists: what still waits to be sent. */
const WAITING = ['pending', 'scheduled', 'held'] as const;

/** The health record, or null when the storage has none. */
async function healthOf(context: AdminContext, webhookId: string): Promise<WebhookHealth | null> {
  try {
    return await context.dispatcher.getWebhookHealth(webhookId);
  } catch {
    return null;
  }
}

/** A listing with a cursor from the query string: a cursor the storage refuses is the client's error. */
async function withCursor<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof WebhookValidationError) throw new AdminHttpError(400, 'That page link is no longer valid.');
    throw error;
  }
}

/** The organization's webhooks, a page at a time. */
export async function webhookListPage(context: AdminContext, organizationId: string, cursor: string | null): Promise<Response> {
  const page = await withCursor(() =>
    context.dispatcher.listWebhooks({ tenantId: organizationId, limit: context.pageSize, cursor }),
  );
  // The tenant filter is the storage's job; checking again costs nothing and survives a buggy adapter.
  const owned = page.items.filter((w) => w.tenantId === organizationId);
  const webhooks = await Promise.all(owned.map(async (webhook) => ({ webhook, health: await healthOf(context, webhook.id) })));
  const body = webhookList({ paths: context.paths, organizationId, webhooks, nextCursor: page.nextCursor, paged: cursor !== null });
  return htmlResponse(200, layout({ title: organizationId, paths: context.paths, organizationId, body }));
}

/** What a webhook's page shows besides the webhook itself. */
export interface WebhookPageState {
  organizationId: string;
  webhook: WebhookRecord;
  tab: Tab;
  /** The notice after an action (already text: see notices.ts). */
  notice?: string | null;
  /** Problems of a refused save, shown above the tabs. */
  issues?: readonly FieldIssue[] | null;
  /** Warnings of a save that went through (unknown merge fields). */
  warnings?: readonly FieldIssue[] | null;
  /** The submitted General form, shown again after a refused save. */
  generalDraft?: GeneralDraft;
  payloadDraft?: PayloadDraft;
  username?: string;
  historyCursor?: string | null;
}

/** A webhook's page on one tab (every tab is rendered; the others are hidden). */
export async function renderWebhookPage(context: AdminContext, state: WebhookPageState, status = 200): Promise<Response> {
  const { dispatcher, paths, csrf } = context;
  const { organizationId, webhook } = state;
  const csrfToken = csrf.tokenFor(organizationId);
  const cursor = state.historyCursor ?? null;
  const trigger = previewTrigger(webhook);
  const payloadDraft = state.payloadDraft ?? payloadDraftOf(webhook);
  const [health, executions, waiting, stats, preview] = await Promise.all([
    healthOf(context, webhook.id),
    withCursor(() => dispatcher.listExecutions({ webhookId: webhook.id, limit: context.pageSize, cursor })),
    Promise.all(WAITING.map((status) => dispatcher.listDeliveries({ webhookId: webhook.id, status, limit: context.pageSize }))),
    dispatcher.getQueueStats(webhook.id),
    renderPreview(context, webhook, payloadDraft, organizationId),
  ]);
  const queued: DeliveryRecord[] = waiting
    .flatMap((page) => page.items)
    .filter((d) => d.webhookId === webhook.id)
    .sort((a, b) => a.runAt - b.runAt || b.priority - a.priority);

  const messages: SafeHtml[] = [];
  if (state.notice) messages.push(noticeBox(state.notice));
  if (state.issues && state.issues.length > 0) messages.push(errorBox('The changes were not saved:', state.issues));
  if (state.warnings && state.warnings.length > 0) messages.push(errorBox('Saved, with warnings:', state.warnings));

  const common = { paths, organizationId, webhook, csrfToken };
  const body = webhookPage({
    ...common,
    health,
    selected: state.tab,
    messages: html`${messages}`,
    panels: {
      general: generalTab({ ...common, draft: state.generalDraft ?? generalDraftOf(webhook), triggerChoices: context.triggerChoices }),
      authentication: authenticationTab({
        ...common,
        username: state.username ?? webhook.basicAuth?.username ?? '',
        defaultGraceHours: context.secretRotationGraceMs / 3_600_000,
      }),
      payload: payloadTab({ ...common, draft: payloadDraft, trigger, mergeFields: mergeFieldsFor(context, trigger), preview }),
      history: historyTab({
        ...common,
        webhookId: webhook.id,
        executions: executions.items.filter((e) => e.webhookId === webhook.id),
        cursor,
        nextCursor: executions.nextCursor,
      }),
      queue: queueTab({ stats, deliveries: queued, truncated: waiting.some((page) => page.nextCursor !== null) }),
    },
  });
  const title = webhook.description || webhook.url;
  return htmlResponse(status, layout({ title, paths, organizationId, body }));
}

/** A webhook's page from its id (404 unless it is the organization's). */
export async function webhookPageFor(context: AdminContext, state: Omit<WebhookPageState, 'webhook'> & { webhookId: string }): Promise<Response> {
  const webhook = await ownedWebhook(context, state.organizationId, state.webhookId);
  return renderWebhookPage(context, { ...state, webhook });
}

/** One execution in full ("View"). */
export async function executionPage(
  context: AdminContext,
  organizationId: string,
  ids: { webhookId: string; deliveryId: string; executionId: string },
): Promise<Response> {
  const webhook = await ownedWebhook(context, organizationId, ids.webhookId);
  const delivery = await ownedDelivery(context, webhook, ids.deliveryId);
  let execution: ExecutionRecord | undefined;
  let cursor: string | null = null;
  // A delivery has a handful of attempts; the loop only guards against a storage that pages them.
  for (let pages = 0; pages < 20 && !execution; pages++) {
    const page = await context.dispatcher.listExecutions({ webhookId: webhook.id, deliveryId: delivery.id, limit: 1000, cursor });
    execution = page.items.find((e) => e.id === ids.executionId && e.deliveryId === delivery.id && e.webhookId === webhook.id);
    cursor = page.nextCursor;
    if (cursor === null) break;
  }
  if (!execution) throw executionNotFound();
  const body = executionDetail({ paths: context.paths, organizationId, webhook, delivery, execution, csrfToken: context.csrf.tokenFor(organizationId) });
  return htmlResponse(200, layout({ title: `Execution ${execution.id}`, paths: context.paths, organizationId, body }));
}
