/**
 * The forms the admin page posts, read and validated at the boundary: the body must be
 * `application/x-www-form-urlencoded` (what a form sends) within the size limit, and each form's
 * fields are checked by a zod schema before anything else looks at them. What the fields mean for
 * the webhook (URL rules, header rules, template syntax) the dispatcher checks when saving.
 *
 * @module
 */
import { z } from 'zod';
import { readLimited, type ReadLimitedErrors } from '../http/read-limited.js';
import { CSRF_FIELD } from './csrf-token.js';
import type { GeneralDraft, PayloadDraft } from './drafts.js';
import { AdminHttpError } from './responses.js';

/** A problem with a submitted field, as the forms list it. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** A form that failed its schema: the problems, to show beside the form. */
export class FormError extends Error {
  override readonly name = 'FormError';
  constructor(readonly issues: readonly FieldIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}

/** Reads a form body: url-encoded, UTF-8, at most `maxBytes`. */
export async function readForm(request: Request, maxBytes: number): Promise<URLSearchParams> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new AdminHttpError(415, 'Send the form as application/x-www-form-urlencoded.');
  }
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw new AdminHttpError(413, `The form is larger than ${maxBytes} bytes.`);
  const bytes = request.body ? await readLimited(request.body, maxBytes, FORM_READ_ERRORS) : new Uint8Array(0);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AdminHttpError(400, 'The form is not valid UTF-8.');
  }
  return new URLSearchParams(text);
}


/** The CSRF token a form carries (checked by the handler before the form's own schema). */
export function csrfTokenOf(form: URLSearchParams): string | null {
  return form.get(CSRF_FIELD);
}

const text = (max: number) => z.string().max(max, `must be at most ${max} characters`);
/** A single field: absent reads as ''. */
const one = (form: URLSearchParams, name: string): string => form.get(name) ?? '';

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new FormError(result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })));
}

const generalSchema = z.object({
  url: text(2048),
  description: text(1000),
  method: z.enum(['POST', 'PUT', 'PATCH'], { error: 'must be POST, PUT or PATCH' }),
  triggers: z.array(text(201)).max(500, 'at most 500 triggers'),
  extraTriggers: text(20_000),
  headers: z.array(z.object({ name: text(200), value: text(8192) })).max(100, 'at most 100 headers'),
  priority: z.string().trim().regex(/^[+-]?\d{1,4}$/, 'must be a whole number from -1000 to 1000'),
  uniqueQueueItems: z.boolean(),
  uniqueKeyPath: text(200),
});

/** The General form's fields as submitted, unchecked (to show the form again). */
export function generalFormFields(form: URLSearchParams): GeneralDraft {
  const names = form.getAll('header_name');
  const values = form.getAll('header_value');
  return {
    url: one(form, 'url').trim(),
    description: one(form, 'description'),
    method: one(form, 'method') || 'POST',
    triggers: form.getAll('trigger'),
    extraTriggers: one(form, 'extra_triggers'),
    headers: names.map((name, i) => ({ name: name.trim(), value: values[i] ?? '' })),
    priority: one(form, 'priority') || '0',
    uniqueQueueItems: form.get('unique_queue_items') === 'on',
    uniqueKeyPath: one(form, 'unique_key_path').trim(),
  };
}

/** The General form, checked. */
export function parseGeneralForm(form: URLSearchParams): GeneralDraft {
  if (form.getAll('header_name').length !== form.getAll('header_value').length) {
    throw new FormError([{ path: 'headers', message: 'every header needs a name and a value field' }]);
  }
  return parse(generalSchema, generalFormFields(form));
}

const basicAuthSchema = z.object({ username: text(200).min(1, 'enter a username'), password: text(500) });

/** The basic authentication form: the password '' means "keep the saved one". */
export function parseBasicAuthForm(form: URLSearchParams): { username: string; password: string } {
  return parse(basicAuthSchema, { username: one(form, 'username').trim(), password: one(form, 'password') });
}

const rotateSchema = z.object({
  newSecret: text(1000).min(1, 'enter the new secret, or press Generate'),
  graceHours: z.coerce
    .number({ error: 'must be a number of hours' })
    .min(0, 'must be 0 or more')
    .max(720, 'must be at most 720 hours (30 days)'),
});

/** The secret rotation form. */
export function parseRotateForm(form: URLSearchParams, defaultGraceHours: number): { newSecret: string; gracePeriodMs: number } {
  const grace = one(form, 'grace_hours').trim();
  const parsed = parse(rotateSchema, { newSecret: one(form, 'new_secret').trim(), graceHours: grace === '' ? defaultGraceHours : grace });
  return { newSecret: parsed.newSecret, gracePeriodMs: Math.round(parsed.graceHours * 3_600_000) };
}

const payloadSchema = z.object({
  mimeType: z.enum(['application/json', 'application/xml', 'text/plain'], { error: 'must be application/json, application/xml or text/plain' }),
  template: text(100_000),
});

/** The payload form's fields as submitted, unchecked (to show the form again). */
export function payloadFormFields(form: URLSearchParams): PayloadDraft {
  return { mimeType: one(form, 'mime_type') || 'application/json', template: one(form, 'template') };
}

/** The payload form (and the preview's request), checked: an empty template means the default payload. */
export function parsePayloadForm(form: URLSearchParams): PayloadDraft {
  return parse(payloadSchema, payloadFormFields(form));
}

const FORM_READ_ERRORS: ReadLimitedErrors = {
  tooLarge: (limit) => new AdminHttpError(413, `The form is larger than ${limit} bytes.`),
  aborted: () => new AdminHttpError(400, 'The form ended before it was complete.'),
};
