/**
 * `LISTEN` on a pooled connection that survives the server: when the connection drops (a restart,
 * a failover, a killed backend), the subscription reports it and listens again on a new
 * connection, retrying with backoff until it succeeds or is ended, then wakes its listener once for
 * whatever was committed while nobody listened.
 *
 * Every connection it holds has an `error` listener for as long as it holds it, and keeps a no-op
 * one after: an `error` event without a listener would crash the host process.
 *
 * @module
 */
import pRetry, { AbortError } from 'p-retry';
import { StorageError } from '../../errors.js';
import { asError, type PostgresNotification, type PostgresPool, type PostgresPoolClient } from './driver.js';

/** How long a lost LISTEN connection waits before each new attempt (doubling up to the maximum). */
const RETRY = { minTimeout: 50, maxTimeout: 500, factor: 2 } as const;

const ignore = (): void => undefined;

export interface ListenOptions {
  pool: PostgresPool;
  channel: string;
  listener: () => void;
  /** Told about lost connections and failed attempts to listen again; the subscription keeps trying. */
  onError: (error: StorageError) => void;
}

/** One subscription: holds one connection at a time while it is active. */
export class Listening {
  private client: PostgresPoolClient | null = null;
  private active = true;
  private readonly stop = new AbortController();
  private reconnecting: Promise<void> | null = null;

  constructor(private readonly options: ListenOptions) {}

  /** Connects and LISTENs; rejects (holding nothing) when that fails. */
  async start(): Promise<void> {
    this.client = await this.connect();
  }

  /** UNLISTENs and gives the connection back (destroys it when it cannot be cleaned). Idempotent. */
  async end(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.stop.abort(new AbortError('unsubscribed'));
    const client = this.client;
    this.client = null;
    if (client) {
      try {
        await client.query(`UNLISTEN "${this.options.channel}"`);
        this.drop(client);
      } catch (error) {
        // Never return a listening connection to the pool.
        this.drop(client, asError(error));
      }
    }
    await this.reconnecting;
  }

  private async connect(): Promise<PostgresPoolClient> {
    const client = await this.options.pool.connect();
    client.on('error', this.onClientError);
    client.on('end', this.onClientEnd);
    client.on('notification', this.onNotification);
    try {
      await client.query(`LISTEN "${this.options.channel}"`);
    } catch (error) {
      this.drop(client, asError(error));
      throw error;
    }
    return client;
  }

  /** Detaches from a connection and gives it back (or, with an error, has the pool destroy it). */
  private drop(client: PostgresPoolClient, error?: Error): void {
    client.removeListener('notification', this.onNotification);
    client.removeListener('error', this.onClientError);
    client.removeListener('end', this.onClientEnd);
    // A dropped connection may still report its end: never leave it without an error listener.
    client.on('error', ignore);
    client.release(error);
  }

  private readonly onNotification = (message: PostgresNotification): void => {
    if (!this.active || message.channel !== this.options.channel) return;
    this.fire();
  };

  private fire(): void {
    try {
      this.options.listener();
    } catch (error) {
      this.options.onError(new StorageError('subscribe listener threw', { cause: error }));
    }
  }

  private readonly onClientError = (error: Error): void => this.lost(error);

  private readonly onClientEnd = (): void => this.lost(new Error('the LISTEN connection ended'));

  private lost(error: Error): void {
    const client = this.client;
    if (client === null) return;
    this.client = null;
    this.drop(client, error);
    if (!this.active) return;
    this.options.onError(new StorageError(`LISTEN connection lost (${error.message}); listening again`, { cause: error }));
    this.reconnect();
  }

  private reconnect(): void {
    if (this.reconnecting) return;
    const attempt = async (): Promise<PostgresPoolClient> => {
      if (!this.active) throw new AbortError('unsubscribed');
      return this.connect();
    };
    this.reconnecting = pRetry(attempt, {
      ...RETRY,
      retries: Infinity,
      signal: this.stop.signal,
      unref: true,
      onFailedAttempt: ({ error, attemptNumber }) => {
        // Every attempt while the server is down would flood the host's logs: 1st, 2nd, 4th, 8th, …
        if ((attemptNumber & (attemptNumber - 1)) === 0) {
          this.options.onError(new StorageError(`LISTEN again failed (attempt ${attemptNumber}): ${error.message}`, { cause: error }));
        }
      },
    }).then(
      (client) => {
        this.reconnecting = null;
        if (!this.active) {
          // Ended while LISTEN was in flight: destroy rather than pool a listening connection.
          this.drop(client, new Error('unsubscribed'));
          return;
        }
        this.client = client;
        // Notifications sent while nobody listened are gone: wake the subscriber once.
        this.fire();
      },
      () => {
        // Ended while retrying.
        this.reconnecting = null;
      },
    );
  }
}
