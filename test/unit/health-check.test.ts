import { connectivityState, type experimental, status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthChecker, type EndpointHealthChange } from '../../src/channel/health-check.js';
import {
  decodeHealthResponse,
  encodeHealthRequest,
  type OpenWatch,
  type ServingStatus,
  type WatchListener,
} from '../../src/channel/health-service.js';
import { HealthClient } from '../helpers/health-service.js';

// The health checking of one channel's policy without grpc-js connections: fake subchannels whose
// connectivity the test drives, a fake Watch call the test answers, fake timers for the backoff.
// What pick_first sees of a wrapper is its connectivity state, its listeners and isHealthy().

type SubchannelInterface = experimental.SubchannelInterface;
type Listener = experimental.ConnectivityStateListener;

/** A subchannel as the channel hands it to the policy: a state the test sets, listeners, refs. */
class FakeSubchannel {
  state = connectivityState.IDLE;
  readonly listeners = new Set<Listener>();
  refs = 0;
  constructor(readonly address: string) {}
  getConnectivityState() {
    return this.state;
  }
  addConnectivityStateListener(listener: Listener) {
    this.listeners.add(listener);
  }
  removeConnectivityStateListener(listener: Listener) {
    this.listeners.delete(listener);
  }
  startConnecting() {}
  getAddress() {
    return this.address;
  }
  throttleKeepalive() {}
  ref() {
    this.refs++;
  }
  unref() {
    this.refs--;
  }
  getChannelzRef() {
    return {} as never;
  }
  isHealthy() {
    return true;
  }
  addHealthStateWatcher() {}
  removeHealthStateWatcher() {}
  addDataWatcher() {}
  getRealSubchannel() {
    return this as never;
  }
  realSubchannelEquals(other: SubchannelInterface) {
    return other.getRealSubchannel() === (this as never);
  }
  getCallCredentials() {
    return {} as never;
  }
  getChannel() {
    return {} as never;
  }
  /** Moves to `next`, telling every listener as grpc-js does. */
  set(next: connectivityState) {
    const previous = this.state;
    this.state = next;
    for (const listener of [...this.listeners]) listener(this as never, previous, next, 0);
  }
}

/** Watch calls the checker opened, newest last, for the test to answer. */
interface FakeCall {
  serviceName: string;
  listener: WatchListener;
  cancelled: boolean;
}

let calls: FakeCall[];
let reports: Array<Omit<EndpointHealthChange, 'target'>>;
const openWatch: OpenWatch = (_subchannel, serviceName, listener) => {
  const call: FakeCall = { serviceName, listener, cancelled: false };
  calls.push(call);
  return () => {
    call.cancelled = true;
  };
};

function checker(random = () => 0.5): HealthChecker {
  return new HealthChecker('svc', { report: (change) => reports.push(change) }, openWatch, random);
}

/** A wrapper in use, as pick_first holds one: ref'd, with a listener that records what it saw. */
function use(health: HealthChecker, subchannel: FakeSubchannel) {
  const wrapper = health.wrap(subchannel as unknown as SubchannelInterface);
  const seen: Array<{ state: connectivityState; healthy: boolean }> = [];
  wrapper.ref();
  wrapper.addConnectivityStateListener((_s, _p, next) => seen.push({ state: next, healthy: wrapper.isHealthy() }));
  return { wrapper, seen };
}

beforeEach(() => {
  vi.useFakeTimers();
  calls = [];
  reports = [];
});

afterEach(() => {
  vi.useRealTimers();
});

describe('the health messages', () => {
  it('encode the request as protobuf does: the empty service name is no field at all', () => {
    expect(encodeHealthRequest('')).toEqual(Buffer.alloc(0));
    expect(encodeHealthRequest('svc')).toEqual(Buffer.from([0x0a, 3, 0x73, 0x76, 0x63]));
    const decode = HealthClient.service.Watch!.requestDeserialize as (b: Buffer) => { service: string };
    const long = 'ü'.repeat(200);
    expect(decode(encodeHealthRequest(long)).service).toBe(long);
    expect(decode(encodeHealthRequest('grpc.health.v1.Health')).service).toBe('grpc.health.v1.Health');
  });

  it('decode every serving status as protobuf encodes it', () => {
    const encode = HealthClient.service.Watch!.responseSerialize as (m: { status: ServingStatus }) => Buffer;
    for (const name of ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const) {
      expect(decodeHealthResponse(encode({ status: name }))).toBe(name);
    }
  });

  it('skip unknown fields, read an unknown enum value as UNKNOWN, and refuse bytes that are no message', () => {
    // field 2 varint 7, field 3 bytes "ab", field 4 fixed32, field 5 fixed64, then status 1 (SERVING)
    const withUnknown = Buffer.from([0x10, 7, 0x1a, 2, 0x61, 0x62, 0x25, 1, 2, 3, 4, 0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 1]);
    expect(decodeHealthResponse(withUnknown)).toBe('SERVING');
    expect(decodeHealthResponse(Buffer.from([0x08, 9]))).toBe('UNKNOWN');
    expect(decodeHealthResponse(Buffer.from([0x08, 0x96, 0x01]))).toBe('UNKNOWN');
    expect(() => decodeHealthResponse(Buffer.from([0x08]))).toThrow('truncated varint');
    expect(() => decodeHealthResponse(Buffer.from([0x1a, 5, 0x61]))).toThrow('truncated field');
    expect(() => decodeHealthResponse(Buffer.from([0x0b]))).toThrow('wire type 3');
  });
});

