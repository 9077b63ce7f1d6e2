/**
 * The actions (POST): save the General form, enable, disable, duplicate, basic authentication,
 * secret rotation, save the template, the live preview, "Send test" and "Redeliver". The handler
 * has already checked the Origin, `authorize` and the CSRF token; each action reads its form
 * through its schema, goes through the tenant rule, calls the library API and redirects (303) to
 * the page with a notice, or shows the form again with the problems (422).
 *
 * @module
 */
import { WebhookError, WebhookValidationError } from '../errors.js';
import type { SaveWarning } from '../mergefields/unknown-fields.js';
import type { WebhookRecord } from '../storage/types.js';
import { ownedDelivery, ownedWebhook, type AdminContext } from './context.js';
import {
  FormError,
  generalFormFields,
  parseBasicAuthForm,
  parseGeneralForm,
  parsePayloadForm,
  parseRotateForm,
  payloadFormFields,
  type FieldIssue,
} from './forms.js';
import { NOTICES, type NoticeCode } from './notices.js';
import { renderWebhookPage, type WebhookPageState } from './pages.js';
import { basicAuthPatch, generalPatch } from './patches.js';
import type { Tab, WebhookAction } from './paths.js';
import { jsonResponse, redirectResponse } from './responses.js';
import { previewTrigger, renderPreview } from './template-preview.js';

/** What an action gets. */
export interface ActionRequest {
  organizationId: string;
  webhookId: string;
  form: URLSearchParams;
}

/** The problems of a refused input, whichever layer refused it; null for any other error. */
function issuesOf(error: unknown): FieldIssue[] | null {
  if (error instanceof FormError) return [...error.issues];
  if (error instanceof WebhookValidationError) return error.issues.map((i) => ({ path: i.path, message: i.message }));
  return null;
}

const warningsOf = (warnings: readonly SaveWarning[] | undefined): FieldIssue[] =>
  (warnings ?? []).map((w) => ({ path: w.field, message: w.message }));

/** Runs a save; a refused input shows the page again on `tab` with the problems (422). */
async function saving(
  context: AdminContext,
  state: Omit<WebhookPageState, 'tab' | 'issues'> & { tab: Tab },
  save: () => Promise<Response>,
): Promise<Response> {
  try {
    return await save();
  } catch (error) {
    const issues = issuesOf(error);
    if (!issues) throw error;
    return renderWebhookPage(context, { ...state, issues }, 422);
  }
}

