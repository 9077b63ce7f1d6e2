/**
 * MemoryStorage's trigger index: entity → event → webhooks with that trigger, with `*` indexed as
 * a key of its own, so an emit's lookup builds no key strings and visits only matching webhooks.
 *
 * @module
 */
import type { EventMatch, WebhookRecord } from '../types.js';

export class TriggerIndex {
  /** Nested maps holding the (frozen) records by id. */
  private readonly byEntity = new Map<string, Map<string, Map<string, WebhookRecord>>>();

  add(w: WebhookRecord): void {
    for (const t of w.triggers) {
      let byEvent = this.byEntity.get(t.entity);
      if (!byEvent) this.byEntity.set(t.entity, (byEvent = new Map()));
      let group = byEvent.get(t.event);
      if (!group) byEvent.set(t.event, (group = new Map()));
      group.set(w.id, w);
    }
  }

  remove(w: WebhookRecord): void {
    for (const t of w.triggers) {
      const byEvent = this.byEntity.get(t.entity);
      const group = byEvent?.get(t.event);
      if (!byEvent || !group) continue;
      group.delete(w.id);
      if (group.size === 0) byEvent.delete(t.event);
      if (byEvent.size === 0) this.byEntity.delete(t.entity);
    }
  }

  /** Enabled webhooks matching the event, of its tenant or untenanted, each once. */
  find(match: EventMatch): WebhookRecord[] {
    // The four trigger patterns in order (exact, entity/*, */event, */*), each group once: an
    // entity or event that is itself '*' would otherwise name the same group twice.
    const byEntity = this.byEntity.get(match.entity);
    const byAnyEntity = match.entity === '*' ? undefined : this.byEntity.get('*');
    const notAnyEvent = match.event !== '*';
    const exact = byEntity?.get(match.event);
    const entityAny = notAnyEvent ? byEntity?.get('*') : undefined;
    const anyEntity = byAnyEntity?.get(match.event);
    const anyAny = notAnyEvent ? byAnyEntity?.get('*') : undefined;
    const result: WebhookRecord[] = [];
    // A webhook with several matching triggers sits in several groups: only then dedupe.
    const groups = (exact ? 1 : 0) + (entityAny ? 1 : 0) + (anyEntity ? 1 : 0) + (anyAny ? 1 : 0);
    const seen = groups > 1 ? new Set<string>() : null;
    if (exact) collect(exact, match.tenantId, seen, result);
    if (entityAny) collect(entityAny, match.tenantId, seen, result);
    if (anyEntity) collect(anyEntity, match.tenantId, seen, result);
    if (anyAny) collect(anyAny, match.tenantId, seen, result);
    return result;
  }
}

function collect(group: Map<string, WebhookRecord>, tenantId: string | null, seen: Set<string> | null, result: WebhookRecord[]): void {
  for (const w of group.values()) {
    if (seen !== null) {
      if (seen.has(w.id)) continue;
      seen.add(w.id);
    }
    if (w.enabled && (w.tenantId === null || w.tenantId === tenantId)) result.push(w);
  }
}
