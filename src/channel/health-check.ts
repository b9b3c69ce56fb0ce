import { connectivityState, experimental, status } from '@grpc/grpc-js';
import { openGrpcWatch, type OpenWatch, type ServingStatus } from './health-service.js';

// Client-side health checking, after gRFC A17. grpc-js 1.14 has none of its own, but its LB API
// has the parts: every subchannel the package's policy creates (endpoint-lb.ts) is wrapped here,
// and the wrapper watches `grpc.health.v1.Health/Watch` on that subchannel's own connection
// (`getChannel()`, as grpc-js's ORCA out-of-band metrics do). A report sets the wrapper's health
// with `setHealthy()`, which grpc-js's pick_first leaves honour: under round_robin an unhealthy
// endpoint leaves the rotation at once, and comes back on SERVING.
//
// As in A17: the stream starts as soon as the connection is READY, and the subchannel shows
// CONNECTING until the first report (calls queued for a new connection never race to a server
// that is about to say NOT_SERVING); SERVING is healthy, anything else is not; a Watch that ends
// UNIMPLEMENTED turns health checking off for that connection (it counts as healthy, and the
// channel reports it once); any other end is retried with exponential backoff (immediately after
// a call that delivered a report), the endpoint counting as unhealthy meanwhile. One stream per
// connected endpoint per channel, cancelled when the connection goes or the channel closes.
//
// The health service's messages and its Watch call are in health-service.ts.
//
// Over 300 lines on purpose: the watch of one connection (its stream, backoff and sharing), the
// subchannel wrapper and the checker are one lifecycle; the wire side is health-service.ts.

/** Reported by `pool.onEndpointHealth` when an endpoint's health, as its health service tells it, changes. */
export interface EndpointHealthChange {
  /** The channel's target, as given to `pool.client()`. */
  target: string;
  /** The endpoint's address, `host:port`. */
  address: string;
  /** The service name watched (`''`: the whole server). */
  serviceName: string;
  /**
   * What the endpoint said: its serving status; `'UNIMPLEMENTED'` when it has no health service
   * (it then counts as serving: reported once per channel, a warning that health checking does
   * nothing there); `'WATCH_FAILED'` when its Watch stream ended otherwise while connected (it is
   * retried with backoff, and the endpoint counts as not serving until it reports again).
   */
  status: ServingStatus | 'UNIMPLEMENTED' | 'WATCH_FAILED';
  /** Whether the endpoint takes new calls now. */
  serving: boolean;
  /** For `'WATCH_FAILED'`: the gRPC status code the stream ended with. */
  code?: number | undefined;
}

/** What a channel hears from its health checks: one report per change, without the target. */
export interface HealthSink {
  report(change: Omit<EndpointHealthChange, 'target'>): void;
}

// ---- backoff ----

/** The Watch retry backoff: gRPC's connection backoff (1 s, x1.6, up to 120 s, 20 % jitter). */
export const WATCH_BACKOFF = { initialMs: 1_000, multiplier: 1.6, maxMs: 120_000, jitter: 0.2 } as const;

// ---- the watch of one subchannel ----

type SubchannelInterface = experimental.SubchannelInterface;
type ConnectivityStateListener = experimental.ConnectivityStateListener;

/**
 * Where the health check of one connection is:
 * - `idle`: not connected, no stream;
 * - `waiting`: connected, the stream is open, no report yet (the subchannel shows CONNECTING);
 * - `watching`: the last report is the endpoint's health;
 * - `retrying`: the stream ended while connected; unhealthy until a new one reports;
 * - `unimplemented`: the server has no health service; healthy for as long as this connection lasts.
 */
type Phase = 'idle' | 'waiting' | 'watching' | 'retrying' | 'unimplemented';

/** The health check of one real subchannel for one channel, shared by the wrappers of it. */
class SubchannelWatch {
  readonly address: string;
  #phase: Phase = 'idle';
  #serving = true;
  #cancel: (() => void) | undefined;
  /** The current call: reports of an older one are ignored. */
  #ticket: object | undefined;
  #heard = false;
  #delayMs: number = WATCH_BACKOFF.initialMs;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  readonly attached = new Set<HealthSubchannel>();
  readonly #onState: ConnectivityStateListener = (_subchannel, _previous, next) => this.#connectivity(next);

  constructor(
    /** The subchannel as the channel handed it to the policy (its listeners and calls are the real one's). */
    readonly subchannel: SubchannelInterface,
    readonly checker: HealthChecker,
  ) {
    this.address = subchannel.getAddress();
  }

  /** Whether the endpoint takes picks, as far as its health check knows. */
  get serving(): boolean {
    return this.#serving;
  }