export async function runWebhookAction(context: AdminContext, action: WebhookAction, request: ActionRequest): Promise<Response> {
  const { dispatcher, paths } = context;
  const { organizationId, form } = request;
  const webhook = await ownedWebhook(context, organizationId, request.webhookId);
  const back = (tab: Tab, notice: NoticeCode) => redirectResponse(paths.webhook(organizationId, webhook.id, tab, { notice }));

  switch (action) {
    case 'general': {
      return saving(context, { organizationId, webhook, tab: 'general', generalDraft: generalFormFields(form) }, async () => {
        const draft = parseGeneralForm(form);
        const saved = await dispatcher.updateWebhook(webhook.id, generalPatch(draft, webhook));
        const warnings = warningsOf(saved.warnings);
        if (warnings.length > 0) return renderWebhookPage(context, { organizationId, webhook: saved, tab: 'general', notice: NOTICES.saved, warnings });
        return back('general', 'saved');
      });
    }
    case 'enable':
    case 'disable':
      await dispatcher.updateWebhook(webhook.id, { enabled: action === 'enable' });
      return back('general', action === 'enable' ? 'enabled' : 'disabled');
    case 'duplicate': {
      const copy = await dispatcher.duplicateWebhook(webhook.id, { enabled: webhook.enabled });
      return redirectResponse(paths.webhook(organizationId, copy.id, 'general', { notice: 'duplicated' }));
    }
    case 'basic-auth': {
      const username = form.get('username') ?? '';
      return saving(context, { organizationId, webhook, tab: 'authentication', username }, async () => {
        const patch = basicAuthPatch(parseBasicAuthForm(form), webhook);
        if (patch) await dispatcher.updateWebhook(webhook.id, patch);
        return back('authentication', 'basic-auth-saved');
      });
    }
    case 'remove-basic-auth':
      await dispatcher.updateWebhook(webhook.id, { basicAuth: null });
      return back('authentication', 'basic-auth-removed');
    case 'rotate-secret':
      return saving(context, { organizationId, webhook, tab: 'authentication' }, async () => {
        const { newSecret, gracePeriodMs } = parseRotateForm(form, context.secretRotationGraceMs / 3_600_000);
        // The answer carries the new secret: it is dropped here, never rendered.
        await dispatcher.rotateSecret(webhook.id, { secret: newSecret, gracePeriodMs });
        return back('authentication', 'secret-rotated');
      });
    case 'payload': {
      return saving(context, { organizationId, webhook, tab: 'payload', payloadDraft: payloadFormFields(form) }, async () => {
        const parsed = parsePayloadForm(form);
        const removing = parsed.template.trim() === '';
        const saved = await dispatcher.updateWebhook(webhook.id, {
          payload: removing ? null : { mimeType: parsed.mimeType as 'application/json', template: parsed.template },
        });
        const warnings = warningsOf(saved.warnings);
        if (warnings.length > 0) return renderWebhookPage(context, { organizationId, webhook: saved, tab: 'payload', notice: NOTICES['payload-saved'], warnings });
        return back('payload', removing ? 'default-payload' : 'payload-saved');
      });
    }
    case 'preview': {
      try {
        return jsonResponse(200, await renderPreview(context, webhook, parsePayloadForm(form), organizationId));
      } catch (error) {
        const issues = issuesOf(error);
        if (!issues) throw error;
        return jsonResponse(200, { ok: false, error: issues.map((i) => `${i.path}: ${i.message}`).join('; ') });
      }
    }
    case 'test':
      return sendTest(context, organizationId, webhook);
  }
}

/** "Send test": a marked delivery now; History shows its attempt. */
async function sendTest(context: AdminContext, organizationId: string, webhook: WebhookRecord): Promise<Response> {
  const trigger = previewTrigger(webhook);
  const input = context.sampleData
    ? { entity: trigger.entity, event: trigger.event, data: await context.sampleData(trigger, organizationId) }
    : undefined;
  let notice: NoticeCode;
  try {
    const { execution } = await context.dispatcher.sendTestEvent(webhook.id, input);
    notice = execution === null ? 'test-queued' : execution.success ? 'test-succeeded' : 'test-failed';
  } catch (error) {
    // A stopped or closed dispatcher, or a webhook whose trigger cannot be sampled: say so on the page.
    if (!(error instanceof WebhookError)) throw error;
    const issues = issuesOf(error) ?? [{ path: '', message: `The test event could not be sent: ${error.message}` }];
    return renderWebhookPage(context, { organizationId, webhook, tab: 'general', issues }, 409);
  }
  return redirectResponse(context.paths.webhook(organizationId, webhook.id, 'history', { notice }));
}

/** "Redeliver": a finished delivery of the webhook is sent again now. */
export async function redeliverAction(context: AdminContext, request: ActionRequest & { deliveryId: string }): Promise<Response> {
  const { organizationId } = request;
  const webhook = await ownedWebhook(context, organizationId, request.webhookId);
  const delivery = await ownedDelivery(context, webhook, request.deliveryId);
  try {
    await context.dispatcher.redeliver(delivery.id);
  } catch (error) {
    if (!(error instanceof WebhookValidationError)) throw error;
    const issues = [{ path: '', message: `This delivery is ${delivery.status}: only finished deliveries can be redelivered.` }];
    return renderWebhookPage(context, { organizationId, webhook, tab: 'history', issues }, 409);
  }
  return redirectResponse(context.paths.webhook(organizationId, webhook.id, 'history', { notice: 'redelivered' }));
}
