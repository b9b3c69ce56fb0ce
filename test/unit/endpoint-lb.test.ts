import { connectivityState, experimental, Metadata, status, type ChannelOptions } from '@grpc/grpc-js';
import { beforeEach, describe, expect, test, vi } from 'vitest';
import { EndpointTracker, type EjectionSettings } from '../../src/channel/endpoint-ejection.js';
import {
  endAttempt,
  judgeAttempt,
  linkAttempt,
  ownPolicyName,
  policyConfig,
  POLICY_NAME,
  registerTracker,
  unregisterTracker,
  withPolicy,
  type AttemptLink,
} from '../../src/channel/endpoint-lb.js';

// The package's LB policy without a grpc-js channel. The picker is reachable only through the
// registered policy, so the balancer is built the way grpc-js builds a child policy: an
// `experimental.ChildLoadBalancerHandler` (grpc-js 1.14.7 does not export createLoadBalancer
// through `experimental`; the handler calls it) given `parseLoadBalancingConfig(policyConfig(..))`
// over a fake child policy, registered here, whose picker cycles over fake subchannels like
// round_robin. The picker the policy hands up is the one the fake helper's updateState gets.

const ATTEMPT_KEY = 'x-resilient-grpc-attempt';
const A = '10.0.0.1:50051';
const B = '10.0.0.2:50051';
const C = '10.0.0.3:50051';

type Picker = experimental.Picker;
type PickResult = experimental.PickResult;

interface FakeSubchannel {
  getAddress(): string;
}

/** The fake child policy's state, for the test to drive: the picks its picker made, and QUEUE mode. */
const fakeChild = { picks: 0, queue: false, instances: [] as FakeChildBalancer[] };

class FakePicker implements Picker {
  #next = 0;
  constructor(readonly subchannels: readonly FakeSubchannel[]) {}

  pick(): PickResult {
    fakeChild.picks++;
    if (fakeChild.queue)
      return { pickResultType: experimental.PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
    const subchannel = this.subchannels[this.#next]!;
    this.#next = (this.#next + 1) % this.subchannels.length;
    return {
      pickResultType: experimental.PickResultType.COMPLETE,
      subchannel: subchannel as unknown as experimental.SubchannelInterface,
      status: null,
      onCallStarted: null,
      onCallEnded: null,
    };
  }
}

class FakeChildConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return 'test_fake_child';
  }
  toJsonObject(): object {
    return { test_fake_child: {} };
  }
  static createFromJson(): FakeChildConfig {
    return new FakeChildConfig();
  }
}

class FakeChildBalancer implements experimental.LoadBalancer {
  constructor(readonly helper: experimental.ChannelControlHelper) {
    fakeChild.instances.push(this);
  }
  updateAddressList(endpoints: experimental.StatusOr<experimental.Endpoint[]>): boolean {
    if (!endpoints.ok) return false;
    const subchannels = endpoints.value.map((endpoint) => {
      const address = experimental.subchannelAddressToString(endpoint.addresses[0]!);
      return { getAddress: () => address };
    });
    this.helper.updateState(connectivityState.READY, new FakePicker(subchannels), null);
    return true;
  }
  exitIdle(): void {}
  resetBackoff(): void {}
  destroy(): void {}
  getTypeName(): string {
    return 'test_fake_child';
  }
}

experimental.registerLoadBalancerType('test_fake_child', FakeChildBalancer, FakeChildConfig);

const SETTINGS: EjectionSettings = {
  intervalMs: 1_000,
  failurePercentage: 50,
  requestVolume: 1,
  baseEjectionTimeMs: 10_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionPercent: 50,
  consecutiveFailures: 0,
};

let now: number;

function tracker(): EndpointTracker {
  return new EndpointTracker(
    'dns:///svc:50051',
    SETTINGS,
    () => {},
    () => now,
  );
}

function endpoint(address: string): experimental.Endpoint {
  const [host, port] = address.split(':');
  return { addresses: [{ host: host!, port: Number(port) }] };
}

