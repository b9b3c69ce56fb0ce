import { status, type CallOptions, type Metadata, type StatusObject } from '@grpc/grpc-js';
import { attemptHeard, endAttempt, judgeAttempt, linkAttempt, type AttemptLink } from '../channel/endpoint-lb.js';
import type { Watch } from '../channel/stall-detector.js';
import type { EndpointLiveness, Pending } from '../channel/endpoint-liveness.js';
import {
  attemptOutcome,
  attemptReach,
  expiredLocally,
  judgedOutcome,
  refusedStream,
  STALLED_LOOP_MS,
  type AttemptOutcome,
  type AttemptReach,
} from '../core/status-meaning.js';
import { inScope } from '../events/call-events.js';
import type { BoundMethod } from './bound-method.js';
import type { CallObserver } from './call-observer.js';
import { watchHooks } from './call-hooks.js';
import type { PreparedCall } from './call-options.js';
import { InterceptorTap, thrownStatus } from './interceptor-tap.js';
import { loopBusySince, sampleLoop } from './loop-stall.js';
import { MessageQueue, type QueueListener } from './message-queue.js';
import { RequestPump, type PumpOwner, type Requests } from './request-pump.js';

// One attempt of a call on the wire: the grpc-js call it makes on its channel, its deadline and
// metadata, the endpoint the picker sent it to, whether it is committed (response headers or a
// message arrived: gRFC A6), what the stall detector hears of it, and its health outcome for the
// circuits and the endpoint books, judged once (a stream at its first message). grpc-js tells the
// attempt, and only the attempt, what happened; the attempt tells its owner (the call) once it is
// ready or failed, and once it is judged.
//
// Over 300 lines on purpose: it is the state of one attempt of every call shape (unary and the
// three streams share the commit, judge, stall and endpoint state), and splitting a shape off
// would hand its private state to another file. What the caller's interceptors did to an attempt
// is interceptor-tap.ts's.

/** What an attempt needs of the call that owns it, and how it reports back. */
export interface AttemptOwner extends PumpOwner {
  readonly bound: BoundMethod;
  /** The request message (unary, server stream) or the request source (client and bidi streams). */
  readonly request: unknown;
  readonly observer: CallObserver | undefined;
  /** The call was ended from our side (abort, parent, close, the reader left, the source failed). */
  readonly isEnded: boolean;
  /** The call's options: the caller's hooks, interceptors and call credentials, when given. */
  readonly prepared: Pick<PreparedCall, 'hooks' | 'interceptors' | 'credentials'>;
  /**
   * The attempt is ready (`error` null: a unary or client-stream response, a server stream's
   * first message or its clean end, a bidi stream at once) or it failed before being ready.
   * Once per attempt.
   */
  attemptDone(attempt: Attempt, error: unknown, value: unknown): void;
  /**
   * How the attempt counts for health (once; see `Attempt`): for the call's circuits. A failure
   * comes with how far it got and its status code (a deadline that expired locally never counts
   * for the target).
   */
  attemptJudged(attempt: Attempt, outcome: AttemptOutcome, reach: AttemptReach, code?: number): void;
  /** A ready stream is over (its status arrived), with its count of response messages. */
  streamEnded(attempt: Attempt, final: StatusObject, received: number): void;
}

/** How one attempt is made: its number, deadline on the wire, own time limit and metadata. */
export interface AttemptPlan {
  number: number;
  /** The deadline grpc-js gets, epoch ms (finite). */
  wireDeadline: number;
  /** A time limit kept off the wire (a stream's per-attempt timeout until it is ready), in ms. */
  readyWithinMs: number | undefined;
  /** The per-attempt timeout in force, for its error message. */
  perAttemptTimeoutMs: number | undefined;
  /** The attempt has a time limit of its own, earlier than the call's deadline. */
  ownDeadline: boolean;
  /** When it starts, epoch ms (the first attempt's is the call's admission time: one clock read less). */
  startedAt: number;
  metadata: Metadata;
  /** `metadata` may be written to (it is not the caller's own object). */
  ownMetadata: boolean;
  /** An endpoint to avoid when another can take the attempt (where the last attempt failed, or where the attempt a hedge races runs). */
  avoid: string | undefined;
  /** The attempt is a hedge: it races an attempt still running (attempts.ts). */
  hedge: boolean;
}

