import { experimental, type ChannelOptions, type Metadata } from '@grpc/grpc-js';
import type { EndpointTracker } from './endpoint-ejection.js';
import { HealthChecker, healthSink } from './health-check.js';
import type { AttemptOutcome } from '../core/status-meaning.js';

// The package's load-balancing policy, registered with grpc-js's experimental LB API: a thin
// parent over a child policy (round_robin by default) whose picker skips the endpoints that
// endpoint-ejection.ts has ejected, and tells each attempt which endpoint it went to, so the
// attempt's outcome, judged by the call layer, is booked against that endpoint. grpc-js still
// owns every connection, reconnection and the child's spreading; nothing here dials anything.
//
// How an attempt and its pick meet: the call layer puts a token in the attempt's request
// metadata (ATTEMPT_KEY); the picker takes it out again before the call goes on the wire, and
// fills the attempt's link with the endpoint and the tracker. grpc-js gives the picker the
// attempt's metadata and nothing else of the call.

/** The name under which the policy is registered with grpc-js. */
export const POLICY_NAME = 'resilient_grpc_endpoints';
const ATTEMPT_KEY = 'x-resilient-grpc-attempt';

/** Where an attempt went, filled by the picker. */
export interface AttemptLink {
  readonly token: string;
  /** An endpoint to avoid if another can take the attempt: where the call's last attempt failed. */
  readonly avoid: string | undefined;
  address: string | undefined;
  tracker: EndpointTracker | undefined;
}

/**
 * Shared through a global symbol, so that the ESM and the CJS builds of the package in one
 * process (each registering the policy; the last one wins in grpc-js) see the same links and trackers.
 */
interface Registry {
  links: Map<string, AttemptLink>;
  trackers: Map<number, EndpointTracker>;
  nextToken: number;
  nextTracker: number;
  registered: boolean;
}
const REGISTRY_KEY = Symbol.for('resilient-grpc.endpoint-lb');
const registry: Registry = ((globalThis as Record<symbol, unknown>)[REGISTRY_KEY] ??= {
  links: new Map(),
  trackers: new Map(),
  nextToken: 1,
  nextTracker: 1,
  registered: false,
}) as Registry;

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
 * The `loadBalancingConfig` entry of a channel under the policy: over `child`, with the channel's
 * tracker (none: no ejection) and health checking when asked for.
 */
export function policyConfig(
  trackerId: number | undefined,
  child: readonly object[] = [{ round_robin: {} }],
  health?: PolicyHealthCheck,
): object {
  const healthCheck = health === undefined ? undefined : { service_name: health.serviceName, sink: health.sink };
  return { [POLICY_NAME]: { tracker: trackerId, child_policy: child, health_check: healthCheck } };
}

/**
 * The channel options with the policy as the service config's `loadBalancingConfig`, over the
 * user's own `loadBalancingConfig` when there is one (it stays the child that spreads the
 * calls), else over round_robin.
 */
export function withPolicy(options: ChannelOptions, trackerId: number | undefined, health?: PolicyHealthCheck): ChannelOptions {
  const raw = options['grpc.service_config'];
  const config = typeof raw === 'string' ? (JSON.parse(raw) as Record<string, unknown>) : {};
  const own = config.loadBalancingConfig;
  const child = Array.isArray(own) && own.length > 0 ? (own as object[]) : undefined;
  const loadBalancingConfig = [policyConfig(trackerId, child, health)];
  return { ...options, 'grpc.service_config': JSON.stringify({ ...config, loadBalancingConfig }) };
}

/**
 * Starts the link of an attempt: the token goes into its request metadata, or later with
 * `tagAttempt` (an attempt with interceptors tags a copy innermost, so that no interceptor sees
 * the token). `avoid` is the endpoint where the call's last attempt failed: a retry goes
 * elsewhere when it can.
 */
export function linkAttempt(metadata: Metadata | undefined, avoid?: string): AttemptLink {
  const link: AttemptLink = { token: String(registry.nextToken++), avoid, address: undefined, tracker: undefined };
  registry.links.set(link.token, link);
  if (metadata !== undefined) tagAttempt(metadata, link);
  return link;
}

/** Puts an attempt's token into request metadata, for the picker to find and take out. */
export function tagAttempt(metadata: Metadata, link: AttemptLink): void {
  metadata.set(ATTEMPT_KEY, link.token);
}

/** The attempt is over: books its outcome against its endpoint, and forgets the link. */
export function endAttempt(link: AttemptLink, outcome: AttemptOutcome): void {
  registry.links.delete(link.token);
  if (link.address !== undefined) link.tracker?.record(link.address, outcome);
}

