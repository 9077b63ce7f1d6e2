/**
 * MemoryStorage's ordering keys: per webhook and key, the last sequence number given and the
 * lowest one not yet finished (whose delivery is the only one allowed out), and the deliveries
 * held behind it.
 *
 * @module
 */
import type { StoredDelivery } from './records.js';

/** One webhook's key. */
export interface KeyState {
  lastSequence: number;
  /** The lowest sequence whose delivery has not reached a final status. */
  nextSequence: number;
  /** Held deliveries by sequence (never one that is final). */
  readonly held: Map<number, StoredDelivery>;
}

/** Keys by webhook, then key. */
export class OrderingKeys {
  private readonly byWebhook = new Map<string, Map<string, KeyState>>();

  /** The key's state, created at sequence 0. */
  state(webhookId: string, key: string): KeyState {
    let keys = this.byWebhook.get(webhookId);
    if (!keys) this.byWebhook.set(webhookId, (keys = new Map()));
    let state = keys.get(key);
    if (!state) keys.set(key, (state = { lastSequence: 0, nextSequence: 1, held: new Map() }));
    return state;
  }

  /** The key's state if it exists. */
  find(webhookId: string, key: string): KeyState | undefined {
    return this.byWebhook.get(webhookId)?.get(key);
  }

  /**
   * The delivery with `sequence` reached a final status. When it was the key's turn, the turn
   * passes to the next unfinished sequence: that held delivery is returned, to be queued.
   */
  finished(state: KeyState, sequence: number): StoredDelivery | undefined {
    if (sequence !== state.nextSequence) return undefined;
    while (++state.nextSequence <= state.lastSequence) {
      const next = state.held.get(state.nextSequence);
      if (next) {
        state.held.delete(state.nextSequence);
        return next;
      }
      // No held delivery with that number: it was already final (cancelled while held, or
      // enqueued final), so the turn moves past it.
    }
    return undefined;
  }

  /** Forgets a webhook's keys (the webhook was deleted). */
  drop(webhookId: string): void {
    this.byWebhook.delete(webhookId);
  }
}