/** The grpc-js call of an attempt, whatever its shape: the parts the attempt uses. */
interface WireCall {
  cancel(): void;
  getPeer(): string;
  on(event: 'metadata', listener: (metadata: Metadata) => void): unknown;
  on(event: 'status', listener: (status: StatusObject) => void): unknown;
}

/** A grpc-js status or ServiceError. */
interface WireStatus {
  code: number;
  details: string;
  metadata?: Metadata | undefined;
}

const ATTEMPT = Symbol('resilient-grpc.attempt');

/** A grpc-js call with its attempt stored on it, until the attempt is over. */
type LinkedWireCall = WireCall & { [ATTEMPT]?: Attempt | undefined };

/**
 * The one 'metadata' listener of every attempt, shared (no closure per call): the response
 * headers arrived on the grpc-js call whose attempt is stored under ATTEMPT.
 */
function onHeaders(this: LinkedWireCall): void {
  this[ATTEMPT]?.heardHeaders();
}

/**
 * grpc-js captures its caller's stack on every call it makes (a `new Error()`, up to
 * `Error.stackTraceLimit` frames), so that its errors can say where the call was made. Made by
 * the pool, those frames are the pool's own and tell the caller nothing, and capturing them cost
 * ~57 K instructions per unary call for raw grpc-js (bench/instructions.ts), ~73 K with the
 * pool's deeper stack: more than everything else the pool does. So the pool makes its calls with the limit at 0, unless
 * someone else's code runs inside the grpc-js call (the caller's interceptors, a call-events
 * listener's scope) or the limit cannot be set (a frozen `Error`, as under SES lockdown).
 */
const CALLER_STACK_OFF = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')?.writable === true;

/** One attempt of a call. */
export class Attempt implements QueueListener {
  readonly number: number;
  /** The attempt has a time limit of its own, earlier than the call's deadline. */
  readonly ownDeadline: boolean;
  readonly #owner: AttemptOwner;
  readonly #plan: AttemptPlan;
  readonly #startedAt: number;
  /** performance.now() at the start, when somebody listens to the attempt events. */
  #eventsAt = 0;
  /** The grpc-js channel generation it runs on: a replaced channel fails it through no fault of the backend. */
  readonly #generation: number;
  #call: LinkedWireCall | undefined;
  #link: AttemptLink | undefined;
  /** The stall detector's view of the channel, when it is on. */
  readonly #watch: Watch | undefined;
  /** A unary call counted as unheard by the stall detector. */
  #unheard = false;
  /** Per-endpoint liveness, on a channel that tracks its endpoints. */
  readonly #endpointWatch: EndpointLiveness | undefined;
  /** This unary attempt, while it waits unheard on its endpoint (endpoint-liveness.ts). */
  #pending: Pending | undefined;
  #committed = false;
  #judged = false;
  /** It was judged a failure (not 'ignored': a stalled loop's late deadline is not the endpoint's silence). */
  #judgedFailure = false;
  /** The owner has heard that the attempt is ready or failed. */
  #done = false;
  #ended = false;
  #timedOut = false;
  /** grpc-js threw when the call was made (its channel was closed, or an interceptor threw): never retried. */
  #threw = false;
  /** What grpc-js threw, when it did. */
  #thrown: unknown;
  /** Where the call got to through the caller's interceptors, when it has any. */
  #tap: InterceptorTap | undefined;
  #limitTimer: NodeJS.Timeout | undefined;
  /** A stream's responses. */
  #queue: MessageQueue | undefined;
  /** A client or bidi stream's requests. */
  #pump: RequestPump | undefined;
  /** The endpoint where it failed, when the channel tracks endpoints: the next attempt avoids it. */
  #failedAt: string | undefined;
  /** Its endpoint, once the picker chose it (kept after the link is released). */
  #endpoint: string | undefined;
  /** It races another attempt of its call (a hedge, or the attempt a hedge races). */
  #raced = false;
  /** Its call no longer wants it (another attempt won the race): cancelled, and it counts neither way. */
  #abandoned = false;