/** The policy over the fake child, fed `addresses`; returns the picker it handed up. */
function balancer(trackerId: number, addresses: readonly string[]): { picker: () => Picker; states: number[] } {
  const pickers: Picker[] = [];
  const states: number[] = [];
  const helper: experimental.ChannelControlHelper = {
    createSubchannel: () => {
      throw new Error('the policy must not dial: the child makes subchannels');
    },
    updateState: (state, picker) => {
      states.push(state);
      pickers.push(picker);
    },
    requestReresolution: () => {},
    addChannelzChild: () => {},
    removeChannelzChild: () => {},
  };
  const handler = new experimental.ChildLoadBalancerHandler(helper);
  const config = parse(policyConfig(trackerId, [{ test_fake_child: {} }]));
  expect(config.getLoadBalancerName()).toBe(POLICY_NAME);
  expect(handler.updateAddressList(experimental.statusOrFromValue(addresses.map(endpoint)), config, {}, '')).toBe(true);
  return { picker: () => pickers.at(-1)!, states };
}

/** grpc-js's own parsing of a `loadBalancingConfig` entry (typed there as a string-keyed record). */
function parse(json: object): experimental.TypedLoadBalancingConfig {
  return experimental.parseLoadBalancingConfig(json as Parameters<typeof experimental.parseLoadBalancingConfig>[0]);
}

function pickArgs(metadata = new Metadata()): experimental.PickArgs {
  return { metadata, extraPickInfo: {} };
}

function addressOf(result: PickResult): string | undefined {
  return (result.subchannel as unknown as FakeSubchannel | null)?.getAddress();
}

/** Ejects `address` in `t`: one interval in which it failed every attempt and the others succeeded. */
function eject(t: EndpointTracker, address: string, others: readonly string[]): void {
  // Only endpoints of the resolver's list are booked: make sure these are in it.
  t.setAddresses([...new Set([...t.stats().map((s) => s.address), address, ...others])]);
  t.record(address, 'failure');
  for (const other of others) t.record(other, 'success');
  now += SETTINGS.intervalMs;
  expect(t.isEjected(address)).toBe(true);
}

beforeEach(() => {
  now = 5_000_000;
  fakeChild.picks = 0;
  fakeChild.queue = false;
});

