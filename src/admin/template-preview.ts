/**
 * The live preview of the Payload tab: the body a delivery of the webhook's first trigger would
 * carry with the template being edited, rendered by the dispatcher's `previewPayload` with sample
 * data. Only the body and its content type are shown: the preview is signed with a stand-in secret
 * and without the webhook's headers or credentials, so it cannot reveal any of them.
 *
 * @module
 */
import { TemplateRenderError, TemplateSyntaxError, WebhookValidationError } from '../errors.js';
import type { MergeFieldInfo } from '../mergefields/fields.js';
import type { Trigger, WebhookRecord } from '../storage/types.js';
import type { AdminContext } from './context.js';
import type { PayloadDraft } from './drafts.js';
import { sampleFromMergeFields } from './sample-data.js';
import type { RenderedPreview } from './views/payload-tab.js';

/** 32 zero bytes: signs previews, whose signature nobody sees. Never a webhook's secret. */
const STAND_IN_SECRET = `whsec_${Buffer.alloc(32).toString('base64')}`;

/** The trigger previews and merge fields are for: the first, with wildcards as the dispatcher reads them. */
export function previewTrigger(webhook: WebhookRecord): Trigger {
  const first = webhook.triggers[0] ?? { entity: 'order', event: 'Create' };
  return { entity: first.entity === '*' ? 'order' : first.entity, event: first.event === '*' ? 'Create' : first.event };
}

/**
 * The merge fields of the trigger as the editor lists them: values and arrays (for `{{#each}}`),
 * not the objects that hold them, nor the `data.…` copies of the entity's own fields.
 */
export function mergeFieldsFor(context: AdminContext, trigger: Trigger): MergeFieldInfo[] {
  const all = context.dispatcher.listMergeFields({ entity: trigger.entity, event: trigger.event });
  return all.filter((field) => field.type !== 'object' && !field.path.startsWith('data.') && field.path !== 'data');
}

/** Renders `draft` for `webhook` (an empty template: the default payload). Problems come back as text. */
export async function renderPreview(context: AdminContext, webhook: WebhookRecord, draft: PayloadDraft, organizationId: string): Promise<RenderedPreview> {
  const trigger = previewTrigger(webhook);
  try {
    const data = context.sampleData
      ? await context.sampleData(trigger, organizationId)
      : sampleFromMergeFields(context.dispatcher.listMergeFields({ entity: trigger.entity, event: trigger.event }));
    const preview = await context.dispatcher.previewPayload(
      {
        ...webhook,
        secret: STAND_IN_SECRET,
        previousSecrets: [],
        headers: {},
        basicAuth: null,
        tls: null,
        payload: draft.template.trim() === '' ? null : { mimeType: draft.mimeType as 'application/json', template: draft.template },
      },
      { entity: trigger.entity, event: trigger.event, data },
    );
    return { ok: true, body: preview.body, contentType: preview.contentType };
  } catch (error) {
    if (error instanceof WebhookValidationError) {
      return { ok: false, error: error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ') };
    }
    if (error instanceof TemplateSyntaxError || error instanceof TemplateRenderError) return { ok: false, error: error.message };
    throw error;
  }
}
