import { connectivityState, experimental, type ChannelOptions } from '@grpc/grpc-js';
import type { EndpointTracker } from './endpoint-ejection.js';
import { registry } from './endpoint-link.js';
import { HealthChecker, healthSink } from './health-check.js';
import { LeastRequestPicker, ShunningPicker, type PickEntry } from './endpoint-picker.js';

// The package's load-balancing policy, registered with grpc-js's experimental LB API. grpc-js
// still owns every connection, reconnection and backoff; nothing here dials anything.
//
// Two shapes, chosen by the channel's service config:
// - No loadBalancingConfig of the user's own: the policy is a leaf policy itself, as grpc-js's
//   round_robin is. One `experimental.LeafLoadBalancer` (a pick_first over one endpoint) per
//   endpoint keeps that endpoint connected; the policy is READY when any endpoint is, and its
//   picker (LeastRequestPicker, endpoint-picker.ts) chooses among the READY endpoints by
//   least outstanding attempts over two random choices (gRFC A48), skipping what the books
//   (endpoint-ejection.ts) do not admit.
// - The user's own loadBalancingConfig: it stays the child that spreads the calls, and the
//   policy a thin parent over it (ShunningPicker) that skips what the books do not admit. A
//   child that is pick_first sticks to one endpoint, and ejection cannot act on it.
// In both, the picker tells each attempt which endpoint it went to (endpoint-link.ts), so that
// the attempt's outcome, judged by the call layer, is booked against that endpoint. With
// client-side health checking (health-check.ts), every subchannel created under the policy is
// wrapped by the health checker: a NOT_SERVING endpoint's leaf leaves READY (grpc-js's pick_first
// reports its health), and the books hear it through `setServing`. A channel may have the policy
// for health checking alone (no tracker: no ejection, no books).
//
// Just over 300 lines on purpose: grpc-js's LB API asks for a config class, a balancer and its
// state aggregation together; the pickers and the attempt link are already files of their own.

/** The name under which the policy is registered with grpc-js. */
export const POLICY_NAME = 'resilient_grpc_endpoints';

export {
  attemptHeard,
  endAttempt,
  judgeAttempt,
  linkAttempt,
  tagAttempt,
  type AttemptLink,
} from './endpoint-link.js';

/** Makes a tracker reachable from the LB config of its channel; returns its id. */
export function registerTracker(tracker: EndpointTracker): number {
  ensurePolicy();
  const id = registry.nextTracker++;
  registry.trackers.set(id, tracker);
  return id;
}

export function unregisterTracker(id: number): void {
  registry.trackers.delete(id);
}

/** Client-side health checking under the policy (health-check.ts): the service name, and the channel's sink by id. */
export interface PolicyHealthCheck {
  serviceName: string;
  sink: number | undefined;
}

/**
 * The `loadBalancingConfig` entry of a channel under the policy: the policy as a leaf, or over
 * `child`; with the channel's tracker (none: no ejection) and health checking when asked for.
 */
export function policyConfig(trackerId: number | undefined, child?: readonly object[], health?: PolicyHealthCheck): object {
  const json: Record<string, unknown> = {};
  if (trackerId !== undefined) json.tracker = trackerId;
  if (child !== undefined) json.child_policy = child;
  if (health !== undefined) json.health_check = { service_name: health.serviceName, sink: health.sink };
  return { [POLICY_NAME]: json };
}

/** The user's own `loadBalancingConfig` in the channel options, when it lists anything. */
function ownPolicies(options: ChannelOptions): { config: Record<string, unknown>; own: object[] | undefined } {
  const raw = options['grpc.service_config'];
  const config = typeof raw === 'string' ? (JSON.parse(raw) as Record<string, unknown>) : {};
  const own = config.loadBalancingConfig;
  return { config, own: Array.isArray(own) && own.length > 0 ? (own as object[]) : undefined };
}

/**
 * The channel options with the policy as the service config's `loadBalancingConfig`: over the
 * user's own `loadBalancingConfig` when there is one (it stays the child that spreads the
 * calls), else as the leaf policy itself.
 */
export function withPolicy(options: ChannelOptions, trackerId: number | undefined, health?: PolicyHealthCheck): ChannelOptions {
  // A channel under the policy for health checking alone registers no tracker: register the policy here too.
  ensurePolicy();
  const { config, own } = ownPolicies(options);
  const loadBalancingConfig = [policyConfig(trackerId, own, health)];
  return { ...options, 'grpc.service_config': JSON.stringify({ ...config, loadBalancingConfig }) };
}

/**
 * The name of the policy grpc-js will use from the user's own `loadBalancingConfig` (the first
 * one it knows), or undefined when there is none: `'pick_first'` means ejection cannot act.
 */
export function ownPolicyName(options: ChannelOptions): string | undefined {
  const { own } = ownPolicies(options);
  return own === undefined
    ? undefined
    : (experimental.selectLbConfigFromList(own as Parameters<typeof experimental.selectLbConfigFromList>[0])?.getLoadBalancerName() ??
        undefined);
}

type ChannelControlHelper = experimental.ChannelControlHelper;
type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;