describe('policyConfig and withPolicy', () => {
  test('policyConfig: the policy as a leaf by default, or over a child; both parsed by grpc-js', () => {
    const id = registerTracker(tracker());
    expect(policyConfig(id)).toEqual({ [POLICY_NAME]: { tracker: id } });
    for (const json of [policyConfig(id), policyConfig(id, [{ round_robin: {} }])]) {
      const config = parse(json);
      expect(config.getLoadBalancerName()).toBe(POLICY_NAME);
      expect(config.toJsonObject()).toEqual(json);
    }
    expect(policyConfig(id, [{ round_robin: {} }])).toEqual({ [POLICY_NAME]: { tracker: id, child_policy: [{ round_robin: {} }] } });
  });

  test('grpc-js refuses a config without a number tracker, with a child that is not a list, or no known child', () => {
    registerTracker(tracker());
    expect(() => parse({ [POLICY_NAME]: { tracker: '1', child_policy: [] } })).toThrow(/tracker must be a number/);
    expect(() => parse({ [POLICY_NAME]: { tracker: 1, child_policy: { round_robin: {} } } })).toThrow(/child_policy must be an array/);
    expect(() => parse({ [POLICY_NAME]: { tracker: 1, child_policy: [{ no_such_policy: {} }] } })).toThrow(/no child policy/);
  });

  test('withPolicy without a service config: the policy as the leaf; other options kept, the input untouched', () => {
    const options: ChannelOptions = { 'grpc.keepalive_time_ms': 10_000 };
    const out = withPolicy(options, 7);
    expect(options).toEqual({ 'grpc.keepalive_time_ms': 10_000 });
    expect(out['grpc.keepalive_time_ms']).toBe(10_000);
    expect(JSON.parse(out['grpc.service_config'] as string)).toEqual({ loadBalancingConfig: [policyConfig(7)] });
  });

  test("withPolicy keeps the user's own loadBalancingConfig as the child, and every other service config field", () => {
    const own = [{ weighted_round_robin: {} }, { round_robin: {} }];
    const methodConfig = [{ name: [{ service: 'a.B' }], timeout: '1s' }];
    const serviceConfig = { loadBalancingConfig: own, methodConfig, retryThrottling: { maxTokens: 10, tokenRatio: 0.1 } };
    const out = withPolicy({ 'grpc.service_config': JSON.stringify(serviceConfig) }, 3);
    expect(JSON.parse(out['grpc.service_config'] as string)).toEqual({ ...serviceConfig, loadBalancingConfig: [policyConfig(3, own)] });
  });

  test('withPolicy with an empty loadBalancingConfig, or a service config without one: the policy as the leaf', () => {
    const methodConfig = [{ name: [{}], waitForReady: true }];
    for (const serviceConfig of [{ loadBalancingConfig: [], methodConfig }, { methodConfig }]) {
      const out = withPolicy({ 'grpc.service_config': JSON.stringify(serviceConfig) }, 4);
      expect(JSON.parse(out['grpc.service_config'] as string)).toEqual({ methodConfig, loadBalancingConfig: [policyConfig(4)] });
    }
  });

  test("the user's child list is parsed by grpc-js: the first policy it knows is the child", () => {
    const id = registerTracker(tracker());
    const out = withPolicy(
      { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ no_such_policy: {} }, { round_robin: {} }] }) },
      id,
    );
    const [entry] = (JSON.parse(out['grpc.service_config'] as string) as { loadBalancingConfig: object[] }).loadBalancingConfig;
    expect(parse(entry!).getLoadBalancerName()).toBe(POLICY_NAME);
  });

  test("ownPolicyName: the first policy grpc-js knows in the user's list, undefined without one", () => {
    const withConfig = (lb: object[]): ChannelOptions => ({ 'grpc.service_config': JSON.stringify({ loadBalancingConfig: lb }) });
    expect(ownPolicyName({})).toBeUndefined();
    expect(ownPolicyName(withConfig([]))).toBeUndefined();
    expect(ownPolicyName(withConfig([{ no_such_policy: {} }, { pick_first: {} }]))).toBe('pick_first');
    expect(ownPolicyName(withConfig([{ round_robin: {} }]))).toBe('round_robin');
    expect(ownPolicyName(withConfig([{ no_such_policy: {} }]))).toBeUndefined();
  });
});

describe('linkAttempt, judgeAttempt and endAttempt', () => {
  test('linkAttempt puts a fresh token in the metadata, with the endpoint to avoid', () => {
    const m1 = new Metadata();
    const m2 = new Metadata();
    const l1 = linkAttempt(m1);
    const l2 = linkAttempt(m2, A);
    expect(m1.get(ATTEMPT_KEY)).toEqual([l1.token]);
    expect(m2.get(ATTEMPT_KEY)).toEqual([l2.token]);
    expect(l1.token).not.toBe(l2.token);
    expect(l1).toMatchObject({ avoid: undefined, address: undefined, tracker: undefined, book: undefined, probe: false });
    expect(l2.avoid).toBe(A);
    endAttempt(l1);
    endAttempt(l2);
  });

  test('judgeAttempt books the outcome against link.address on link.tracker', () => {
    const t = tracker();
    t.setAddresses([A, B]);
    const link: AttemptLink = { ...linkAttempt(new Metadata()), address: A, tracker: t };
    judgeAttempt(link, 'failure');
    endAttempt(link);
    const record = vi.spyOn(t, 'record');
    judgeAttempt({ token: 'x', avoid: undefined, address: B, tracker: t, book: undefined, pickedAt: 0, probe: false }, 'success');
    expect(record).toHaveBeenCalledWith(B, 'success', false);
    expect(t.stats()).toMatchObject([
      { address: A, attempts: 1, failures: 1 },
      { address: B, attempts: 1, failures: 0 },
    ]);
  });

  test('judgeAttempt and endAttempt of a link that never got an endpoint book nothing', () => {
    const t = tracker();
    const record = vi.spyOn(t, 'record');
    const link = linkAttempt(new Metadata());
    link.tracker = t;
    judgeAttempt(link, 'failure');
    endAttempt(link);
    expect(record).not.toHaveBeenCalled();
  });
});

