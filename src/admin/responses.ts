/**
 * How the admin page answers: HTML pages, redirects after a successful POST (303, so a reload
 * does not post again), JSON for the page's script, and {@link AdminHttpError} for refusals. Every
 * answer carries the security headers.
 *
 * @module
 */
import type { SafeHtml } from './html.js';
import { securityHeaders } from './security-headers.js';

/** A refusal with its status and a message safe to show (it is escaped when rendered). */
export class AdminHttpError extends Error {
  override readonly name = 'AdminHttpError';
  constructor(
    readonly status: number,
    message: string,
    /** Extra headers of the answer (`allow` of a 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** An HTML page. */
export function htmlResponse(status: number, page: SafeHtml, headers: Record<string, string> = {}): Response {
  return new Response(page.markup, {
    status,
    headers: { ...securityHeaders('page'), 'content-type': 'text/html; charset=utf-8', ...headers },
  });
}

/** After a POST: see the page at `location` (a path on this origin). */
export function redirectResponse(location: string): Response {
  return new Response(null, { status: 303, headers: { ...securityHeaders('page'), location } });
}

/** A JSON answer of the page's script. */
export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...securityHeaders('json'), 'content-type': 'application/json; charset=utf-8' },
  });
}
