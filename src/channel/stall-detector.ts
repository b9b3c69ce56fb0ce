import { status } from '@grpc/grpc-js';

// The stall detector of one pooled channel: how a connection that silently stopped carrying
// bytes (a NAT or conntrack entry dropped, a frozen VM, a partition: no FIN, no RST) is noticed
// without keepalive pings. grpc-js keeps such a connection READY until the kernel gives up (about
// 15 minutes of retransmissions on Linux), failing every call with DEADLINE_EXCEEDED; keepalive
// pings would find it, but servers that follow gRFC A8 (grpc-go, grpc-java, C-core) answer pings
// more frequent than every 5 minutes with GOAWAY too_many_pings, failing the calls in flight.
//
// So the detector sends no pings and watches the pool's own calls instead (the pool's default
// keepalive, one ping per 6 minutes while calls are open, is for streams; per-endpoint
// liveness, endpoint-liveness.ts, applies the same rule to each endpoint of a multi-endpoint
// channel): while the channel is READY and unary calls are waiting, if nothing at all has been heard from the server on the channel
// (response headers, a message, a status the server sent) for `stallMs`, the connection is
// presumed dead and the channel's owner replaces the grpc-js channel (a new TCP connection; the
// old channel is closed, its calls run on to their answers or deadlines). Streams are not
// watched (a watch or subscribe stream may rightly wait minutes for its first message), but their
// response headers and a status their server sent count as heard. Each attempt (call/attempt.ts)
// reports to the current channel's `Watch`: `begin`, `heard`, `unaryEnded`, `streamEnded`. The
// channel's open circuits probe at once after a replacement (circuit-breaker.ts `probeNow`): the
// failures that opened them were this silence's. A replacement that turns out wrong costs a new
// connection, never a call, and makes the detector more patient: `stallMs` doubles (up to 60 s) when an answer then
// arrives on the replaced channel (a false alarm: the server was slow, not gone), and when the
// new channel stalls too before hearing anything (the replacement did not help).

/** The longest `stallMs` doubling may reach (a larger configured value is kept as it is). */
export const MAX_STALL_MS = 60_000;

/** Statuses grpc-js makes up on the client side: they prove nothing about the peer. */
function isLocal(code: number): boolean {
  return code === status.DEADLINE_EXCEEDED || code === status.CANCELLED || code === status.UNAVAILABLE;
}

/** What one grpc-js channel (one generation of the pooled channel) has heard. */
export class Watch {
  /** Unary calls in flight that have heard nothing yet. */
  unheard = 0;
  /** Since when nothing has been heard while a unary call was waiting (or timed out unheard). */
  silentSince: number | undefined;
  /** A unary call ended by its deadline without hearing anything since `silentSince`. */
  timedOut = false;
  heardEver = false;
  /** Retired by a stall: an answer heard from now on is a false alarm. */
  retiredByStall = false;
  retired = false;

  constructor(
    readonly detector: StallDetector,
    readonly bornOfStall: boolean,
  ) {}

  begin(): void {
    this.unheard++;
    if (this.silentSince === undefined) {
      this.silentSince = this.detector.now();
      if (!this.retired) this.detector.arm();
    }
  }

  /** Something arrived from the server. `waiting`: the call it belongs to was counted unheard. */
  heard(waiting: boolean): void {
    if (waiting) this.unheard--;
    this.heardEver = true;
    this.timedOut = false;
    this.silentSince = this.unheard > 0 ? this.detector.now() : undefined;
    if (this.retiredByStall) {
      this.retiredByStall = false;
      this.detector.falseAlarm();
    }
  }

  /** An unheard unary call ended with a status grpc-js made up (deadline, cancel, connection lost). */
  endedUnheard(code: number): void {
    this.unheard--;
    if (code === status.DEADLINE_EXCEEDED) this.timedOut = true;
    // A call cancelled by its caller proves nothing: silence counts only while someone waits.
    else if (this.unheard === 0 && !this.timedOut) this.silentSince = undefined;
  }

  /**
   * A unary call ended (its callback ran): with a response (`code` undefined), a status the
   * server sent, or one grpc-js made up (deadline, cancel, connection lost), which proves nothing
   * about the peer. `waiting`: it was still counted unheard.
   */
  unaryEnded(waiting: boolean, code: number | undefined): void {
    if (code !== undefined && isLocal(code)) {
      if (waiting) this.endedUnheard(code);
    } else {
      this.heard(waiting);
    }
  }

