/**
 * The SQLite connection as the adapter uses it: the slice of better-sqlite3 it calls, a
 * prepared-statement cache, transactions that nest into a host's, and opening a file.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { StorageError, WebhookValidationError } from '../../errors.js';

// Only the parts of better-sqlite3 this adapter calls are typed here, so the published
// declarations do not depend on @types/better-sqlite3; a real `Database` satisfies them.

/** The part of a better-sqlite3 `Statement` this adapter uses. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 `Database` this adapter uses. A `new Database(…)` satisfies it. */
export interface SqliteDatabase {
  readonly open: boolean;
  readonly inTransaction: boolean;
  readonly memory: boolean;
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
}

/**
 * One database connection with its prepared-statement cache and transaction helpers. Shared by
 * every adapter (and host transaction) using the same Database object; SQL text includes the
 * table prefix, so the cache key is the SQL alone.
 */
export class Connection {
  private readonly statements = new Map<string, SqliteStatement>();
  private readonly rawStatements = new Map<string, { statement: SqliteStatement; raw: boolean }>();
  /** Table prefixes whose schema version this connection has checked (see schema.ts). */
  readonly checkedPrefixes = new Set<string>();

  constructor(readonly db: SqliteDatabase) {}

  stmt(sql: string): SqliteStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * All rows as arrays of column values, in better-sqlite3's raw mode when the driver has it:
   * building an object with named properties per row costs more than the SQL of a claim.
   */
  allRaw(sql: string, params: unknown): unknown[][] {
    let entry = this.rawStatements.get(sql);
    if (!entry) {
      const statement = this.db.prepare(sql) as SqliteStatement & { raw?: (toggle: boolean) => unknown };
      const raw = typeof statement.raw === 'function';
      if (raw) statement.raw!(true);
      entry = { statement, raw };
      this.rawStatements.set(sql, entry);
    }
    const rows = entry.statement.all(params);
    return entry.raw ? (rows as unknown[][]) : rows.map((row) => Object.values(row as object));
  }

  /**
   * Runs `fn` atomically: in its own `BEGIN IMMEDIATE` transaction (taking the write lock up
   * front, so concurrent writers queue on busy_timeout instead of failing on lock upgrade), or,
   * when the connection is already inside a transaction (a host transaction), in a savepoint of
   * it so the host decides whether it commits.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) {
      this.stmt('SAVEPOINT webhook_dispatcher').run();
      try {
        const result = fn();
        this.stmt('RELEASE webhook_dispatcher').run();
        return result;
      } catch (error) {
        // Some errors (SQLITE_FULL, IOERR, …) roll the whole transaction back by themselves.
        if (this.db.inTransaction) {
          this.stmt('ROLLBACK TO webhook_dispatcher').run();
          this.stmt('RELEASE webhook_dispatcher').run();
        }
        throw error;
      }
    }
    this.stmt('BEGIN IMMEDIATE').run();
    try {
      const result = fn();
      this.stmt('COMMIT').run();
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.stmt('ROLLBACK').run();
      throw error;
    }
  }

  /**
   * Runs several reads on one snapshot (a deferred transaction takes no write lock), so a
   * figure is not assembled from states before and after another process's write.
   */
  read<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.stmt('BEGIN').run();
    try {
      return fn();
    } finally {
      if (this.db.inTransaction) this.stmt('COMMIT').run();
    }
  }
}

const connections = new WeakMap<SqliteDatabase, Connection>();

export function connectionOf(db: SqliteDatabase): Connection {
  let connection = connections.get(db);
  if (!connection) {
    connection = new Connection(db);
    connections.set(db, connection);
  }
  return connection;
}

/** Forgets the statements of a database about to be closed. */
export function forgetConnection(db: SqliteDatabase): void {
  connections.delete(db);
}

export function isDatabase(value: unknown): value is SqliteDatabase {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.prepare === 'function' &&
    typeof v.exec === 'function' &&
    typeof v.pragma === 'function' &&
    typeof v.inTransaction === 'boolean' &&
    typeof v.open === 'boolean'
  );
}

/** A {@link WebhookValidationError} naming one input of the adapter. */
export function invalidOption(path: string, message: string): WebhookValidationError {
  return new WebhookValidationError([{ path, message }], { context: 'SqliteStorage' });
}

/** Validates `WriteOptions.transaction` and returns its connection. */
export function hostConnection(transaction: unknown): Connection {
  if (!isDatabase(transaction)) {
    throw invalidOption('transaction', 'must be a better-sqlite3 Database inside a transaction (the host connection after BEGIN)');
  }
  if (!transaction.open) throw invalidOption('transaction', 'is a closed Database');
  if (!transaction.inTransaction) {
    throw invalidOption(
      'transaction',
      'is not inside a transaction; call db.exec("BEGIN IMMEDIATE") first, or omit the option to write in a transaction of its own',
    );
  }
  return connectionOf(transaction);
}

const MISSING_DRIVER = 'SqliteStorage({ path }) needs the better-sqlite3 package: npm install better-sqlite3';

/** Where better-sqlite3 is installed; throws the install hint, on the caller's thread, when it is not. */
export function driverPath(): string {
  try {
    return createRequire(import.meta.url).resolve('better-sqlite3');
  } catch (error) {
    throw new StorageError(MISSING_DRIVER, { cause: error });
  }
}

export function openDatabase(path: string): SqliteDatabase {
  let Database: new (filename: string) => SqliteDatabase;
  try {
    // Loaded on demand so that importing this module never requires the optional peer.
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
  } catch (error) {
    throw new StorageError(MISSING_DRIVER, { cause: error });
  }
  try {
    return new Database(path);
  } catch (error) {
    throw new StorageError(`cannot open SQLite database ${path}: ${(error as Error).message}`, { cause: error });
  }
}
