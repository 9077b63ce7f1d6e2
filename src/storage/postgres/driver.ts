/**
 * The slice of `pg` the Postgres adapter uses (typed structurally, so the library never imports
 * `pg`), and the small helpers every part of the adapter shares: placeholder rows, batches, WHERE
 * building. Rows become records in ../sql/records.ts, as SQLite's do.
 *
 * @module
 */
import { StorageError, WebhookValidationError } from '../../errors.js';

/** The slice of a `pg` query result the adapter reads. */
export interface PostgresQueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** Anything that runs a parameterized query: a `pg.Pool`, a `pg.PoolClient`, a `pg.Client`. */
export interface PostgresQueryable {
  query(text: string, values?: unknown[]): Promise<PostgresQueryResult>;
}

/** pg's config form of `query`, used for named prepared statements (see `preparedStatements`). */
export interface PreparedQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<PostgresQueryResult>;
}

/** A `LISTEN` notification as `pg` emits it. */
export interface PostgresNotification {
  channel: string;
  payload?: string | undefined;
  processId: number;
}

/** A connection checked out of a pool (`pg.PoolClient`). */
export interface PostgresPoolClient extends PostgresQueryable {
  /** Returns the connection; passing an error destroys it instead. */
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  removeListener(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'end', listener: () => void): unknown;
}

/** The pool the adapter runs on (`pg.Pool`). The caller owns it: the adapter never ends it. */
export interface PostgresPool extends PostgresQueryable {
  connect(): Promise<PostgresPoolClient>;
}

/** Options of {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /**
   * Your `pg.Pool`. It stays yours: {@link PostgresStorage.close} does not end it. Give it an
   * `error` listener (`pool.on('error', …)`): pg emits errors of idle connections (a server
   * restart) on the pool, and an `error` event nobody listens to ends the process.
   */
  pool: PostgresPool;
  /** Schema holding the tables; created by `migrate()` when missing. Default `public`. */
  schema?: string;
  /** Prefix of every table and index name. Default `webhook_`. */
  tablePrefix?: string;
  /**
   * Told when a `subscribe()` connection is lost and while it fails to listen again (it keeps
   * retrying with backoff; the dispatcher polls meanwhile). Without it these are dropped.
   */
  onError?: (error: StorageError) => void;
  /**
   * Outside a host transaction, notify other dispatchers at most once per this many ms. Every
   * NOTIFY serialises its commit (a global lock); the emitting process wakes its own dispatcher
   * anyway, and a woken dispatcher claims everything due. Enqueues in a host transaction always
   * notify (nobody else would wake on commit). Default 50 ms; 0 notifies on every enqueue.
   */
  notifyIntervalMs?: number;
  /**
   * Send the hot statements (claim, completion, enqueue outside a host transaction) as named
   * prepared statements, parsed and planned once per connection. Enqueue batches are padded to a
   * few row counts so each connection keeps a handful of them (claims and completions call
   * server-side functions, which plan their statements once per connection either way). Needs
   * `pool.query` to take pg's `{ name, text, values }` form, as `pg.Pool` does; set `false` for a
   * pool that only takes `(text, values)`, or behind a pooler that does not keep prepared
   * statements (PgBouncer in transaction mode before 1.21). Default `true`.
   */
  preparedStatements?: boolean;
}

/** Rows per multi-row statement: Postgres takes at most 65,535 parameters (22 per enqueued delivery). */
export const MAX_ROWS_PER_STATEMENT = 1_000;

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Placeholder lists by column types and row count: batch sizes repeat, so each is built once. */
const valueRowsCache = new WeakMap<readonly string[], Map<number, string>>();

/**
 * Row counts a prepared batch statement is padded to: a connection then prepares at most these
 * few texts per kind, whatever the batch sizes.
 */
const PREPARED_ROW_COUNTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, MAX_ROWS_PER_STATEMENT] as const;

export function preparedRowCount(rows: number): number {
  for (const count of PREPARED_ROW_COUNTS) if (count >= rows) return count;
  // Callers split batches at MAX_ROWS_PER_STATEMENT: reaching this is a bug in the adapter.
  throw new StorageError(`${rows} rows exceed ${MAX_ROWS_PER_STATEMENT} per statement`);
}

/** Appends `count` all-NULL rows of `width` parameters: padding rows match no delivery. */
export function padRows(params: unknown[], count: number, width: number): void {
  for (let i = count * width; i > 0; i--) params.push(null);
}

/** `($1::text, $2::int, …), (…)`: `rows` rows of typed placeholders, numbered from `first`. */
export function valueRows(rows: number, types: readonly string[], first = 1): string {
  let byRows = valueRowsCache.get(types);
  if (!byRows) valueRowsCache.set(types, (byRows = new Map()));
  const key = rows * 100_000 + first;
  let text = byRows.get(key);
  if (text === undefined) {
    const out: string[] = [];
    let n = first - 1;
    for (let r = 0; r < rows; r++) out.push(`(${types.map((t) => `$${++n}::${t}`).join(', ')})`);
    text = out.join(', ');
    if (byRows.size < 1_000) byRows.set(key, text);
  }
  return text;
}

/** Builds a WHERE clause and its positional parameters. */
export class Where {
  readonly params: unknown[] = [];
  private readonly parts: string[] = [];

  /** Adds a condition; `?` in `sql` is replaced by the next parameter placeholder. */
  add(sql: string, ...values: unknown[]): this {
    let i = 0;
    this.parts.push(sql.replace(/\?/g, () => this.param(values[i++])));
    return this;
  }

  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  toString(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : '';
  }
}

/** A {@link WebhookValidationError} naming one input of the adapter. */
export function invalid(path: string, message: string): WebhookValidationError {
  return new WebhookValidationError([{ path, message }], { context: 'PostgresStorage' });
}

export function isQueryable(value: unknown): value is PostgresQueryable {
  return typeof value === 'object' && value !== null && typeof (value as PostgresQueryable).query === 'function';
}

export const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
