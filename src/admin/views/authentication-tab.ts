/**
 * The Authentication tab: HTTP basic auth sent with every delivery, and the signing secret's
 * rotation. Credentials are write-only here: the password field is always empty (empty means
 * "keep"), the secret is never shown. A new secret is typed, or made by "Generate" in the browser,
 * so the person rotating it has it before it is saved and the server never has to show it.
 *
 * @module
 */
import type { WebhookRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { actionButton, csrfField } from './form-parts.js';
import { formatTime } from './format.js';

/** What the Authentication tab shows. */
export interface AuthenticationTabView {
  paths: AdminPaths;
  organizationId: string;
  webhook: WebhookRecord;
  csrfToken: string;
  /** The username to show (the submitted one after a refused save). */
  username: string;
  /** The dispatcher's default grace period, in hours, for the rotation form. */
  defaultGraceHours: number;
}

export function authenticationTab(view: AuthenticationTabView): SafeHtml {
  const { paths, organizationId, webhook, csrfToken } = view;
  const action = (name: Parameters<AdminPaths['action']>[2]) => paths.action(organizationId, webhook.id, name);
  const passwordSet = webhook.basicAuth !== null;
  const previous = webhook.previousSecrets;
  return html`<h2>Basic authentication</h2>
<p class="hint">Sent as an <code>Authorization: Basic</code> header with every delivery.${
    passwordSet ? ' A password is saved; it is never shown. Leave the password empty to keep it.' : ' Not set.'
  }</p>
<form class="fields" method="post" action="${action('basic-auth')}">
${csrfField(csrfToken)}
<label for="basic_username">Username</label>
<input type="text" id="basic_username" name="username" value="${view.username}" autocomplete="off" required>
<label for="basic_password">Password</label>
<input type="password" id="basic_password" name="password" value="" autocomplete="new-password"${
    passwordSet ? html` placeholder="•••••••• (unchanged)"` : ''
  }>
<div class="full"><button type="submit" class="primary">Save basic authentication</button></div>
</form>
${passwordSet ? html`<div class="actions">${actionButton({ action: action('remove-basic-auth'), csrfToken, label: 'Remove basic authentication' })}</div>` : ''}
<h2>Signing secret</h2>
<p class="hint">Every delivery is signed (Standard Webhooks <code>webhook-signature</code>) with the webhook's secret. The secret is never shown here.</p>
${
  previous.length > 0
    ? html`<p>Previous ${previous.length === 1 ? 'secret still signs' : 'secrets still sign'} alongside the current one until ${previous.map(
        (p, i) => html`${i > 0 ? ', ' : ''}${formatTime(p.expiresAt)}`,
      )}.</p>`
    : ''
}
<form class="fields" method="post" action="${action('rotate-secret')}">
${csrfField(csrfToken)}
<label for="new_secret">New secret</label>
<div>
<input type="password" id="new_secret" name="new_secret" value="" autocomplete="new-password" required aria-describedby="new-secret-hint">
<div class="actions"><button type="button" data-generate-secret="new_secret">Generate</button></div>
<p class="hint" id="new-secret-hint"><code>whsec_</code> followed by base64 (24 to 64 bytes), or any other text of at least 8 bytes. "Generate" makes one in your browser: copy it to your receiver before rotating.</p>
</div>
<label for="grace_hours">Old secret keeps signing for (hours)</label>
<input type="number" id="grace_hours" name="grace_hours" value="${view.defaultGraceHours}" min="0" max="720" step="any">
<div class="full"><button type="submit">Rotate secret</button></div>
</form>`;
}
