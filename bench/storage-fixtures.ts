/**
 * What the storage-only benches (sqlite-cycle.ts, sqlite-statements.ts) store, shaped like issue
 * 17's D-sqlite row: ~1 KiB JSON bodies, and attempt results whose executions carry a
 * dispatcher-like set of request headers.
 *
 * @module
 */
import type { ClaimedDelivery, CompleteAttempt } from '../src/storage/types.js';
import { makeExecution } from '../src/testing/fixtures.js';

/** A ~1 KiB JSON body for delivery `id`. */
export const deliveryBody = (id: string): string =>
  JSON.stringify({ id, type: 'order.created', data: { note: 'x'.repeat(900), total: 1234, currency: 'EUR' } });

const requestHeaders = {
  'content-type': 'application/json',
  'user-agent': 'webhook-dispatcher',
  'webhook-id': 'msg_0123456789abcdef',
  'webhook-timestamp': '1893456000',
  'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
  'x-custom': 'yes',
};

/** A successful attempt's result for a claimed delivery. */
export function succeeded(claimed: ClaimedDelivery): CompleteAttempt {
  return {
    deliveryId: claimed.id,
    leaseToken: claimed.leaseToken,
    outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
    execution: makeExecution(claimed, { requestHeaders, responseHeaders: { 'content-length': '0', date: 'Mon, 07 Dec 2026 15:00:00 GMT' }, responseBody: '' }),
  };
}
