/**
 * The Origin check of state-changing requests: a POST is accepted only from the admin page's own
 * origin. Browsers send `Origin` on every POST (and `Sec-Fetch-Site` on every request since
 * 2020-2023), so a form or `fetch` of another site is recognised before anything runs.
 *
 * @module
 */

/** Why a POST was refused, or null when it comes from the page's own origin. */
export function crossSiteReason(request: Request, trustedOrigins: ReadonlySet<string>): string | null {
  // Sec-Fetch-Site is set by the browser and cannot be forged by a page: anything but
  // same-origin (same-site, cross-site, none for a typed URL or bookmark) is refused.
  const site = request.headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') return `Sec-Fetch-Site is ${site}`;
  const origin = request.headers.get('origin');
  if (origin === null) {
    // A browser old enough to send neither header: the CSRF token still has to match; without
    // Sec-Fetch-Site as well, nothing says where the request comes from, so it is refused.
    return site === 'same-origin' ? null : 'the request has no Origin header';
  }
  if (origin === new URL(request.url).origin || trustedOrigins.has(origin)) return null;
  return `Origin ${origin} is not this page's origin`;
}

/**
 * An origin as `Origin` headers spell it (`https://shop.example`, with the port when it is not the
 * default). Throws on anything that is not an http(s) origin.
 */
export function normalizeOrigin(value: string): string {
  const url = new URL(value);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value.replace(/\/$/, '')) {
    throw new Error('must be an origin such as https://admin.example.com (scheme, host and port only)');
  }
  return url.origin;
}