describe('the picker', () => {
  test('the policy hands up the child’s state with its own picker, and gives the tracker the addresses', () => {
    const t = tracker();
    const { picker, states } = balancer(registerTracker(t), [B, A, C]);
    expect(states).toEqual([connectivityState.READY]);
    expect(picker()).not.toBeInstanceOf(FakePicker);
    expect(t.stats().map((s) => s.address)).toEqual([A, B, C]);
  });

  test('without ejections it passes the child’s picks through, in the child’s order', () => {
    const { picker } = balancer(registerTracker(tracker()), [A, B, C]);
    const picked = Array.from({ length: 6 }, () => addressOf(picker().pick(pickArgs())));
    expect(picked).toEqual([A, B, C, A, B, C]);
    expect(fakeChild.picks).toBe(6);
  });

  test('an ejected endpoint is skipped, going round once', () => {
    const t = tracker();
    const { picker } = balancer(registerTracker(t), [A, B, C]);
    eject(t, B, [A, C]);
    const picked = Array.from({ length: 6 }, () => addressOf(picker().pick(pickArgs())));
    expect(picked).toEqual([A, C, A, C, A, C]);
    // Every other pick hit B first and took one more child pick: 6 + 3.
    expect(fakeChild.picks).toBe(9);
  });

  test("an attempt's `avoid` address is skipped when another endpoint can take it", () => {
    const { picker } = balancer(registerTracker(tracker()), [A, B]);
    const picked: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) {
      const link = linkAttempt(new Metadata(), A);
      const metadata = new Metadata();
      metadata.set(ATTEMPT_KEY, link.token);
      picked.push(addressOf(picker().pick(pickArgs(metadata))));
      expect(link.address).toBe(B);
      endAttempt(link);
    }
    expect(picked).toEqual([B, B, B, B]);
  });

  test('an ejected endpoint and the avoided one are both skipped', () => {
    const t = tracker();
    const { picker } = balancer(registerTracker(t), [A, B, C]);
    eject(t, A, [B, C]);
    for (let i = 0; i < 3; i++) {
      const metadata = new Metadata();
      const link = linkAttempt(metadata, B);
      expect(addressOf(picker().pick(pickArgs(metadata)))).toBe(C);
      endAttempt(link);
    }
  });

  test('when every endpoint is shunned the first pick stands, after going round once', () => {
    const t = tracker();
    const { picker } = balancer(registerTracker(t), [A, B]);
    eject(t, A, [B]);
    const metadata = new Metadata();
    const link = linkAttempt(metadata, B);
    // The child's next pick is A (ejected), then B (avoided): the first, A, stands.
    expect(addressOf(picker().pick(pickArgs(metadata)))).toBe(A);
    expect(fakeChild.picks).toBe(2);
    expect(link.address).toBe(A);
    endAttempt(link);
    // With one endpoint, avoiding it leaves it: there is nowhere else to go.
    const single = balancer(registerTracker(tracker()), [C]);
    fakeChild.picks = 0;
    const m = new Metadata();
    const l = linkAttempt(m, C);
    expect(addressOf(single.picker().pick(pickArgs(m)))).toBe(C);
    expect(fakeChild.picks).toBe(1);
    endAttempt(l);
  });

  test('a complete pick takes the token out of the metadata and fills link.address and link.tracker', () => {
    const t = tracker();
    const { picker } = balancer(registerTracker(t), [A, B]);
    const metadata = new Metadata();
    metadata.set('x-user', 'kept');
    const link = linkAttempt(metadata);
    const result = picker().pick(pickArgs(metadata));
    expect(result.pickResultType).toBe(experimental.PickResultType.COMPLETE);
    expect(metadata.get(ATTEMPT_KEY)).toEqual([]);
    expect(metadata.get('x-user')).toEqual(['kept']);
    expect(link.address).toBe(A);
    expect(link.tracker).toBe(t);
    // The attempt's outcome then goes to the endpoint it went to.
    judgeAttempt(link, 'failure');
    endAttempt(link);
    expect(t.stats().find((s) => s.address === A)).toMatchObject({ attempts: 1, failures: 1 });
  });

  test('a QUEUE pick keeps the token, so the pick made again later finds the link', () => {
    const t = tracker();
    const { picker } = balancer(registerTracker(t), [A, B]);
    const metadata = new Metadata();
    const link = linkAttempt(metadata);
    fakeChild.queue = true;
    const queued = picker().pick(pickArgs(metadata));
    expect(queued.pickResultType).toBe(experimental.PickResultType.QUEUE);
    expect(metadata.get(ATTEMPT_KEY)).toEqual([link.token]);
    expect(link.address).toBeUndefined();
    fakeChild.queue = false;
    expect(addressOf(picker().pick(pickArgs(metadata)))).toBe(A);
    expect(metadata.get(ATTEMPT_KEY)).toEqual([]);
    expect(link).toMatchObject({ address: A, tracker: t });
    endAttempt(link);
  });

  test('a pick without a token, or with the token of an ended attempt, fills no link', () => {
    const { picker } = balancer(registerTracker(tracker()), [A, B]);
    expect(addressOf(picker().pick(pickArgs()))).toBe(A);
    const metadata = new Metadata();
    const link = linkAttempt(metadata, B);
    endAttempt(link);
    // The link is forgotten: its `avoid` no longer applies and its address is not filled.
    expect(addressOf(picker().pick(pickArgs(metadata)))).toBe(B);
    expect(link.address).toBeUndefined();
    expect(metadata.get(ATTEMPT_KEY)).toEqual([]);
  });

  test('with its tracker unregistered the policy still spreads calls, skipping nothing but `avoid`', () => {
    const t = tracker();
    const id = registerTracker(t);
    eject(t, A, [B]);
    unregisterTracker(id);
    const { picker } = balancer(id, [A, B]);
    expect([addressOf(picker().pick(pickArgs())), addressOf(picker().pick(pickArgs()))]).toEqual([A, B]);
    const metadata = new Metadata();
    const link = linkAttempt(metadata, A);
    expect(addressOf(picker().pick(pickArgs(metadata)))).toBe(B);
    expect(link.tracker).toBeUndefined();
    judgeAttempt(link, 'failure');
    endAttempt(link);
  });

  test('an IPv6 endpoint is booked and skipped under the address the subchannel reports', () => {
    const v6a = '[::1]:50051';
    const v6b = '[::2]:50051';
    const t = tracker();
    const pickers: Picker[] = [];
    const helper = {
      createSubchannel: () => null,
      updateState: (_s: number, p: Picker) => pickers.push(p),
      requestReresolution: () => {},
      addChannelzChild: () => {},
      removeChannelzChild: () => {},
    };
    const handler = new experimental.ChildLoadBalancerHandler(helper as unknown as experimental.ChannelControlHelper);
    const endpoints = [{ addresses: [{ host: '::1', port: 50051 }] }, { addresses: [{ host: '::2', port: 50051 }] }];
    handler.updateAddressList(
      experimental.statusOrFromValue(endpoints),
      parse(policyConfig(registerTracker(t), [{ test_fake_child: {} }])),
      {},
      '',
    );
    expect(t.stats().map((s) => s.address)).toEqual([v6a, v6b]);
    eject(t, v6a, [v6b]);
    expect(addressOf(pickers.at(-1)!.pick(pickArgs()))).toBe(v6b);
  });

  test('a resolver error goes to the child, and the tracker keeps its books', () => {
    const t = tracker();
    const id = registerTracker(t);
    const pickers: Picker[] = [];
    const helper = {
      createSubchannel: () => null,
      updateState: (_s: number, p: Picker) => pickers.push(p),
      requestReresolution: () => {},
      addChannelzChild: () => {},
      removeChannelzChild: () => {},
    };
    const handler = new experimental.ChildLoadBalancerHandler(helper as unknown as experimental.ChannelControlHelper);
    const config = parse(policyConfig(id, [{ test_fake_child: {} }]));
    handler.updateAddressList(experimental.statusOrFromValue([endpoint(A), endpoint(B)]), config, {}, '');
    const error = experimental.statusOrFromError<experimental.Endpoint[]>({
      code: status.UNAVAILABLE,
      details: 'resolution failed',
      metadata: new Metadata(),
    });
    // The fake child answers false to an error, as a policy with nothing to serve would.
    expect(handler.updateAddressList(error, config, {}, '')).toBe(false);
    expect(t.stats().map((s) => s.address)).toEqual([A, B]);
  });
});