class EndpointsConfig implements TypedLoadBalancingConfig {
  constructor(
    /** The channel's books; undefined: health checking alone, no ejection. */
    readonly trackerId: number | undefined,
    /** The user's policy the calls are spread by; undefined: the policy is the leaf policy. */
    readonly child: TypedLoadBalancingConfig | undefined,
    readonly rawChild: object[] | undefined,
    readonly health?: PolicyHealthCheck,
  ) {}

  getLoadBalancerName(): string {
    return POLICY_NAME;
  }

  toJsonObject(): object {
    return policyConfig(this.trackerId, this.rawChild, this.health);
  }

  static createFromJson(json: { tracker?: unknown; child_policy?: unknown; health_check?: unknown }): EndpointsConfig {
    if (json.tracker !== undefined && typeof json.tracker !== 'number') throw new Error(`${POLICY_NAME}: tracker must be a number`);
    const health = readHealthCheck(json.health_check);
    if (json.child_policy === undefined) return new EndpointsConfig(json.tracker, undefined, undefined, health);
    if (!Array.isArray(json.child_policy)) throw new Error(`${POLICY_NAME}: child_policy must be an array`);
    const child = experimental.selectLbConfigFromList(json.child_policy);
    if (child === null) throw new Error(`${POLICY_NAME}: no child policy grpc-js knows`);
    return new EndpointsConfig(json.tracker, child, json.child_policy as object[], health);
  }
}

function readHealthCheck(json: unknown): PolicyHealthCheck | undefined {
  if (json === undefined) return undefined;
  const { service_name: serviceName, sink } = (json ?? {}) as { service_name?: unknown; sink?: unknown };
  if (typeof serviceName !== 'string') throw new Error(`${POLICY_NAME}: health_check.service_name must be a string`);
  if (sink !== undefined && typeof sink !== 'number') throw new Error(`${POLICY_NAME}: health_check.sink must be a number`);
  return { serviceName, sink };
}

type LeafLoadBalancer = InstanceType<typeof experimental.LeafLoadBalancer>;

/** An endpoint's key in the books: its first address, `host:port` (grpc-js's resolvers give one per endpoint). */
function endpointKey(endpoint: experimental.Endpoint): string | undefined {
  const first = endpoint.addresses[0];
  return first === undefined ? undefined : experimental.subchannelAddressToString(first);
}

/**
 * The leaf shape of the policy: one LeafLoadBalancer per endpoint, kept across resolutions
 * while the endpoint stays listed, and a LeastRequestPicker over the READY ones. The state it
 * reports follows round_robin's: READY if any endpoint is, else CONNECTING if any is, else
 * TRANSIENT_FAILURE if any is, else IDLE; and every IDLE endpoint is asked to connect.
 */
class LeafEndpoints {
  #children = new Map<string, LeafLoadBalancer>();
  #state = connectivityState.IDLE;
  #paused = false;
  #lastError: string | null = null;
  readonly #childHelper: ChannelControlHelper;

