import { status } from '@grpc/grpc-js';
import type { AttemptLink } from './endpoint-lb.js';
import { MAX_STALL_MS } from './stall-detector.js';

// Per-endpoint liveness: the stall detector's rule (stall-detector.ts) applied to each endpoint
// of a channel that tracks its endpoints, so that the established connection to ONE endpoint
// that went silent (no FIN, no RST: a dropped NAT or conntrack entry, a frozen VM) is left while
// the other endpoints serve. The channel as a whole never looks silent then (the other endpoints
// answer), so the channel's detector cannot see it.
//
// Each unary attempt reports here (call/attempt.ts): `begin` when it is sent, `heard` when its
// response headers arrive, `ended` with its status. The picker writes the endpoint into the
// attempt's link (endpoint-lb.ts) after the attempt is sent, so the endpoint of an attempt is read
// when it is needed: when it is heard or ends, and at each check. An endpoint is silent when
// unary attempts picked for it have heard nothing (or ended by their deadline unheard) for its
// `stallMs`, counted from the later of their start and the last thing heard from the endpoint;
// its connection is then dropped (`drop(address)`: the channel's sockets to it are destroyed, see
// releasing-credentials.ts), grpc-js fails the calls on it UNAVAILABLE (the pool retries them
// elsewhere when the method may be retried) and reconnects. Attempts still waiting for a pick are
// on no connection and count nowhere.
//
// The same caution as the channel's detector: an endpoint's `stallMs` doubles (up to 60 s) when
// an answer arrives for an attempt that was waiting on a connection dropped for silence (a false
// alarm: the server was slow), and when the new connection goes silent too before anything is
// heard on it (a new connection did not help: the server is slow rather than gone).

/** Statuses grpc-js makes up on the client side: they prove nothing about the peer. */
function isLocal(code: number): boolean {
  return code === status.DEADLINE_EXCEEDED || code === status.CANCELLED || code === status.UNAVAILABLE;
}

/** One unary attempt that has heard nothing yet. */
export interface Pending {
  readonly link: AttemptLink;
  /** When it was sent, in ms of the watch's clock. */
  readonly since: number;
  /** Its endpoint's connection was dropped for silence while it waited. */
  dropped: boolean;
}

/** What the watch knows of one endpoint. */
interface EndpointState {
  /** When something was last heard from it (or its connection was dropped: the clock restarts). */
  lastHeardAt: number;
  /** The earliest silence behind a unary attempt that ended by its deadline unheard; cleared when heard. */
  timedOutSince: number | undefined;
  /** The silence that counts as a stall for this endpoint, in ms. */
  stallMs: number;
  /** Its connection was dropped for silence, and nothing has been heard since. */
  droppedUnheard: boolean;
  drops: number;
}

/** A dropped endpoint connection, as reported to the owner. */
export interface EndpointDrop {
  address: string;
  /** How long nothing had been heard while attempts waited, in ms. */
  silentMs: number;
  /** The endpoint's stall timeout from now on, in ms. */
  stallTimeoutMs: number;
  /** Sockets destroyed. */
  sockets: number;
}

/** Watches the endpoints of one pooled channel. */
export class EndpointLiveness {
  readonly #maxStallMs: number;
  readonly #pending = new Set<Pending>();
  readonly #endpoints = new Map<string, EndpointState>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #drops = 0;
  #falseAlarms = 0;
  #stopped = false;

  /**
   * @param baseMs the configured stall timeout, in ms.
   * @param drop destroys the channel's connection to `address`; returns how many sockets it closed.
   * @param onDrop told of each connection dropped.
   * @param heardFrom told whenever something is heard from an endpoint (the endpoint books' `heard`).
   * @param now the clock (injectable for tests), in ms.
   */
  constructor(
    readonly baseMs: number,
    readonly drop: (address: string) => number,
    readonly onDrop: (drop: EndpointDrop) => void,
    readonly heardFrom: (address: string, atMs: number) => void = () => {},
    readonly now: () => number = () => performance.now(),
  ) {
    this.#maxStallMs = Math.max(baseMs, MAX_STALL_MS);
  }

  /** Connections dropped for silence. */
  get drops(): number {
    return this.#drops;
  }

  /** Drops disproved: an answer arrived for an attempt that waited on a dropped connection. */
  get falseAlarms(): number {
    return this.#falseAlarms;
  }

  /** The stall timeout of `address` now, in ms. */
  stallMsOf(address: string): number {
    return this.#endpoints.get(address)?.stallMs ?? this.baseMs;
  }

  /** A unary attempt was sent; its link gets its endpoint from the picker. */
  begin(link: AttemptLink): Pending {
    const pending: Pending = { link, since: this.now(), dropped: false };
    this.#pending.add(pending);
    this.#arm(pending.since + this.baseMs);
    return pending;
  }

