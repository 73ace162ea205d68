import type { Client, Notification } from 'pg';
import type { ChangeFeed, StoreChange, StoreObserver } from '../../domain/coordination';
import { readChangePayload } from './change-payload';
import { CHANGES_CHANNEL } from './executor';

/**
 * The change feed on PostgreSQL: LISTEN on one dedicated connection per store instance. Every
 * write announces the keys it changed by NOTIFY inside its own transaction (executor.ts), so a
 * change arrives at every instance, this one included, once and only once it has committed.
 *
 * When the connection is lost, notifications sent meanwhile are lost with it: the feed reconnects
 * with a growing delay (100 ms doubling to 5 s) and, once listening again, delivers `all`, so that
 * caches drop whatever they hold. poll() has nothing to do: notifications arrive by themselves.
 */

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 5000;

export class PostgresChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private client: Client | undefined;
  private retryMs = FIRST_RETRY_MS;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** Times the connection was lost and listening resumed. */
  reconnections = 0;

  constructor(
    private readonly connect: () => Client,
    private readonly report: (problem: string, error: unknown) => void,
    /** Told of each notification's lag and of each reconnect (the metrics). */
    private readonly observer?: StoreObserver,
  ) {}

  /** Listens; throws when the first connection cannot be made (the store does not open). */
  start(): Promise<void> {
    return this.listen();
  }

  /** Whether the feed is listening now (false while it reconnects). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  poll(): void {}

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const client = this.connect();
    // Attached before connecting: an error event without a handler would end the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the change feed connection ended')));
    client.on('notification', (message: Notification) => {
      if (message.channel !== CHANGES_CHANNEL) return;
      const { keyId, sentAtMs } = readChangePayload(message.payload);
      // Clocks of two machines may disagree: a notice from "the future" counts as no lag.
      if (sentAtMs !== undefined) this.observer?.changeDelivered(Math.max(0, Date.now() - sentAtMs) / 1000);
      this.deliver(keyId === undefined ? { kind: 'all' } : { kind: 'key', keyId });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
  }

  private lost(client: Client, error: unknown): void {
    if (client !== this.client || this.closed) return;
    this.client = undefined;
    this.report('the change feed lost its connection; reconnecting', error);
    client.end().catch(() => undefined);
    this.reconnectLater();
  }

  private reconnectLater(): void {
    this.retry = setTimeout(() => {
      this.listen().then(
        () => {
          if (this.closed) return;
          this.retryMs = FIRST_RETRY_MS;
          this.reconnections++;
          this.observer?.changeFeedReconnected();
          // Whatever was announced while not listening is lost: everything may have changed.
          this.deliver({ kind: 'all' });
        },
        (error: unknown) => {
          if (this.closed) return;
          this.report('the change feed could not reconnect; retrying', error);
          this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
          this.reconnectLater();
        },
      );
    }, this.retryMs);
    // A store left open must not keep a process alive by retrying alone.
    this.retry.unref();
  }

  private deliver(change: StoreChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.report('a change feed listener threw', error);
      }
    }
  }
}