  /** A READY connection shows CONNECTING until its first report. */
  shown(raw: connectivityState): connectivityState {
    return raw === connectivityState.READY && (this.#phase === 'idle' || this.#phase === 'waiting') ? connectivityState.CONNECTING : raw;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.subchannel.addConnectivityStateListener(this.#onState);
    if (this.subchannel.getConnectivityState() === connectivityState.READY) this.#open();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.subchannel.removeConnectivityStateListener(this.#onState);
    this.#reset();
  }

  #connectivity(next: connectivityState): void {
    if (!this.#running) return;
    if (next === connectivityState.READY) {
      if (this.#phase === 'idle') this.#open();
    } else if (this.#phase !== 'idle') {
      // The connection went: its stream with it (A17 cancels it), and the next connection starts over.
      this.#reset();
      this.#sync();
    }
  }

  #reset(): void {
    this.#closeCall();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#phase = 'idle';
    this.#serving = true;
    this.#delayMs = WATCH_BACKOFF.initialMs;
  }

  #closeCall(): void {
    const cancel = this.#cancel;
    this.#ticket = undefined;
    this.#cancel = undefined;
    cancel?.();
  }

  #open(): void {
    if (this.#phase !== 'retrying') this.#phase = 'waiting';
    this.#heard = false;
    const ticket = {};
    this.#ticket = ticket;
    this.#cancel = this.checker.openWatch(this.subchannel, this.checker.serviceName, {
      report: (report) => {
        if (this.#ticket === ticket) this.#reported(report);
      },
      ended: (code) => {
        if (this.#ticket !== ticket) return;
        this.#ticket = undefined;
        this.#cancel = undefined;
        this.#ended(code);
      },
    });
  }

  #reported(report: ServingStatus): void {
    this.#heard = true;
    this.#delayMs = WATCH_BACKOFF.initialMs;
    this.#phase = 'watching';
    this.#set(report === 'SERVING', report);
  }

  #ended(code: number): void {
    if (this.subchannel.getConnectivityState() !== connectivityState.READY) {
      // The connection is going: its state change resets the watch.
      return;
    }
    if (code === status.UNIMPLEMENTED) {
      this.#phase = 'unimplemented';
      this.#set(true, 'UNIMPLEMENTED');
      return;
    }
    this.#phase = 'retrying';
    const delayMs = this.#heard ? 0 : this.#nextDelay();
    this.#set(false, 'WATCH_FAILED', code);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#running && this.subchannel.getConnectivityState() === connectivityState.READY) this.#open();
    }, delayMs);
    this.#timer.unref?.();
  }

  #nextDelay(): number {
    const base = this.#delayMs;
    this.#delayMs = Math.min(base * WATCH_BACKOFF.multiplier, WATCH_BACKOFF.maxMs);
    const jitter = 1 + WATCH_BACKOFF.jitter * (2 * this.checker.random() - 1);
    return Math.round(base * jitter);
  }

  #set(serving: boolean, reported: EndpointHealthChange['status'], code?: number): void {
    this.#serving = serving;
    this.#sync();
    this.checker.report({ address: this.address, serviceName: this.checker.serviceName, status: reported, serving, code });
  }

  /** Tells every wrapper: its health first, then its state (pick_first reads the health when it sees READY). */
  #sync(): void {
    for (const wrapper of [...this.attached]) wrapper.sync(this);
  }
}

/**
 * A subchannel as the package's policy hands it to its child: the health check decides
 * `isHealthy()`, and a READY connection shows CONNECTING until its first report.
 */
