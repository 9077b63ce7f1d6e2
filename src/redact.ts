/**
 * Redaction of credentials in recorded request headers. Execution records are shown to merchants
 * and operators, so they must never reveal a secret.
 */

const SENSITIVE_NAME = /(authorization|cookie|token|secret|password|passwd|api[-_]?key|session)/i;

/** Placeholder written instead of a credential. */
export const REDACTED = '[REDACTED]';

/**
 * Returns a copy with credential values replaced. `Authorization` keeps its scheme
 * (`Bearer [REDACTED]`) so the log still shows which kind of authentication was sent.
 */
export function redactHeaders(headers: Record<string, string>, extraNames: readonly string[] = []): Record<string, string> {
  const extra = new Set(extraNames.map((n) => n.toLowerCase()));
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || lower === 'proxy-authorization') {
      const scheme = /^\s*([A-Za-z][A-Za-z0-9-]*)\s+\S/.exec(value)?.[1];
      result[name] = scheme ? `${scheme} ${REDACTED}` : REDACTED;
    } else if (extra.has(lower) || SENSITIVE_NAME.test(lower)) {
      result[name] = REDACTED;
    } else {
      result[name] = value;
    }
  }
  return result;
}
