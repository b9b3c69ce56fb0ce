import type { ChannelStats } from '../channel/channel-stats.js';

// The pool's public figures, shared by the engine and its façade.

/** Lifecycle state of a pool. */
export type PoolState = 'open' | 'closing' | 'closed';

/** A snapshot of a pool, fresh on every `stats()` call. */
export interface PoolStats {
  /** `'open'`, `'closing'` (close() began) or `'closed'`. */
  state: PoolState;
  /** Open channels owned by the pool (one per target, credentials and channel options). */
  channels: number;
  /** Channels the pool has created since it was constructed. */
  channelsCreated: number;
  /** Channels the pool has closed. */
  channelsClosed: number;
  /** Calls in flight on all channels. */
  inFlight: number;
  /** One entry per open channel. */
  perChannel: ChannelStats[];
}

/** What `close()` resolves with. */
export interface CloseResult {
  /** Calls that were in flight when close() began and settled on their own within the grace period. */
  drained: number;
  /**
   * Calls that close() ended: those still running when the grace period ended (they reject with
   * CANCELLED), and those it woke from a retry backoff (they reject with their last error, as
   * no new attempt may start).
   */
  cancelled: number;
  /** How long close() took, in milliseconds. */
  durationMs: number;
}
