import { status, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { prepareCall, type PreparedCall } from './call-options.js';
import { optionError, PoolClosedError, StatusError } from './errors.js';
import type { CallOptions, ResolvedPolicy } from './options.js';
import type { PoolCore } from './pool-core.js';
import type { InFlight, PooledChannel } from './pooled-channel.js';
import type { MethodInfo } from './service-methods.js';

/** One method of one client, bound to its channel, with its policy resolved down to the method level. */
export interface BoundMethod {
  readonly core: PoolCore;
  readonly channel: PooledChannel;
  readonly method: MethodInfo;
  readonly policy: ResolvedPolicy;
}

/** Why a call was ended from our side, when it was. */
type EndedBy = 'signal' | 'parent' | 'close';

/**
 * One unary call in flight: owns the grpc-js call, the listeners on the caller's signal and on
 * the parent call, and its place in the channel's in-flight set. Settles exactly once.
 */
class UnaryCall implements InFlight {
  #grpcCall: ClientUnaryCall | undefined;
  #endedBy: EndedBy | undefined;
  #graceMs = 0;

  constructor(
    readonly bound: BoundMethod,
    readonly prepared: PreparedCall,
    readonly resolve: (value: unknown) => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  start(request: unknown): void {
    const { channel, method, core } = this.bound;
    const { signal, parent, metadata, deadline } = this.prepared;
    channel.started++;
    core.track(channel, this);
    signal?.addEventListener('abort', this);
    parent?.once('cancelled', this.#onParentCancelled);
    try {
      this.#grpcCall = channel.client.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        request,
        metadata,
        { deadline },
        this.#onComplete,
      );
    } catch (error) {
      // grpc-js throws synchronously when its channel is already closed.
      this.#finish(new StatusError({
        code: status.UNAVAILABLE,
        details: error instanceof Error ? error.message : String(error),
        method: method.path,
        target: channel.target,
        cause: error,
      }));
    }
  }

  /** The abort listener (an EventListener object, so no closure is allocated per call). */
  handleEvent(): void {
    this.#end('signal');
  }

  cancelForClose(graceMs: number): void {
    this.#graceMs = graceMs;
    this.#end('close');
  }

  #onParentCancelled = (): void => {
    this.#end('parent');
  };

  #end(by: EndedBy): void {
    this.#endedBy ??= by;
    // grpc-js answers cancel() by calling the callback with CANCELLED; #onComplete settles.
    this.#grpcCall?.cancel();
  }

  #onComplete = (error: ServiceError | null, response?: unknown): void => {
    if (error === null) {
      this.bound.channel.succeeded++;
      this.#release();
      this.resolve(response);
      return;
    }
    this.#finish(this.#errorFor(error));
  };

  #finish(error: unknown): void {
    this.bound.channel.failed++;
    this.#release();
    this.reject(error);
  }

  #release(): void {
    this.prepared.signal?.removeEventListener('abort', this);
    this.prepared.parent?.removeListener('cancelled', this.#onParentCancelled);
    this.bound.core.untrack(this.bound.channel, this);
  }

  #errorFor(error: ServiceError): unknown {
    const { method, channel } = this.bound;
    switch (this.#endedBy) {
      case 'signal':
        return this.prepared.signal!.reason;
      case 'close':
        return cancelledError(this.bound, `cancelled by ChannelPool.close(): still running after graceMs ${this.#graceMs} ms`, error);
      case 'parent':
        return cancelledError(this.bound, 'cancelled because its parent call was cancelled', error);
      default:
        return new StatusError({
          code: typeof error.code === 'number' ? error.code : status.UNKNOWN,
          details: error.details ?? error.message,
          metadata: error.metadata,
          method: method.path,
          target: channel.target,
          cause: error,
        });
    }
  }
}

function cancelledError(bound: BoundMethod, details: string, cause: unknown): StatusError {
  return new StatusError({ code: status.CANCELLED, details, method: bound.method.path, target: bound.channel.target, cause });
}

/**
 * Runs one unary call: admission, validation, deadline, then the grpc-js call. Never throws:
 * every outcome is a settled promise, with a response or an error carrying a gRPC code (a
 * caller's abort rejects with `signal.reason`).
 */
export function callUnary(bound: BoundMethod, request: unknown, options: CallOptions | undefined): Promise<unknown> {
  if (!bound.core.isOpen) return Promise.reject(new PoolClosedError(bound.method.path));
  let prepared: PreparedCall;
  try {
    checkRequest(request);
    prepared = prepareCall(bound.policy, options, Date.now());
  } catch (error) {
    return Promise.reject(error);
  }
  if (prepared.signal?.aborted) return Promise.reject(prepared.signal.reason);
  if (prepared.parent?.cancelled) {
    return Promise.reject(cancelledError(bound, 'not started: its parent call was already cancelled', undefined));
  }
  return new Promise((resolve, reject) => {
    new UnaryCall(bound, prepared, resolve, reject).start(request);
  });
}

function checkRequest(request: unknown): void {
  if (typeof request !== 'object' || request === null) {
    throw optionError('type', 'request', 'a request message object', request);
  }
}

