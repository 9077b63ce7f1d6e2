/**
 * SQLite storage adapter, on [better-sqlite3](https://github.com/WiseLibs/better-sqlite3) (an
 * optional peer dependency: install it to use this subpath).
 *
 * ```ts
 * import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
 * const storage = new SqliteStorage({ path: 'webhooks.db' });
 * await storage.migrate();
 * ```
 *
 * The public entry of the adapter, whose parts live in `./sqlite/`.
 *
 * @module
 */
export { SqliteStorage, SQLITE_SCHEMA_VERSION, type SqliteStorageOptions } from './sqlite/storage.js';
export type { SqliteDatabase, SqliteStatement } from './sqlite/storage.js';