  /** A stream's (or a client stream's) status: one the server sent counts as heard. Streams are never waited on. */
  streamEnded(code: number): void {
    if (!isLocal(code)) this.heard(false);
  }

  /** Whether the channel has been silent for `stallMs`, as of `now`. */
  stalledFor(now: number): number | undefined {
    if (this.silentSince === undefined || (this.unheard === 0 && !this.timedOut)) return undefined;
    return now - this.silentSince;
  }
}

/**
 * Watches what the calls of one pooled channel hear, across the grpc-js channels that succeed
 * one another under it, and reports a stall once per silent spell of `stallMs`.
 */
export class StallDetector {
  #stallMs: number;
  readonly #maxStallMs: number;
  #current: Watch | undefined;
  #ready = false;
  #timer: NodeJS.Timeout | undefined;
  #stalls = 0;
  #falseAlarms = 0;
  #stopped = false;

  /**
   * @param baseMs the configured stall timeout, in ms.
   * @param onStall called when the current channel stalled, with how long it has been silent;
   *   the owner replaces the channel (and calls `newChannel(true)` for the new one).
   * @param now the clock (injectable for tests), in ms.
   */
  constructor(
    readonly baseMs: number,
    readonly onStall: (silentMs: number) => void,
    readonly now: () => number = () => performance.now(),
  ) {
    this.#stallMs = baseMs;
    this.#maxStallMs = Math.max(baseMs, MAX_STALL_MS);
  }

  /** The silence that counts as a stall now, in ms: `baseMs`, doubled by each false alarm. */
  get stallMs(): number {
    return this.#stallMs;
  }

  /** Stalls reported (channel replacements asked for). */
  get stalls(): number {
    return this.#stalls;
  }

  /** Stalls disproved: an answer arrived on the channel that was replaced. */
  get falseAlarms(): number {
    return this.#falseAlarms;
  }

  /** What the calls on the current grpc-js channel report to. */
  get watch(): Watch | undefined {
    return this.#current;
  }

  /**
   * A new grpc-js channel becomes the watched one; the previous one is retired (what it hears
   * later only tells whether its stall was real). `afterStall`: it replaces one that stalled.
   */
  newChannel(afterStall: boolean): void {
    const previous = this.#current;
    if (previous !== undefined) {
      previous.retired = true;
      previous.retiredByStall = afterStall;
    }
    this.#current = new Watch(this, afterStall);
    this.#ready = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The watched channel's connectivity changed: silence counts only while it is READY. */
  onState(ready: boolean): void {
    const watch = this.#current;
    if (ready === this.#ready || watch === undefined) return;
    this.#ready = ready;
    if (!ready) return;
    // A call that waited for the connection was not waiting on it: its time starts now.
    if (watch.silentSince !== undefined) watch.silentSince = this.now();
    this.arm();
  }

  /** Schedules a check for when the current silent spell reaches `stallMs` (one timer at most). */
  arm(): void {
    if (this.#stopped || this.#timer !== undefined || !this.#ready) return;
    const since = this.#current?.silentSince;
    if (since === undefined) return;
    const delay = Math.max(0, since + this.#stallMs - this.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#check();
    }, delay);
    // Calls in flight keep the process alive; the detector must not.
    this.#timer.unref();
  }

  #check(): void {
    const watch = this.#current;
    if (watch === undefined || !this.#ready || this.#stopped) return;
    const silentMs = watch.stalledFor(this.now());
    if (silentMs === undefined) return;
    if (silentMs < this.#stallMs) {
      this.arm();
      return;
    }
    this.#stalls++;
    // The channel that stalled was itself a replacement that never heard a thing: a new
    // connection did not help, so the server is slow rather than gone. Wait longer next time.
    if (watch.bornOfStall && !watch.heardEver) this.#double();
    this.onStall(silentMs);
  }

  /** An answer arrived on a channel replaced for a stall: it was alive after all. */
  falseAlarm(): void {
    this.#falseAlarms++;
    this.#double();
  }

  #double(): void {
    this.#stallMs = Math.min(this.#stallMs * 2, this.#maxStallMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
