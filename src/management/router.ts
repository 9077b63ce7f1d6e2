/**
 * The route table: what a route is, what it gets, and how a path finds its routes (literal
 * segments and `{param}` segments, decoded, ids checked).
 *
 * @module
 */
import { HttpError } from './http-errors.js';
import type { RouteDoc } from './openapi.js';

/** Everything a route's implementation gets. */
export interface RouteContext {
  request: Request;
  url: URL;
  /** The path's `{param}` values, decoded. */
  params: Record<string, string>;
  /** The organization of the path (already authorized); '' on routes without one. */
  organizationId: string;
}

/** One route: its documentation and its implementation. */
export interface Route extends RouteDoc {
  run: (context: RouteContext) => Promise<Response>;
}

/** A route whose path matched, with the path's parameters. */
export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/** Path templates of the organization's resources. */
export const PATHS = {
  organization: '/v1/organizations/{organizationId}',
  webhooks: '/v1/organizations/{organizationId}/webhooks',
  webhook: '/v1/organizations/{organizationId}/webhooks/{webhookId}',
  delivery: '/v1/organizations/{organizationId}/deliveries/{deliveryId}',
} as const;

/** Every route whose path template matches `path` (any method); null when the path cannot be decoded. */
export function routeMatcher(routes: readonly Route[]): (path: string) => RouteMatch[] | null {
  const compiled = routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }));
  return (path) => {
    let decoded: string[];
    try {
      decoded = path.split('/').slice(1).map((p) => decodeURIComponent(p));
    } catch {
      return null;
    }
    const found: RouteMatch[] = [];
    for (const { route, segments } of compiled) {
      if (segments.length !== decoded.length) continue;
      const params: Record<string, string> = {};
      const ok = segments.every((segment, i) => {
        const value = decoded[i] ?? '';
        if (segment.startsWith('{')) {
          params[segment.slice(1, -1)] = value;
          return isValidId(value);
        }
        return segment === value;
      });
      if (ok) found.push({ route, params });
    }
    return found;
  };
}

/** 404 for a path no route serves. */
export function routeNotFound(): HttpError {
  return new HttpError(404, 'route_not_found', 'no such route');
}

/**
 * Path ids: non-empty, at most 200 characters, no surrounding whitespace. The dispatcher trims
 * tenant ids, so `" a"` would be stored as `"a"` and then never match its own path again.
 */
function isValidId(value: string): boolean {
  return value.length > 0 && value.length <= 200 && value.trim() === value;
}
