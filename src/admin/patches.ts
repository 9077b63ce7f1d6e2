/**
 * From a submitted form to the change `updateWebhook` gets. Fields that did not change are left
 * out (an omitted field keeps its value). Credential fields left empty keep the saved value: the
 * change carries the value as `getWebhook` returned it (a mask, which `updateWebhook` restores to
 * the stored value), never anything the page showed.
 *
 * @module
 */
import { isCredentialHeader } from '../credentials/mask.js';
import type { UpdateWebhookInput } from '../input/webhook.js';
import type { Trigger, WebhookRecord } from '../storage/types.js';
import type { GeneralDraft } from './drafts.js';
import { FormError, type FieldIssue } from './forms.js';

/** `entity.event` as a trigger (the entity is what comes before the first dot), or null. */
export function triggerOfKey(key: string): Trigger | null {
  const dot = key.indexOf('.');
  if (dot <= 0 || dot === key.length - 1) return null;
  const entity = key.slice(0, dot).trim();
  const event = key.slice(dot + 1).trim();
  return entity && event ? { entity, event } : null;
}

function sameHeaders(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** The General form as a change of `current`. @throws {FormError} naming each bad field. */
export function generalPatch(draft: GeneralDraft, current: WebhookRecord): UpdateWebhookInput {
  const issues: FieldIssue[] = [];

  const triggers: Trigger[] = [];
  const seen = new Set<string>();
  const extra = draft.extraTriggers.split(/[,\n]/).map((k) => k.trim()).filter((k) => k !== '');
  for (const key of [...draft.triggers, ...extra]) {
    const trigger = triggerOfKey(key);
    if (!trigger) {
      issues.push({ path: 'triggers', message: `"${key}" is not entity.event (for example order.Create)` });
      continue;
    }
    const canonical = `${trigger.entity}.${trigger.event}`;
    if (!seen.has(canonical)) triggers.push(trigger);
    seen.add(canonical);
  }
  if (triggers.length === 0 && issues.length === 0) issues.push({ path: 'triggers', message: 'choose at least one trigger' });

  const storedByName = new Map(Object.entries(current.headers).map(([name, value]) => [name.toLowerCase(), value]));
  const headers: Record<string, string> = {};
  const names = new Set<string>();
  for (const { name, value } of draft.headers) {
    if (name === '') continue;
    if (names.has(name.toLowerCase())) {
      issues.push({ path: `headers.${name}`, message: 'is given twice' });
      continue;
    }
    names.add(name.toLowerCase());
    if (value === '' && isCredentialHeader(name)) {
      const stored = storedByName.get(name.toLowerCase());
      if (stored === undefined) issues.push({ path: `headers.${name}`, message: 'enter a value' });
      else headers[name] = stored;
      continue;
    }
    headers[name] = value;
  }

  if (issues.length > 0) throw new FormError(issues);
  const keyPath = draft.uniqueKeyPath;
  return {
    url: draft.url,
    description: draft.description.trim() === '' ? null : draft.description,
    method: draft.method as 'POST' | 'PUT' | 'PATCH',
    triggers,
    ...(sameHeaders(headers, current.headers) ? {} : { headers }),
    priority: Number(draft.priority),
    uniqueQueueItems: draft.uniqueQueueItems ? (keyPath === '' ? true : { keyPath }) : false,
  };
}

/**
 * The basic authentication form as a change, or null when nothing changes. An empty password keeps
 * the saved one. @throws {FormError} when there is no saved password to keep.
 */
export function basicAuthPatch(form: { username: string; password: string }, current: WebhookRecord): UpdateWebhookInput | null {
  if (form.password !== '') return { basicAuth: { username: form.username, password: form.password } };
  if (current.basicAuth === null) throw new FormError([{ path: 'password', message: 'enter a password' }]);
  if (current.basicAuth.username === form.username) return null;
  return { basicAuth: { username: form.username, password: current.basicAuth.password } };
}
