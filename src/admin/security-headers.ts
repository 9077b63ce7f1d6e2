/**
 * The headers every answer of the admin page carries: a Content-Security-Policy that allows
 * scripts, styles and images from the page's own origin only (no inline script, no inline style,
 * no event handler attributes, no framing), and the usual hardening around it.
 *
 * @module
 */

/**
 * The policy of every page. `script-src 'self'` refuses inline scripts and `on…=` attributes, so
 * even markup that escaped escaping could not run; `form-action 'self'` keeps forms on this
 * origin; `frame-ancestors 'none'` prevents clickjacking; `base-uri 'none'` a `<base>` hijack.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** What is being answered: an HTML page, a JSON answer of the page's script, or a static file. */
export type AnswerKind = 'page' | 'json' | 'asset';

/** The security headers of an answer. */
export function securityHeaders(kind: AnswerKind): Record<string, string> {
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // same-origin: POSTs of the page itself still carry their Origin (checked), others learn nothing.
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    ...(kind === 'asset' ? {} : { 'cache-control': 'no-store' }),
  };
}
