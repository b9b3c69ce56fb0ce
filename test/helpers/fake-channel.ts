import { connectivityState, type ChannelCredentials, type ChannelOptions, type Client } from '@grpc/grpc-js';
import { BucketRotation } from '../../src/channel/circuit-breaker.js';
import { EventSource } from '../../src/events/events.js';
import type { ChannelContext, ChannelFactory, ChannelLike } from '../../src/channel/managed-channel.js';

// Fake grpc-js channels for unit tests: their connectivity is set by the test, nothing opens a
// socket. The state callbacks run synchronously, which grpc-js does not promise; the managed
// channel must not care.

/** A channel whose connectivity the test sets with `setState()`. */
export class FakeChannel implements ChannelLike {
  state: connectivityState = connectivityState.IDLE;
  closed = false;
  readonly #watchers: Array<{ from: connectivityState; callback: (error?: Error) => void }> = [];

  constructor(
    readonly target: string,
    readonly options: ChannelOptions,
  ) {}

  getTarget(): string {
    return this.target;
  }

  getConnectivityState(): connectivityState {
    return this.state;
  }

  watchConnectivityState(current: connectivityState, _deadline: Date | number, callback: (error?: Error) => void): void {
    if (current !== this.state) {
      callback();
      return;
    }
    this.#watchers.push({ from: current, callback });
  }

  /** How many state watches are pending. */
  get watchers(): number {
    return this.#watchers.length;
  }

  setState(state: connectivityState): void {
    if (state === this.state) return;
    this.state = state;
    for (const { callback } of this.#watchers.splice(0)) callback();
  }

  close(): void {
    this.closed = true;
    this.setState(connectivityState.SHUTDOWN);
  }
}

/** A factory of fake channels, with a record of every channel it made and the arguments. */
export interface FakeFactory {
  factory: ChannelFactory;
  made: Array<{ target: string; credentials: ChannelCredentials; options: ChannelOptions; channel: FakeChannel; client: Client }>;
  /** The last channel made. */
  readonly last: FakeChannel;
}

/** `client`: the client each fake channel gets (a unit test's scripted wire); a dummy by default. */
export function fakeFactory(client?: () => Client): FakeFactory {
  const made: FakeFactory['made'] = [];
  return {
    made,
    factory: (target, credentials, options) => {
      const channel = new FakeChannel(target, options);
      // A dummy client unless the test scripts one: most of these tests make no call.
      const made1 = client?.() ?? ({ fakeClientOf: channel } as unknown as Client);
      made.push({ target, credentials, options, channel, client: made1 });
      return { channel, client: made1 };
    },
    get last() {
      const entry = made.at(-1);
      if (entry === undefined) throw new Error('no channel made yet');
      return entry.channel;
    },
  };
}

/** A ChannelContext built by hand around a factory. */
export function channelContext(factory: ChannelFactory, overrides: Partial<ChannelContext> = {}): ChannelContext {
  return {
    throttling: { maxTokens: 10, tokenRatio: 0.1 },
    connectTimeoutMs: false,
    rotation: new BucketRotation(),
    factory,
    onChannelStateChange: new EventSource('onChannelStateChange'),
    onChannelReplaced: new EventSource('onChannelReplaced'),
    onBreakerStateChange: new EventSource('onBreakerStateChange'),
    onEndpointEjection: new EventSource('onEndpointEjection'),
    onEndpointHealth: new EventSource('onEndpointHealth'),
    ...overrides,
  };
}
