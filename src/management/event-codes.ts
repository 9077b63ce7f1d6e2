/**
 * Translation between the API's event codes (`order.created`, Pack.cloud style) and the
 * dispatcher's triggers (`{ entity: 'order', event: 'Create' }`).
 *
 * @module
 */
import type { Trigger } from '../storage/types.js';
import { GENERIC_EVENT_CODE, type EventCodeMap } from './schemas.js';

/** Both directions of an {@link EventCodeMap}, plus the generic `<entity>.<event>` form. */
export class EventCodes {
  /** The configured codes, in configuration order. */
  readonly codes: readonly string[];
  // Maps, not the plain object: a code such as `__proto__` or `constructor` must not resolve.
  private readonly byCode = new Map<string, Trigger>();
  private readonly byTrigger = new Map<string, string>();

  private readonly aliases = new Map<string, string>();

  constructor(
    map: EventCodeMap,
    private readonly allowAny: boolean,
    aliases: Readonly<Record<string, string>> = {},
  ) {
    for (const [code, trigger] of Object.entries(map)) {
      this.byCode.set(code, { entity: trigger.entity, event: trigger.event });
      // The first code of a trigger names it in answers when several map to the same pair.
      const key = triggerKey(trigger);
      if (!this.byTrigger.has(key)) this.byTrigger.set(key, code);
    }
    this.codes = [...this.byCode.keys()];
    for (const [alias, code] of Object.entries(aliases)) this.aliases.set(alias, code);
  }

  /** The code `code` stands for: its alias target, or itself. Applied before validation. */
  canonical(code: string): string {
    return this.aliases.get(code) ?? code;
  }

  /**
   * `body` with `event_code` / `event_codes` aliases replaced by their canonical codes (a shallow
   * copy; anything that is not such a string is left for validation to judge).
   */
  canonicalBody(body: unknown): unknown {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || this.aliases.size === 0) return body;
    const record = body as Record<string, unknown>;
    const copy: Record<string, unknown> = { ...record };
    if (typeof record.event_code === 'string') copy.event_code = this.canonical(record.event_code);
    if (Array.isArray(record.event_codes)) {
      copy.event_codes = record.event_codes.map((code: unknown) => (typeof code === 'string' ? this.canonical(code) : code));
    }
    return copy;
  }

  /** The trigger of `code`, or null when the code is not accepted. */
  toTrigger(code: string): Trigger | null {
    const known = this.byCode.get(code);
    if (known) return { ...known };
    if (!this.allowAny || !GENERIC_EVENT_CODE.test(code)) return null;
    const dot = code.indexOf('.');
    return { entity: code.slice(0, dot), event: code.slice(dot + 1) };
  }

  /**
   * The code naming `trigger` in answers: its configured code, else `<entity>.<event>`, so a
   * webhook created through the library API with an unmapped trigger still shows something useful.
   */
  toCode(trigger: Trigger): string {
    return this.byTrigger.get(triggerKey(trigger)) ?? `${trigger.entity}.${trigger.event}`;
  }
}

function triggerKey(trigger: Trigger): string {
  return `${trigger.entity}\u0000${trigger.event}`;
}