  /** The attempt's response headers arrived (or, `pending` undefined, a stream's, from `address`). */
  heard(pending: Pending | undefined, address: string | undefined = pending?.link.address): void {
    if (pending !== undefined) {
      this.#pending.delete(pending);
      if (pending.dropped) {
        pending.dropped = false;
        this.#falseAlarms++;
        if (address !== undefined) this.#double(this.#state(address));
      }
    }
    if (address === undefined) return;
    const now = this.now();
    const state = this.#state(address);
    state.lastHeardAt = now;
    state.timedOutSince = undefined;
    state.droppedUnheard = false;
    this.heardFrom(address, now);
  }

  /**
   * The unary attempt ended: with a response (`code` undefined), a status its server sent, or one
   * grpc-js made up (deadline, cancel, connection lost), which proves nothing about the peer.
   */
  ended(pending: Pending, code: number | undefined): void {
    if (!this.#pending.has(pending) && !pending.dropped) return;
    if (code === undefined || !isLocal(code)) {
      this.heard(pending);
      return;
    }
    this.#pending.delete(pending);
    pending.dropped = false;
    const address = pending.link.address;
    // Ended by its deadline without a word: the silence it waited through still counts.
    if (code !== status.DEADLINE_EXCEEDED || address === undefined) return;
    const state = this.#state(address);
    const since = Math.max(pending.since, state.lastHeardAt);
    if (since < (state.timedOutSince ?? Number.POSITIVE_INFINITY)) state.timedOutSince = since;
    this.#arm(since + state.stallMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #state(address: string): EndpointState {
    let state = this.#endpoints.get(address);
    if (state === undefined) {
      state = { lastHeardAt: Number.NEGATIVE_INFINITY, timedOutSince: undefined, stallMs: this.baseMs, droppedUnheard: false, drops: 0 };
      this.#endpoints.set(address, state);
    }
    return state;
  }

  /** Schedules a check at `atMs` unless one comes sooner (one timer at most). */
  #arm(atMs: number): void {
    if (this.#stopped || atMs >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = atMs;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.#check();
      },
      Math.max(0, atMs - this.now()),
    );
    // Calls in flight keep the process alive; the watch must not.
    this.#timer.unref();
  }

  /** Finds the endpoints silent for their stall timeout and drops their connections. */
  #check(): void {
    if (this.#stopped) return;
    const now = this.now();
    // Since when each endpoint has been silent behind an attempt: the attempts waiting on it...
    const silentSince = new Map<string, number>();
    let unpicked = Number.POSITIVE_INFINITY;
    for (const pending of this.#pending) {
      const address = pending.link.address;
      if (address === undefined) {
        unpicked = Math.min(unpicked, pending.since);
        continue;
      }
      const since = Math.max(pending.since, this.#state(address).lastHeardAt);
      if (since < (silentSince.get(address) ?? Number.POSITIVE_INFINITY)) silentSince.set(address, since);
    }
    // ... and those that ended by their deadline unheard.
    for (const [address, state] of this.#endpoints) {
      const since = state.timedOutSince;
      if (since !== undefined && since < (silentSince.get(address) ?? Number.POSITIVE_INFINITY)) silentSince.set(address, since);
    }
    let next = Number.POSITIVE_INFINITY;
    for (const [address, since] of silentSince) {
      const state = this.#state(address);
      if (now - since >= state.stallMs) this.#drop(address, state, now - since, now);
      else next = Math.min(next, since + state.stallMs);
    }
    // An attempt not yet picked: look again when it would be due if it were.
    if (unpicked !== Number.POSITIVE_INFINITY) next = Math.min(next, Math.max(unpicked + this.baseMs, now + this.baseMs / 4));
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }

  #drop(address: string, state: EndpointState, silentMs: number, now: number): void {
    const sockets = this.drop(address);
    // Every attempt waiting on it is on the connection dropped (or on none): their silence is spent.
    for (const pending of this.#pending) {
      if (pending.link.address !== address) continue;
      this.#pending.delete(pending);
      pending.dropped = sockets > 0;
    }
    state.timedOutSince = undefined;
    state.lastHeardAt = now;
    // Nothing to drop (the connection had already gone, or the sockets are not known): no stall.
    if (sockets === 0) return;
    // A connection made after a drop went silent before a word: a new one did not help.
    if (state.droppedUnheard) this.#double(state);
    state.droppedUnheard = true;
    state.drops++;
    this.#drops++;
    this.onDrop({ address, silentMs, stallTimeoutMs: state.stallMs, sockets });
  }

  #double(state: EndpointState): void {
    state.stallMs = Math.min(state.stallMs * 2, this.#maxStallMs);
  }
}