describe('a connection', () => {
  it('starts its Watch when READY, shows CONNECTING until the first report, then READY with the reported health', () => {
    const sub = new FakeSubchannel('10.0.0.1:1');
    const { wrapper, seen } = use(checker(), sub);
    expect(calls).toHaveLength(0);
    sub.set(connectivityState.CONNECTING);
    sub.set(connectivityState.READY);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.serviceName).toBe('svc');
    expect(wrapper.getConnectivityState()).toBe(connectivityState.CONNECTING);
    calls[0]!.listener.report('NOT_SERVING');
    // pick_first reads the health when it sees READY: it must already be false.
    expect(seen).toEqual([
      { state: connectivityState.CONNECTING, healthy: true },
      { state: connectivityState.READY, healthy: false },
    ]);
    expect(reports).toEqual([{ address: '10.0.0.1:1', serviceName: 'svc', status: 'NOT_SERVING', serving: false, code: undefined }]);
    calls[0]!.listener.report('SERVING');
    expect(wrapper.isHealthy()).toBe(true);
    calls[0]!.listener.report('SERVICE_UNKNOWN');
    expect(wrapper.isHealthy()).toBe(false);
    calls[0]!.listener.report('UNKNOWN');
    expect(wrapper.isHealthy()).toBe(false);
    expect(reports.map((r) => r.status)).toEqual(['NOT_SERVING', 'SERVING', 'SERVICE_UNKNOWN', 'UNKNOWN']);
  });

  it('without the health service (UNIMPLEMENTED) counts as healthy, is not retried, and says so once', () => {
    const sub = new FakeSubchannel('10.0.0.1:1');
    const { wrapper, seen } = use(checker(), sub);
    sub.set(connectivityState.READY);
    calls[0]!.listener.ended(status.UNIMPLEMENTED);
    expect(seen.at(-1)).toEqual({ state: connectivityState.READY, healthy: true });
    expect(wrapper.isHealthy()).toBe(true);
    vi.advanceTimersByTime(600_000);
    expect(calls).toHaveLength(1);
    expect(reports).toEqual([{ address: '10.0.0.1:1', serviceName: 'svc', status: 'UNIMPLEMENTED', serving: true, code: undefined }]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a Watch that ends otherwise is retried with backoff (1 s, x1.6, jittered), unhealthy meanwhile', () => {
    let random = 0.5;
    const sub = new FakeSubchannel('10.0.0.1:1');
    const { wrapper } = use(
      checker(() => random),
      sub,
    );
    sub.set(connectivityState.READY);
    calls[0]!.listener.ended(status.UNAVAILABLE);
    expect(wrapper.isHealthy()).toBe(false);
    expect(wrapper.getConnectivityState()).toBe(connectivityState.READY);
    expect(reports.at(-1)).toEqual({
      address: '10.0.0.1:1',
      serviceName: 'svc',
      status: 'WATCH_FAILED',
      serving: false,
      code: status.UNAVAILABLE,
    });
    vi.advanceTimersByTime(999);
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(2);
    // The second failure waits 1.6 s; with the most jitter (random 1: +20 %), 1.92 s.
    random = 1;
    calls[1]!.listener.ended(status.INTERNAL);
    vi.advanceTimersByTime(1_919);
    expect(calls).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(3);
    // A call that delivered a report resets the backoff: the next one starts at once.
    calls[2]!.listener.report('SERVING');
    expect(wrapper.isHealthy()).toBe(true);
    calls[2]!.listener.ended(status.OK);
    expect(wrapper.isHealthy()).toBe(false);
    vi.advanceTimersByTime(0);
    expect(calls).toHaveLength(4);
    // ... and the one after that waits the initial 1 s again (random 0: -20 %, 800 ms).
    random = 0;
    calls[3]!.listener.ended(status.UNAVAILABLE);
    vi.advanceTimersByTime(799);
    expect(calls).toHaveLength(4);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(5);
  });

  it('that goes cancels its Watch and its retry timer; the next connection starts over', () => {
    const sub = new FakeSubchannel('10.0.0.1:1');
    const { wrapper } = use(checker(), sub);
    sub.set(connectivityState.READY);
    calls[0]!.listener.report('NOT_SERVING');
    sub.set(connectivityState.IDLE);
    expect(calls[0]!.cancelled).toBe(true);
    // A late report of the old call changes nothing.
    calls[0]!.listener.report('SERVING');
    expect(reports.map((r) => r.status)).toEqual(['NOT_SERVING']);
    sub.set(connectivityState.READY);
    expect(calls).toHaveLength(2);
    expect(wrapper.getConnectivityState()).toBe(connectivityState.CONNECTING);
    calls[1]!.listener.ended(status.UNAVAILABLE);
    expect(vi.getTimerCount()).toBe(1);
    sub.set(connectivityState.TRANSIENT_FAILURE);
    expect(vi.getTimerCount()).toBe(0);
    expect(wrapper.getConnectivityState()).toBe(connectivityState.TRANSIENT_FAILURE);
  });

  it('a stream that ends because the connection is going is not a failed Watch', () => {
    const sub = new FakeSubchannel('10.0.0.1:1');
    use(checker(), sub);
    sub.set(connectivityState.READY);
    calls[0]!.listener.report('SERVING');
    sub.state = connectivityState.IDLE; // the transport is gone; the state change is on its way
    calls[0]!.listener.ended(status.UNAVAILABLE);
    expect(reports.map((r) => r.status)).toEqual(['SERVING']);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('wrappers of one connection', () => {
  it('share one Watch; a wrapper made for a connection already watched shows its health at once', () => {
    const health = checker();
    const sub = new FakeSubchannel('10.0.0.1:1');
    sub.state = connectivityState.READY;
    const first = use(health, sub);
    expect(calls).toHaveLength(1);
    calls[0]!.listener.report('NOT_SERVING');
    const second = health.wrap(sub as unknown as SubchannelInterface);
    expect(second.getConnectivityState()).toBe(connectivityState.READY);
    expect(second.isHealthy()).toBe(false);
    second.ref();
    expect(calls).toHaveLength(1);
    calls[0]!.listener.report('SERVING');
    expect([first.wrapper.isHealthy(), second.isHealthy()]).toEqual([true, true]);
  });

  it("survive round_robin's resolver updates: the last unref stops the Watch only if no new wrapper took it in the same turn", () => {
    const health = checker();
    const sub = new FakeSubchannel('10.0.0.1:1');
    sub.state = connectivityState.READY;
    const old = use(health, sub);
    calls[0]!.listener.report('SERVING');
    // The update: old leaves destroyed, new ones made, synchronously.
    old.wrapper.unref();
    const next = use(health, sub);
    vi.runAllTimers();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.cancelled).toBe(false);
    expect(next.wrapper.getConnectivityState()).toBe(connectivityState.READY);
    // The last one goes: the Watch stops a turn later, and its listener is removed.
    next.wrapper.unref();
    expect(calls[0]!.cancelled).toBe(false);
    vi.runAllTimers();
    expect(calls[0]!.cancelled).toBe(true);
    // Left: the two wrappers' forwarders, each there while pick_first's listener is.
    expect(sub.listeners.size).toBe(2);
  });

  it('destroy() cancels every Watch and timer at once', () => {
    const health = checker();
    const a = new FakeSubchannel('10.0.0.1:1');
    const b = new FakeSubchannel('10.0.0.2:1');
    use(health, a);
    use(health, b);
    a.set(connectivityState.READY);
    b.set(connectivityState.READY);
    calls[1]!.listener.ended(status.UNAVAILABLE);
    expect(vi.getTimerCount()).toBe(1);
    health.destroy();
    // a's call is cancelled; b's had ended, and its retry timer is gone.
    expect(calls.map((c) => c.cancelled)).toEqual([true, false]);
    expect(vi.getTimerCount()).toBe(0);
    a.set(connectivityState.IDLE);
    a.set(connectivityState.READY);
    expect(calls).toHaveLength(2);
  });
});