  constructor(owner: AttemptOwner, plan: AttemptPlan) {
    this.#owner = owner;
    this.#plan = plan;
    this.number = plan.number;
    this.ownDeadline = plan.ownDeadline;
    this.#startedAt = plan.startedAt;
    sampleLoop(plan.startedAt);
    const { channel } = owner.bound;
    this.#generation = channel.generation;
    this.#watch = channel.liveness;
    this.#endpointWatch = channel.endpointLiveness;
  }

  /** Puts the attempt on the wire. Its owner hears from it, at the earliest, during this call. */
  start(): void {
    const owner = this.#owner;
    const plan = this.#plan;
    const observer = owner.observer;
    let { metadata, ownMetadata } = plan;
    // Call events: the attempt's start event (listeners may add headers, so it gets its own copy).
    let scope: ((start: () => void) => void) | undefined;
    if (observer !== undefined) {
      this.#eventsAt = performance.now();
      if (observer.events.onAttemptStart.hasListeners) {
        if (!ownMetadata) metadata = metadata.clone();
        ownMetadata = true;
        scope = observer.attemptStart(plan.number, metadata, plan.hedge);
      }
    }
    const interceptors = owner.prepared.interceptors ?? owner.bound.interceptors;
    // On a channel that tracks its endpoints, the picker tells the attempt where it went. With
    // interceptors, the tap puts the token in, innermost: no interceptor sees it.
    if (owner.bound.channel.endpoints !== undefined) {
      if (interceptors !== undefined) {
        this.#link = linkAttempt(undefined, plan.avoid);
      } else {
        if (!ownMetadata) metadata = metadata.clone();
        this.#link = linkAttempt(metadata, plan.avoid);
      }
    }
    if (interceptors !== undefined) this.#tap = new InterceptorTap(this.#link);
    if (plan.readyWithinMs !== undefined) {
      this.#limitTimer = setTimeout(() => {
        this.#timedOut = true;
        this.#call?.cancel();
      }, plan.readyWithinMs);
      this.#limitTimer.unref();
    }
    try {
      if (scope !== undefined) this.#call = inScope(scope, () => this.#send(metadata));
      // The caller's interceptors run inside the grpc-js call: their errors keep their stacks.
      else if (!CALLER_STACK_OFF || this.#tap !== undefined) this.#call = this.#send(metadata);
      else {
        // See CALLER_STACK_OFF: restored before anything else runs.
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        try {
          this.#call = this.#send(metadata);
        } finally {
          Error.stackTraceLimit = limit;
        }
      }
    } catch (error) {
      // grpc-js throws synchronously when its channel is already closed, and so does an
      // interceptor of the caller's that throws: never retried, and what was thrown says
      // nothing about the backend. A closed channel is UNAVAILABLE; an interceptor's bug INTERNAL.
      if (this.#limitTimer !== undefined) clearTimeout(this.#limitTimer);
      // A unary call counted as waiting never went out: it waits on no connection.
      if (this.#unheard) {
        this.#watch!.unaryEnded(true, status.CANCELLED);
        this.#unheard = false;
      }
      if (this.#pending !== undefined) {
        this.#endpointWatch!.ended(this.#pending, status.CANCELLED);
        this.#pending = undefined;
      }
      this.#ended = true;
      this.#threw = true;
      this.#thrown = error;
      this.#judge(error);
      this.#release(error);
      observer?.attemptEnd(this.number, error, this.#eventsAt, undefined, this.#plan.hedge, this.#won(error));
      this.#tell(thrownStatus(this.#tap, error), undefined);
      return;
    }
    // The server may wait for a bidi stream's requests before it answers: it is ready at once.
    if (owner.bound.method.kind === 'bidi') this.#tell(null, this.#queue);
  }

  /** Makes the grpc-js call of this attempt's shape on the channel's current client. */
  #send(metadata: Metadata): LinkedWireCall {
    const { bound, request } = this.#owner;
    const { channel, method } = bound;
    const client = channel.client;
    const prepared = this.#owner.prepared;
    // A plain call's options are its deadline alone: interceptors and call credentials cost
    // only the calls that have them.
    const options: CallOptions = { deadline: this.#plan.wireDeadline };
    if (prepared.credentials !== undefined) options.credentials = prepared.credentials;
    if (this.#tap !== undefined) options.interceptors = this.#tap.chain(prepared.interceptors ?? bound.interceptors ?? []);
    // What a unary or client-stream callback reaches this attempt through, until it ran.
    let self: Attempt | undefined = this;
    let call: LinkedWireCall;
    switch (method.kind) {
      case 'unary':
        if (this.#watch !== undefined) {
          this.#watch.begin();
          this.#unheard = true;
        }
        if (this.#endpointWatch !== undefined && this.#link !== undefined) this.#pending = this.#endpointWatch.begin(this.#link);
        call = client.makeUnaryRequest(method.path, method.serialize, method.deserialize, request, metadata, options, (error, response) => {
          // grpc-js keeps its callback as long as its own call objects live, and they can outlive
          // the call by many scavenges (see #unlink): the callback lets go of the attempt first.
          const attempt = self;
          self = undefined;
          if (attempt !== undefined) attempt.#responded(error, response);
        });
        break;
      case 'client-stream': {
        const writable = client.makeClientStreamRequest(
          method.path,
          method.serialize,
          method.deserialize,
          metadata,
          options,
          (error, response) => {
            const attempt = self;
            self = undefined;
            if (attempt !== undefined) attempt.#responded(error, response);
          },
        );
        this.#pump = new RequestPump(request as Requests, writable, this.#owner);
        call = writable;
        break;
      }
      case 'server-stream': {
        const readable = client.makeServerStreamRequest(method.path, method.serialize, method.deserialize, request, metadata, options);
        this.#queue = new MessageQueue(readable, this);
        call = readable;
        break;
      }
      case 'bidi': {
        const duplex = client.makeBidiStreamRequest(method.path, method.serialize, method.deserialize, metadata, options);
        this.#pump = new RequestPump(request as Requests, duplex, this.#owner);
        this.#queue = new MessageQueue(duplex, this);
        call = duplex;
        break;
      }
    }
    call[ATTEMPT] = this;
    call.on('metadata', onHeaders);
    const hooks = this.#owner.prepared.hooks;
    if (hooks !== undefined) watchHooks(call, hooks);
    return call;
  }

  /** What a client or bidi stream's request source threw, if it did: what the caller sees. */
  get sourceError(): { error: unknown } | undefined {
    return this.#pump?.sourceError;
  }

  /** How long the attempt ran, in ms: the estimate of what another one needs. */
  get durationMs(): number {
    return Date.now() - this.#startedAt;
  }

  /** Whether grpc-js threw when the call was made (a closed channel, an interceptor): never retried. */
  get threw(): boolean {
    return this.#threw;
  }

  /** What grpc-js threw when the call was made, if it did: the cause of the call's error. */
  get thrown(): unknown {
    return this.#thrown;
  }

  /**
   * One of the caller's interceptors ended the attempt before handing it on to the channel (a
   * status of its own, or a deadline that ran out while it held the call): never retried, and
   * it says nothing about the backend.
   */
  get stoppedByInterceptor(): boolean {
    return this.#tap !== undefined && !this.#tap.handedOn;
  }

  /** Whether it ran on a grpc-js channel that the watchdog or the stall detector has since replaced. */
  get channelReplaced(): boolean {
    return this.#owner.bound.channel.generation !== this.#generation;
  }

  /** The endpoint where it failed, when the channel tracks endpoints. */
  get failedAt(): string | undefined {
    return this.#failedAt;
  }

  /** Whether it is a hedge (see AttemptPlan.hedge). */
  get hedge(): boolean {
    return this.#plan.hedge;
  }

  /** Whether the owner has heard that it is ready or failed. */
  get isDone(): boolean {
    return this.#done;
  }

  /** Whether it is committed: response headers or a message arrived (gRFC A6). */
  get committed(): boolean {
    return this.#committed;
  }

  /** Whether its call abandoned it (another attempt won the race). */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** The endpoint it went to, once the picker chose one (a channel that tracks endpoints). */
  get endpoint(): string | undefined {
    return this.#link?.address ?? this.#endpoint;
  }

  /** It races another attempt of its call: its attempt-end event says whether it won. */
  raced(): void {
    this.#raced = true;
  }

  /** Another attempt of its call won: cancelled on the wire; its end counts neither way for health. */
  abandon(): void {
    this.#abandoned = true;
    this.cancel();
  }

  /** Whether it won its race, for the attempt-end event (undefined: it raced nothing). */
  #won(failure: unknown): boolean | undefined {
    if (!this.#raced) return undefined;
    return !this.#abandoned && (failure === null || this.#done);
  }

  /** How far its request got (see `attemptReach`), given the status it failed with. */
  reachOf(failure: { code: number; details?: string | undefined; metadata?: Metadata | undefined }): AttemptReach {
    const call = this.#call;
    const trailers = failure.metadata;
    return attemptReach(
      this.#committed,
      call !== undefined && call.getPeer() !== this.#owner.bound.channel.grpcTarget,
      trailers !== undefined && Object.keys(trailers.getMap()).length > 0,
      refusedStream(failure.code, failure.details),
    );
  }

  /**
   * Once it is over, lets go of its grpc-js call and of its stream's queue and request pump (its
   * call is kept by its idle channel: see in-flight.ts). A running attempt keeps them, and so
   * does one whose request source threw: the caller's reader is still to see that error.
   */
  letGoOfWire(): void {
    if (!this.#ended || this.#pump?.sourceError !== undefined) return;
    this.#call = undefined;
    this.#queue = undefined;
    this.#pump = undefined;
  }

  /** Cancels it on the wire; grpc-js answers with a CANCELLED status, which ends it. */
  cancel(): void {
    if (!this.#ended) this.#call?.cancel();
  }

  // ---- what grpc-js tells the attempt ----

  /** The response headers arrived: the attempt is committed (gRFC A6) and the peer was heard. */
  heardHeaders(): void {
    this.#committed = true;
    if (this.#link !== undefined) attemptHeard(this.#link);
    if (this.#watch !== undefined) {
      this.#watch.heard(this.#unheard);
      this.#unheard = false;
    }
    if (this.#endpointWatch !== undefined) {
      this.#endpointWatch.heard(this.#pending, this.#pending?.link.address ?? this.#link?.address);
      this.#pending = undefined;
    }
  }

  /**
   * The attempt is over on the wire: its grpc-js call lets go of it. grpc-js's and node's http2
   * objects of a call can stay reachable long after it ended (held by the Sets and Maps they are
   * added to and deleted from per call: see in-flight.ts for why such a Set keeps its entries
   * alive past the scavenges), and everything they reach is copied by each scavenge and promoted
   * with them; through this link and the callback, that was the attempt and its whole call.
   */
  #unlink(): void {
    if (this.#call !== undefined) this.#call[ATTEMPT] = undefined;
  }

  /** A unary or client-stream call's callback: its response, or its failure. */
  #responded(error: WireStatus | null, response: unknown): void {
    this.#unlink();
    this.#ended = true;
    if (this.#limitTimer !== undefined) clearTimeout(this.#limitTimer);
    if (this.#watch !== undefined) {
      if (this.#pump === undefined) this.#watch.unaryEnded(this.#unheard, error === null ? undefined : error.code);
      else this.#watch.streamEnded(error === null ? status.OK : error.code);
      this.#unheard = false;
    }
    if (this.#pending !== undefined) {
      this.#endpointWatch!.ended(this.#pending, error === null ? undefined : error.code);
      this.#pending = undefined;
    }
    let failure: unknown = error === null ? null : this.#asTimeout(error);
    if (this.#pump !== undefined) {
      this.#pump.stop();
      // The caller's own source failed: its error is what the caller sees.
      if (this.#pump.sourceError !== undefined) failure = this.#pump.sourceError.error;
    }
    this.#judge(failure);
    this.#release(error === null ? null : failure);
    this.#owner.observer?.attemptEnd(this.number, failure, this.#eventsAt, this.#call, this.#plan.hedge, this.#won(failure));
    this.#tell(failure, response);
  }

  /** A stream's first message (QueueListener): a stream is healthy, and ready, at its first message. */
  firstMessage(): void {
    this.#committed = true;
    if (this.#limitTimer !== undefined) clearTimeout(this.#limitTimer);
    this.#judge(null);
    this.#tell(null, this.#queue);
  }

  /** A stream's status (QueueListener): the attempt is over. */
  statusArrived(final: StatusObject): void {
    this.#unlink();
    this.#ended = true;
    if (this.#limitTimer !== undefined) clearTimeout(this.#limitTimer);
    this.#pump?.stop();
    this.#watch?.streamEnded(final.code);
    const failure = final.code === status.OK ? null : this.#asTimeout(final);
    this.#judge(failure);
    this.#release(failure);
    this.#owner.observer?.attemptEnd(this.number, failure, this.#eventsAt, this.#call, this.#plan.hedge, this.#won(failure));
  }

  /** Whether the stream had any message is known (QueueListener): settle what is left. */
  streamOver(final: StatusObject): void {
    if (!this.#done) {
      // Over before it was ready: a server stream that failed before its first message (it may
      // be retried), or one that ended cleanly without any.
      const failure = final.code === status.OK ? null : this.#asTimeout(final);
      this.#tell(failure, this.#queue);
      if (failure !== null) return;
    }
    this.#owner.streamEnded(this, final, this.#queue?.received ?? 0);
  }

  /** Tells the owner, once, that the attempt is ready or failed. */
  #tell(failure: unknown, value: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner.attemptDone(this, failure, value);
  }

  /**
   * Judges the attempt for health, once: at a stream's first message, else at its end. Ended
   * from our side, or failed because its channel was replaced under it, it says nothing about
   * the backend and counts neither way, and so does a deadline that expired locally while the
   * client's event loop was stalled (status-meaning.ts judgedOutcome). The endpoint's books hear
   * it too.
   */
  #judge(failure: unknown): void {
    if (this.#judged) return;
    this.#judged = true;
    let outcome = attemptOutcome(failure, this.#owner.isEnded || this.#abandoned || this.channelReplaced || this.stoppedByInterceptor);
    let reach: AttemptReach = 'answered';
    let code: number | undefined;
    if (outcome === 'failure') {
      const wire = failure as WireStatus;
      reach = this.reachOf(wire);
      code = wire.code;
      // A deadline that grpc-js reported long after it came, the client's loop busy meanwhile:
      // the loop was stalled. How busy is asked only of such a deadline.
      const lateMs = Date.now() - this.#plan.wireDeadline;
      if (lateMs > STALLED_LOOP_MS && expiredLocally(code, reach)) {
        outcome = judgedOutcome(outcome, code, reach, lateMs, loopBusySince(this.#plan.wireDeadline));
      }
    }
    this.#owner.attemptJudged(this, outcome, reach, code);
    const link = this.#link;
    if (link !== undefined) {
      this.#judgedFailure = outcome === 'failure';
      judgeAttempt(link, outcome);
      if (outcome !== 'success') this.#failedAt = link.address;
    }
  }

  /**
   * The attempt is over (its status, or grpc-js threw): its endpoint's outstanding count is
   * released now, not when it was judged (a stream judged at its first message was still
   * outstanding). A status the endpoint itself sent (with trailers, before any header) means
   * it was heard; a unary or client-stream deadline that ran out with nothing heard from it, and
   * was judged a failure (not a stalled loop's late deadline), is a silent timeout (see
   * EndpointTracker.released).
   */
  #release(failure: unknown): void {
    const link = this.#link;
    if (link === undefined) return;
    this.#link = undefined;
    this.#endpoint = link.address;
    let silent = false;
    if (failure !== null && typeof failure === 'object' && !this.#committed) {
      const { code, metadata } = failure as Partial<WireStatus>;
      // Only a request-response shape: a stream may rightly say nothing until its deadline.
      if (code === status.DEADLINE_EXCEEDED) silent = this.#queue === undefined && this.#judgedFailure;
      else if (code !== status.CANCELLED && metadata !== undefined && Object.keys(metadata.getMap()).length > 0) attemptHeard(link);
    }
    endAttempt(link, silent);
  }

  /** grpc-js reports the cancel() of a timed-out attempt as CANCELLED: it is our own per-attempt timeout. */
  #asTimeout(error: WireStatus): WireStatus {
    if (!this.#timedOut || this.#owner.isEnded || error.code !== status.CANCELLED) return error;
    return {
      code: status.DEADLINE_EXCEEDED,
      details: `per-attempt timeout: not ready within perAttemptTimeoutMs ${this.#plan.perAttemptTimeoutMs} ms`,
      metadata: error.metadata,
    };
  }
}
