/**
 * The admin page through the durable storages: the same pages, in a real browser, on SQLite and
 * on PostgreSQL (a schema of this file's own, dropped at the end). A smoke test per storage: list,
 * webhook, History, View, Redeliver, Send test, template preview and save, another organization
 * refused, no console errors. The full scenario set runs on memory storage (admin-memory).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import type { WebhookStorage } from 'webhook-dispatcher';
import { openBrowser, startAdminSite, walkThroughWebhook, type TestBrowser } from './helpers/admin-site.js';
import { pgConfig, requirePostgres } from './helpers/postgres.js';
import { removeDb, tempDbPath } from './helpers/sqlite-files.js';

const ORG = 'org-a';
const postgresAvailable = await requirePostgres('admin-storage');

let browser: TestBrowser;
const started = Date.now();

beforeAll(async () => {
  browser = await openBrowser();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  console.log(`admin-storage browser smoke tests: ${Date.now() - started} ms`);
});

/** Runs the walk-through on a dispatcher over `storage`. */
async function smoke(storage: WebhookStorage): Promise<void> {
  const site = await startAdminSite({ dispatcher: { storage } });
  try {
    const webhook = await site.dispatcher.createWebhook({
      url: site.receiver.url('/orders'),
      triggers: [{ entity: 'order', event: 'Create' }],
      tenantId: ORG,
      description: 'Smoke <i>test</i>',
    });
    await site.dispatcher.createWebhook({ url: site.receiver.url('/b'), triggers: [{ entity: 'order', event: 'Create' }], tenantId: 'org-b' });
    await site.dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 1, OrderCode: 'A-1' } });
    await site.dispatcher.drain();
    await site.receiver.waitForRequests(1);

    await browser.signIn(site.origin, [ORG]);
    const { page, problems } = await browser.newPage();
    try {
      await walkThroughWebhook(page, site, ORG, { id: webhook.id, label: 'Smoke <i>test</i>' }, (condition, what) => expect(condition, what).toBe(true));
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
    const refused = await fetch(site.url('org-b/webhooks'), { headers: { cookie: `orgs=${ORG}` } });
    expect(refused.status).toBe(403);
  } finally {
    await site.close();
  }
}

describe('admin page on durable storage, in a browser', () => {
  it('works on SQLite', async () => {
    const path = tempDbPath();
    const storage = new SqliteStorage({ path });
    await storage.migrate();
    try {
      await smoke(storage);
    } finally {
      await storage.close();
      removeDb(path);
    }
  });

  it.runIf(postgresAvailable)('works on PostgreSQL', async () => {
    const pool = new pg.Pool({ ...pgConfig, max: 8 });
    const schema = `wd_admin_${randomBytes(4).toString('hex')}`;
    const storage = new PostgresStorage({ pool, schema });
    await storage.migrate();
    try {
      await smoke(storage);
    } finally {
      await storage.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    }
  });
});