type Picker = experimental.Picker;
type PickArgs = experimental.PickArgs;
type PickResult = experimental.PickResult;
type ChannelControlHelper = experimental.ChannelControlHelper;
type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;

class EndpointsConfig implements TypedLoadBalancingConfig {
  constructor(
    readonly trackerId: number | undefined,
    readonly child: TypedLoadBalancingConfig,
    readonly rawChild: object[],
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
    if (!Array.isArray(json.child_policy)) throw new Error(`${POLICY_NAME}: child_policy must be an array`);
    const child = experimental.selectLbConfigFromList(json.child_policy);
    if (child === null) throw new Error(`${POLICY_NAME}: no child policy grpc-js knows`);
    return new EndpointsConfig(json.tracker, child, json.child_policy as object[], readHealthCheck(json.health_check));
  }
}

function readHealthCheck(json: unknown): PolicyHealthCheck | undefined {
  if (json === undefined) return undefined;
  const { service_name: serviceName, sink } = (json ?? {}) as { service_name?: unknown; sink?: unknown };
  if (typeof serviceName !== 'string') throw new Error(`${POLICY_NAME}: health_check.service_name must be a string`);
  if (sink !== undefined && typeof sink !== 'number') throw new Error(`${POLICY_NAME}: health_check.sink must be a number`);
  return { serviceName, sink };
}

class EndpointsPicker implements Picker {
  constructor(
    readonly child: Picker,
    readonly tracker: EndpointTracker | undefined,
    /** Endpoints in the child's rotation: how many picks it takes to go round once. */
    readonly endpoints: number,
  ) {}

  pick(args: PickArgs): PickResult {
    let result = this.child.pick(args);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE || result.subchannel === null) return result;
    const token = args.metadata.get(ATTEMPT_KEY)[0];
    const link = typeof token === 'string' ? registry.links.get(token) : undefined;
    const avoid = link?.avoid;
    if (this.#shunned(result.subchannel.getAddress(), avoid)) {
      // The child (round_robin) moves on at every pick: going round once finds another endpoint,
      // if any. When every endpoint is shunned, the first pick stands.
      for (let i = 1; i < this.endpoints; i++) {
        const next = this.child.pick(args);
        if (next.pickResultType !== experimental.PickResultType.COMPLETE || next.subchannel === null) break;
        if (!this.#shunned(next.subchannel.getAddress(), avoid)) {
          result = next;
          break;
        }
      }
    }
    // Only a complete pick takes the token out: a queued pick is picked again with the same metadata.
    args.metadata.remove(ATTEMPT_KEY);
    if (link !== undefined) {
      link.address = result.subchannel!.getAddress();
      link.tracker = this.tracker;
    }
    return result;
  }

  /** An ejected endpoint, or the one a retry should avoid. */
  #shunned(address: string, avoid: string | undefined): boolean {
    return address === avoid || this.tracker?.isEjected(address) === true;
  }
}

class EndpointsBalancer implements experimental.LoadBalancer {
  readonly #child: InstanceType<typeof experimental.ChildLoadBalancerHandler>;
  #tracker: EndpointTracker | undefined;
  #endpoints = 1;
  /** Health checking of the subchannels the child creates (health-check.ts), when the config asks for it. */
  #health: HealthChecker | undefined;

  constructor(helper: ChannelControlHelper) {
    this.#child = new experimental.ChildLoadBalancerHandler(
      experimental.createChildChannelControlHelper(helper, {
        updateState: (state, picker, message) =>
          helper.updateState(state, new EndpointsPicker(picker, this.#tracker, this.#endpoints), message),
        createSubchannel: (address, args) => {
          const subchannel = helper.createSubchannel(address, args);
          return this.#health?.wrap(subchannel) ?? subchannel;
        },
      }),
    );
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
    if (endpoints.ok) {
      const addresses = endpoints.value.flatMap((endpoint) =>
        endpoint.addresses.map((address) => experimental.subchannelAddressToString(address)),
      );
      this.#endpoints = Math.max(1, endpoints.value.length);
      this.#tracker?.setAddresses(addresses);
    }
    return this.#child.updateAddressList(endpoints, config.child, options, note);
  }

  exitIdle(): void {
    this.#child.exitIdle();
  }

  resetBackoff(): void {
    this.#child.resetBackoff();
  }

  destroy(): void {
    this.#child.destroy();
    this.#health?.destroy();
  }

  /**
   * Health checking starts with the first config that asks for it, and keeps its checker (and its
   * streams) while later configs ask for the same. A17: pick_first does not health-check (it
   * would stick to an unhealthy endpoint rather than move), so a pick_first child gets none.
   */
  #updateHealth(config: EndpointsConfig): void {
    const wanted = config.health !== undefined && config.child.getLoadBalancerName() !== 'pick_first' ? config.health : undefined;
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
