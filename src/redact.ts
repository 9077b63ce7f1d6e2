/**
 * Redaction of credentials in recorded request headers. Execution records are shown to merchants
 * and operators, so they must never reveal a secret. Which names carry one is decided once, in
 * credentials/mask.ts, for every read path.
 */
import { isCredentialHeader } from './credentials/mask.js';

/** Placeholder written instead of a credential. */
export const REDACTED = '[REDACTED]';

type Verdict = 'keep' | 'authorization' | 'redact';

/** Verdicts per header name: attempts repeat the same few names, the regex need not run for each. */
const verdicts = new Map<string, Verdict>();
/** Lower-cased extra names per list (the dispatcher passes the same array on every attempt). */
const extraSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function verdictOf(name: string): Verdict {
  let verdict = verdicts.get(name);
  if (verdict === undefined) {
    const lower = name.toLowerCase();
    verdict =
      lower === 'authorization' || lower === 'proxy-authorization'
        ? 'authorization'
        : // The built-in signature proves one message and grants nothing: kept, so a merchant can debug verification.
          lower === 'webhook-signature' || lower.endsWith('-webhook-signature') || !isCredentialHeader(lower)
          ? 'keep'
          : 'redact';
    if (verdicts.size >= 1_000) verdicts.clear();
    verdicts.set(name, verdict);
  }
  return verdict;
}

function extraSetOf(extraNames: readonly string[]): ReadonlySet<string> {
  let set = extraSets.get(extraNames);
  if (!set) {
    set = new Set(extraNames.map((n) => n.toLowerCase()));
    extraSets.set(extraNames, set);
  }
  return set;
}

/**
 * Returns the headers with credential values replaced: a copy when anything was redacted, the
 * object itself when nothing was (the common case on the delivery path; callers must not mutate
 * the result). `Authorization` keeps its scheme (`Bearer [REDACTED]`) so the log still shows which
 * kind of authentication was sent.
 */
export function redactHeaders(headers: Record<string, string>, extraNames: readonly string[] = []): Record<string, string> {
  const extra = extraNames.length > 0 ? extraSetOf(extraNames) : null;
  let result: Record<string, string> | null = null;
  for (const name in headers) {
    let verdict = verdictOf(name);
    if (verdict === 'keep' && extra !== null && extra.has(name.toLowerCase())) verdict = 'redact';
    if (verdict === 'keep') continue;
    result ??= { ...headers };
    if (verdict === 'authorization') {
      const scheme = /^\s*([A-Za-z][A-Za-z0-9-]*)\s+\S/.exec(headers[name]!)?.[1];
      result[name] = scheme ? `${scheme} ${REDACTED}` : REDACTED;
    } else {
      result[name] = REDACTED;
    }
  }
  return result ?? headers;
}
