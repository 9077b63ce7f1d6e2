/**
 * Credentials are write-only: every read of a webhook (the library's `getWebhook`/`listWebhooks`,
 * REST, the admin page) shows them masked, and a save that sends a mask back keeps the stored
 * value. What counts as a credential: the signing secret(s), the basic-auth password, the TLS
 * client key, and custom header values whose name says they carry one.
 *
 * A value shorter than {@link SHOW_TAIL_FROM} characters shows none of its characters; a longer
 * one its last 4, so an operator can tell two keys apart (as Stripe and Svix show them).
 *
 * @module
 */

/** What a masked credential starts with. Not a valid header value, so it is never a real one. */
export const MASK = '••••••••';

/** Values at least this long show their last 4 characters after the mask. */
export const SHOW_TAIL_FROM = 24;

/**
 * Header names whose values are credentials: `Authorization`, `Proxy-Authorization`, `Cookie`,
 * and any name containing token, secret, key, password, passwd, signature, session or auth.
 */
const CREDENTIAL_HEADER = /^(?:authorization|proxy-authorization|cookie|set-cookie)$|token|secret|key|passw(?:or)?d|signature|session|auth/i;

/** Whether a header with this name carries a credential (case-insensitive). */
export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADER.test(name);
}

/** The masked form of a credential: the mask, plus the last 4 characters of a long value. */
export function maskCredential(value: string): string {
  return value.length < SHOW_TAIL_FROM ? MASK : MASK + value.slice(-4);
}

/**
 * The masked form of a header value. `Authorization`-style values keep their scheme
 * (`Bearer ••••••••wxyz`): it tells which kind of credential is set and is not itself secret.
 */
export function maskHeaderValue(name: string, value: string): string {
  const lower = name.toLowerCase();
  if (lower === 'authorization' || lower === 'proxy-authorization') {
    const match = /^(\s*[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s+(\S.*)$/s.exec(value);
    if (match) return `${match[1]} ${maskCredential(match[2]!)}`;
  }
  return maskCredential(value);
}

/** Whether a value is (or contains) a mask: sent back by a client that read it. */
export function looksMasked(value: unknown): value is string {
  return typeof value === 'string' && value.includes(MASK);
}

/**
 * Headers with credential values masked (a copy). `exempt`: lower-cased names kept in full
 * although they match, such as the built-in signature headers of a signed request (a signature
 * proves one message; it grants nothing).
 */
export function maskHeaders(headers: Readonly<Record<string, string>>, exempt: ReadonlySet<string> = NONE): Record<string, string> {
  const masked: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    masked[name] = isCredentialHeader(name) && !exempt.has(name.toLowerCase()) ? maskHeaderValue(name, value) : value;
  }
  return masked;
}

const NONE: ReadonlySet<string> = new Set();
