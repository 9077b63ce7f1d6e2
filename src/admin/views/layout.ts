/**
 * The frame of every admin page: the document head (stylesheet and script from the handler's own
 * assets, nothing inline), a header with the way back to the webhook list, and the notices and
 * errors a page shows above its content.
 *
 * @module
 */
import { ASSET_NAMES } from '../assets.js';
import { html, type HtmlValue, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';

/** What a page puts in the frame. */
export interface PageFrame {
  title: string;
  paths: AdminPaths;
  /** The organization whose pages these are; null on pages outside one (errors before routing). */
  organizationId: string | null;
  body: SafeHtml;
}

/** A complete HTML document. */
export function layout({ title, paths, organizationId, body }: PageFrame): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · Webhooks</title>
<link rel="icon" href="${paths.asset(ASSET_NAMES.icon)}" type="image/svg+xml">
<link rel="stylesheet" href="${paths.asset(ASSET_NAMES.stylesheet)}">
<script src="${paths.asset(ASSET_NAMES.script)}" defer></script>
</head>
<body>
<header class="top">
<span class="brand">Webhooks</span>
${organizationId !== null ? html`<nav aria-label="Breadcrumb"><a href="${paths.webhooks(organizationId)}">All webhooks of ${organizationId}</a></nav>` : ''}
</header>
<main>
${body}
</main>
</body>
</html>
`;
}

/** A confirmation shown after an action (a live region, so screen readers announce it). */
export function noticeBox(message: HtmlValue): SafeHtml {
  return html`<div class="notice" role="status">${message}</div>`;
}

/** Problems with what was submitted, field by field. */
export function errorBox(title: string, issues: ReadonlyArray<{ path: string; message: string }>): SafeHtml {
  return html`<div class="errors" role="alert"><strong>${title}</strong><ul>${issues.map(
    (issue) => html`<li>${issue.path ? html`<code>${issue.path}</code>: ` : ''}${issue.message}</li>`,
  )}</ul></div>`;
}
