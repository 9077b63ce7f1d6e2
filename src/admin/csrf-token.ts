/**
 * CSRF tokens of the admin page: HMAC-SHA256 of the organization id under a key of the handler.
 * Every form of an organization's pages carries its token; every POST must bring it back. A page
 * of another site cannot read the token (same-origin policy), so it cannot forge a POST that
 * carries it. The token is the second line of defence: the first is the Origin check of
 * `same-origin.ts`.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The form field (and `x-csrf-token` header) that carries the token. */
export const CSRF_FIELD = 'csrf_token';

/** Issues and checks the tokens of one handler. */
export class CsrfTokens {
  private readonly key: Buffer;

  /**
   * @param secret - the HMAC key (at least 32 characters). Omitted, a random key of this handler:
   *   tokens then hold only in this process (give every instance the same secret when several
   *   serve the same users behind a load balancer).
   */
  constructor(secret?: string) {
    this.key = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8');
  }

  /** The token of the organization's forms (base64url, 43 characters). */
  tokenFor(organizationId: string): string {
    return createHmac('sha256', this.key).update(`webhook-dispatcher admin csrf\0${organizationId}`).digest('base64url');
  }

  /** Whether `token` is the organization's token (compared in constant time). */
  verify(organizationId: string, token: unknown): boolean {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return false;
    const expected = Buffer.from(this.tokenFor(organizationId), 'utf8');
    const given = Buffer.from(token, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
