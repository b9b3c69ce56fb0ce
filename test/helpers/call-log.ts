// The test server's record of every call it receives (what a test asserts on), and the
// per-call context its handlers work with: the script, an abort signal for cancellation and
// kill(), and the attempt number. Streaming calls' records count, as they go, the messages
// written and received and the writes that had to wait.
import type * as grpc from '@grpc/grpc-js';
import { header, readScript, type Script } from './call-script.js';

export interface CallRecord {
  /** Proto method name, e.g. 'Echo' or 'QueryBasicInfoByID'. */
  method: string;
  metadata: grpc.Metadata;
  /** Deadline the server observed, epoch ms; Infinity when the client set none. */
  deadline: number;
  receivedAt: number;
  /**
   * The call ended before the handler answered: client cancel, deadline, connection loss, kill.
   * (grpc-js 1.14 emits 'cancelled' after every call, answered or not; only the former counts.)
   */
  cancelled: boolean;
  callId?: string;
  /** Streaming responses: messages the handler has written so far. */
  written: number;
  /** Streaming responses: writes that returned false (the handler then waited for 'drain'). */
  heldWrites: number;
  /** Streaming requests: messages the handler has read so far. */
  received: number;
}

/** What a handler needs for one call: its record, its script, and a signal to stop work. */
export interface CallContext {
  record: CallRecord;
  script: Script;
  /** Aborted when the call is cancelled or the server is killed. */
  signal: AbortSignal;
  /** Calls so far with this call id (including this one), or all calls when there is none. */
  attempt: number;
  /** Handlers call this right before answering: later 'cancelled' events are not cancellations. */
  finish(): void;
}

/** The part of every kind of grpc-js server call that the log needs. */
type ServerCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline'> & NodeJS.EventEmitter;

export class CallLog {
  readonly calls: CallRecord[] = [];
  // Controllers of calls still being handled, so kill() can stop their timers and writes.
  private readonly live = new Set<AbortController>();
  // Calls received in all and per x-call-id: attempt numbers without a scan of the records.
  private total = 0;
  private readonly perCallId = new Map<string, number>();

  /** `keepRecords` false: `calls` stays empty (counts still work), for long-running benchmark servers. */
  constructor(private readonly keepRecords = true) {}

  countFor(callId: string | undefined): number {
    if (callId === undefined) return this.total;
    return this.perCallId.get(callId) ?? 0;
  }

  begin(call: ServerCall, method: string): CallContext {
    const metadata = call.metadata;
    const callId = header(metadata, 'x-call-id');
    const record: CallRecord = {
      method,
      metadata,
      deadline: deadlineMs(call.getDeadline()),
      receivedAt: Date.now(),
      cancelled: false,
      ...(callId === undefined ? {} : { callId }),
      written: 0,
      heldWrites: 0,
      received: 0,
    };
    if (this.keepRecords) this.calls.push(record);
    this.total++;
    if (callId !== undefined) this.perCallId.set(callId, (this.perCallId.get(callId) ?? 0) + 1);

    const controller = new AbortController();
    this.live.add(controller);
    let finished = false;
    const finish = (): void => {
      finished = true;
      this.live.delete(controller);
    };
    call.once('cancelled', () => {
      if (finished) return;
      record.cancelled = true;
      controller.abort();
      finish();
    });

    const attempt = this.countFor(callId);
    return { record, script: readScript(metadata, attempt), signal: controller.signal, attempt, finish };
  }

  abortAll(): void {
    for (const controller of this.live) controller.abort();
    this.live.clear();
  }
}

function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}