  constructor(
    readonly helper: ChannelControlHelper,
    readonly owner: EndpointsBalancer,
  ) {
    // The one place the endpoints' pick_first leaves reach the channel (subchannels included).
    this.#childHelper = experimental.createChildChannelControlHelper(helper, {
      createSubchannel: (address, args) => owner.wrap(helper.createSubchannel(address, args)),
      updateState: (state, _picker, message) => {
        // As round_robin: a READY policy losing an endpoint asks for re-resolution.
        if (this.#state === connectivityState.READY && state !== connectivityState.READY) helper.requestReresolution();
        if (message) this.#lastError = message;
        this.#update();
      },
    });
  }

  updateAddressList(endpoints: experimental.StatusOr<experimental.Endpoint[]>, options: ChannelOptions, note: string): boolean {
    if (!endpoints.ok) {
      if (this.#children.size === 0) this.#set(connectivityState.TRANSIENT_FAILURE, endpoints.error.details);
      return true;
    }
    this.#paused = true;
    const next = new Map<string, LeafLoadBalancer>();
    for (const endpoint of endpoints.value) {
      const key = endpointKey(endpoint);
      if (key === undefined || next.has(key)) continue;
      let leaf = this.#children.get(key);
      if (leaf === undefined) {
        leaf = new experimental.LeafLoadBalancer(endpoint, this.#childHelper, options, note);
        leaf.startConnecting();
      } else {
        this.#children.delete(key);
        leaf.updateEndpoint(endpoint, options);
      }
      next.set(key, leaf);
    }
    for (const gone of this.#children.values()) gone.destroy();
    this.#children = next;
    this.#paused = false;
    if (next.size === 0) this.#set(connectivityState.TRANSIENT_FAILURE, `No addresses resolved. Resolution note: ${note}`);
    else this.#update();
    return true;
  }

  exitIdle(): void {
    for (const leaf of this.#children.values()) if (leaf.getConnectivityState() === connectivityState.IDLE) leaf.exitIdle();
  }

  destroy(): void {
    for (const leaf of this.#children.values()) leaf.destroy();
    this.#children.clear();
  }

  #update(): void {
    if (this.#paused) return;
    const tracker = this.owner.tracker;
    const ready: PickEntry[] = [];
    let connecting = false;
    let failing = false;
    for (const [address, leaf] of this.#children) {
      const state = leaf.getConnectivityState();
      if (state === connectivityState.READY) ready.push({ address, picker: leaf.getPicker(), book: tracker?.bookOf(address) });
      else if (state === connectivityState.CONNECTING) connecting = true;
      else if (state === connectivityState.TRANSIENT_FAILURE) failing = true;
    }
    if (ready.length > 0) this.#report(connectivityState.READY, new LeastRequestPicker(ready, tracker), null);
    else if (connecting) this.#report(connectivityState.CONNECTING, new experimental.QueuePicker(this.owner), null);
    else if (failing) this.#set(connectivityState.TRANSIENT_FAILURE, `No connection established. Last error: ${this.#lastError}`);
    else this.#report(connectivityState.IDLE, new experimental.QueuePicker(this.owner), null);
    this.exitIdle();
  }

  #set(state: connectivityState, details: string): void {
    this.#report(state, new experimental.UnavailablePicker({ details }), details);
  }

  #report(state: connectivityState, picker: experimental.Picker, message: string | null): void {
    this.#state = state;
    this.helper.updateState(state, picker, message);
  }
}

class EndpointsBalancer implements experimental.LoadBalancer {
  /** Over the user's own policy. */
  #child: InstanceType<typeof experimental.ChildLoadBalancerHandler> | undefined;
  /** The leaf shape. */
  #leaves: LeafEndpoints | undefined;
  #tracker: EndpointTracker | undefined;
  #endpoints = 1;
  /** Health checking of the subchannels created under the policy (health-check.ts), when the config asks for it. */
  #health: HealthChecker | undefined;

  constructor(readonly helper: ChannelControlHelper) {}

  get tracker(): EndpointTracker | undefined {
    return this.#tracker;
  }

  /** A subchannel made under the policy, wrapped for health checking when it is on. */
  wrap(subchannel: experimental.SubchannelInterface): experimental.SubchannelInterface {
    return this.#health?.wrap(subchannel) ?? subchannel;
  }

  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    config: TypedLoadBalancingConfig,
    options: ChannelOptions,
    note: string,
  ): boolean {
    if (!(config instanceof EndpointsConfig)) return false;
    this.#tracker = config.trackerId === undefined ? undefined : registry.trackers.get(config.trackerId);
    this.#updateHealth(config);
    const { child } = config;
    if (endpoints.ok) {
      // The leaf shape books an endpoint by its key; a child's picks are booked by the address picked.
      const addresses =
        child === undefined
          ? endpoints.value.flatMap((endpoint) => endpointKey(endpoint) ?? [])
          : endpoints.value.flatMap((endpoint) => endpoint.addresses.map((address) => experimental.subchannelAddressToString(address)));
      this.#endpoints = Math.max(1, endpoints.value.length);
      this.#tracker?.setAddresses(addresses);
    }
    if (child === undefined) {
      this.#child?.destroy();
      this.#child = undefined;
      this.#leaves ??= new LeafEndpoints(this.helper, this);
      return this.#leaves.updateAddressList(endpoints, options, note);
    }
    this.#leaves?.destroy();
    this.#leaves = undefined;
    this.#child ??= new experimental.ChildLoadBalancerHandler(
      experimental.createChildChannelControlHelper(this.helper, {
        updateState: (state, picker, message) =>
          this.helper.updateState(state, new ShunningPicker(picker, this.#tracker, this.#endpoints), message),
        createSubchannel: (address, args) => this.wrap(this.helper.createSubchannel(address, args)),
      }),
    );
    return this.#child.updateAddressList(endpoints, child, options, note);
  }

  exitIdle(): void {
    this.#child?.exitIdle();
    this.#leaves?.exitIdle();
  }

  resetBackoff(): void {
    this.#child?.resetBackoff();
  }

  destroy(): void {
    this.#child?.destroy();
    this.#leaves?.destroy();
    this.#health?.destroy();
  }

  /**
   * Health checking starts with the first config that asks for it, and keeps its checker (and its
   * streams) while later configs ask for the same. A17: pick_first does not health-check (it
   * would stick to an unhealthy endpoint rather than move), so a pick_first child gets none; the
   * leaf shape does (its endpoints' pick_first leaves report health, as under round_robin).
   */
  #updateHealth(config: EndpointsConfig): void {
    const wanted = config.health !== undefined && config.child?.getLoadBalancerName() !== 'pick_first' ? config.health : undefined;
    const current = this.#health;
    if (current !== undefined && wanted?.serviceName === current.serviceName) return;
    current?.destroy();
    this.#health = wanted === undefined ? undefined : new HealthChecker(wanted.serviceName, healthSink(wanted.sink));
  }

  getTypeName(): string {
    return POLICY_NAME;
  }
}

/** Registers the policy with grpc-js once per process, on first use (never at import). */
function ensurePolicy(): void {
  if (registry.registered) return;
  registry.registered = true;
  experimental.registerLoadBalancerType(POLICY_NAME, EndpointsBalancer, EndpointsConfig);
}