class HealthSubchannel extends experimental.BaseSubchannelWrapper {
  readonly #checker: HealthChecker;
  readonly #listeners = new Set<ConnectivityStateListener>();
  #shown: connectivityState;
  #keepaliveTime = 0;
  #refs = 0;
  #watch: SubchannelWatch | undefined;
  readonly #forward: ConnectivityStateListener = (_subchannel, _previous, _next, keepaliveTime, errorMessage) => {
    this.#keepaliveTime = keepaliveTime;
    this.#showState(errorMessage);
  };

  constructor(child: SubchannelInterface, checker: HealthChecker) {
    super(child);
    this.#checker = checker;
    const known = checker.watchOf(child);
    if (known !== undefined) this.setHealthy(known.serving);
    this.#shown = this.getConnectivityState();
  }

  override getConnectivityState(): connectivityState {
    const raw = this.child.getConnectivityState();
    const watch = this.#watch ?? this.#checker.watchOf(this.child);
    return watch === undefined ? this.#checker.shownWithoutWatch(raw) : watch.shown(raw);
  }

  override addConnectivityStateListener(listener: ConnectivityStateListener): void {
    if (this.#listeners.size === 0) {
      this.#shown = this.getConnectivityState();
      this.child.addConnectivityStateListener(this.#forward);
    }
    this.#listeners.add(listener);
  }

  override removeConnectivityStateListener(listener: ConnectivityStateListener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0) this.child.removeConnectivityStateListener(this.#forward);
  }

  override ref(): void {
    super.ref();
    if (this.#refs++ === 0) this.#watch = this.#checker.attach(this, this.child);
  }

  override unref(): void {
    if (--this.#refs === 0 && this.#watch !== undefined) {
      this.#checker.detach(this, this.#watch);
      this.#watch = undefined;
    }
    super.unref();
  }

  /** The watch has news: health first, then the state it implies. */
  sync(watch: SubchannelWatch): void {
    this.setHealthy(watch.serving);
    this.#showState(undefined);
  }

  #showState(errorMessage: string | undefined): void {
    const next = this.getConnectivityState();
    const previous = this.#shown;
    if (next === previous) return;
    this.#shown = next;
    for (const listener of [...this.#listeners]) listener(this, previous, next, this.#keepaliveTime, errorMessage);
  }
}

/**
 * The health checking of one channel's policy: wraps the subchannels its child creates, keeps
 * one watch per connected endpoint, and reports to the channel's sink.
 */
export class HealthChecker {
  /** Watches by real subchannel. */
  readonly #watches = new Map<object, SubchannelWatch>();
  #destroyed = false;

  constructor(
    readonly serviceName: string,
    readonly sink: HealthSink | undefined,
    readonly openWatch: OpenWatch = openGrpcWatch,
    readonly random: () => number = Math.random,
  ) {}

  /** The subchannel, health-checked. */
  wrap(subchannel: SubchannelInterface): SubchannelInterface {
    return new HealthSubchannel(subchannel, this);
  }

  /** The watch of a subchannel's connection, if one runs. */
  watchOf(subchannel: SubchannelInterface): SubchannelWatch | undefined {
    return this.#watches.get(subchannel.getRealSubchannel());
  }

  /** A subchannel nobody watches yet shows CONNECTING while READY: its watch starts when it is used. */
  shownWithoutWatch(raw: connectivityState): connectivityState {
    return raw === connectivityState.READY && !this.#destroyed ? connectivityState.CONNECTING : raw;
  }

  /** A wrapper is in use (ref'd): it joins the watch of its connection, started if new. */
  attach(wrapper: HealthSubchannel, subchannel: SubchannelInterface): SubchannelWatch | undefined {
    if (this.#destroyed) return undefined;
    const real = subchannel.getRealSubchannel();
    let watch = this.#watches.get(real);
    if (watch === undefined) {
      watch = new SubchannelWatch(subchannel, this);
      this.#watches.set(real, watch);
    }
    watch.attached.add(wrapper);
    watch.start();
    return watch;
  }

  /**
   * A wrapper is no longer used. The watch stops when it was the last one, one turn of the event
   * loop later: round_robin drops its endpoints' subchannels and makes new ones for the same
   * connections at every resolver update, and the stream (and its last report) should survive that.
   */
  detach(wrapper: HealthSubchannel, watch: SubchannelWatch): void {
    watch.attached.delete(wrapper);
    if (watch.attached.size > 0) return;
    setImmediate(() => {
      if (watch.attached.size > 0) return;
      watch.stop();
      const real = watch.subchannel.getRealSubchannel();
      if (this.#watches.get(real) === watch) this.#watches.delete(real);
    });
  }

  report(change: Omit<EndpointHealthChange, 'target'>): void {
    this.sink?.report(change);
  }

  /** The policy is going: every stream is cancelled and every timer cleared, now. */
  destroy(): void {
    this.#destroyed = true;
    for (const watch of this.#watches.values()) watch.stop();
    this.#watches.clear();
  }
}

// ---- where a channel's policy finds its sink ----

/**
 * Shared through a global symbol, as endpoint-lb.ts's registry is: the ESM and CJS builds in one
 * process register the policy once between them, and the config names the sink by number.
 */
interface SinkRegistry {
  sinks: Map<number, HealthSink>;
  next: number;
}
const SINKS_KEY = Symbol.for('resilient-grpc.health-check');
const sinks: SinkRegistry = ((globalThis as Record<symbol, unknown>)[SINKS_KEY] ??= { sinks: new Map(), next: 1 }) as SinkRegistry;

/** Makes a channel's sink reachable from its policy config; returns its id. */
export function registerHealthSink(sink: HealthSink): number {
  const id = sinks.next++;
  sinks.sinks.set(id, sink);
  return id;
}

export function unregisterHealthSink(id: number): void {
  sinks.sinks.delete(id);
}

export function healthSink(id: number | undefined): HealthSink | undefined {
  return id === undefined ? undefined : sinks.sinks.get(id);
}
