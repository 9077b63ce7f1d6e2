/**
 * The admin page's static files (stylesheet, script, icon), served by the handler itself under
 * `{basePath}/assets/`: nothing is loaded from another host, and the host needs no static file
 * setup. Each name carries a hash of its content, so it can be cached for good.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { CLIENT_SCRIPT } from './assets/client-script.js';
import { STYLESHEET } from './assets/stylesheet.js';
import { securityHeaders } from './security-headers.js';

const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#1f5fbf"/></svg>';

interface Asset {
  body: string;
  contentType: string;
}

const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The asset files by name (`admin-<hash>.css`, …). */
const ASSETS = new Map<string, Asset>([
  [`admin-${hashOf(STYLESHEET)}.css`, { body: STYLESHEET, contentType: 'text/css; charset=utf-8' }],
  [`admin-${hashOf(CLIENT_SCRIPT)}.js`, { body: CLIENT_SCRIPT, contentType: 'text/javascript; charset=utf-8' }],
  [`icon-${hashOf(ICON)}.svg`, { body: ICON, contentType: 'image/svg+xml' }],
]);

const nameOf = (suffix: string): string => [...ASSETS.keys()].find((name) => name.endsWith(suffix))!;

/** The file names the layout links to. */
export const ASSET_NAMES = { stylesheet: nameOf('.css'), script: nameOf('.js'), icon: nameOf('.svg') } as const;

/** The answer for an asset name, or null when there is no such asset. */
export function assetResponse(name: string, method: string): Response | null {
  const asset = ASSETS.get(name);
  if (!asset) return null;
  return new Response(method === 'HEAD' ? null : asset.body, {
    status: 200,
    headers: {
      ...securityHeaders('asset'),
      'content-type': asset.contentType,
      'cache-control': 'public, max-age=31536000, immutable',
    },
  });
}
