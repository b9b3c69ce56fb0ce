// Prototype: the smallest LB policy that lets grpc-js's own outlier_detection count calls by OUR
// classification instead of "every non-OK status is a failure".
//
// Policy `resilient_filter` { child_policy: [ <any config, e.g. outlier_detection over round_robin> ] }:
// a pass-through parent (ChildLoadBalancerHandler) whose picker wraps the child's PickResult and
// replaces onCallEnded(statusCode, details, trailers): it reads the attempt's token (a request
// metadata key the call layer sets, removed here so it never goes on the wire), looks the attempt
// up in a registry the call layer fills (messages received, ended by us), classifies, and then
// calls the child's onCallEnded with OK (healthy), the real code (failure), or NOT AT ALL (neutral:
// counts neither way and not as volume).
import * as grpc from '@grpc/grpc-js';

const { ChildLoadBalancerHandler, createChildChannelControlHelper, registerLoadBalancerType, selectLbConfigFromList, PickResultType } =
  grpc.experimental;
type Picker = grpc.experimental.Picker;
type PickArgs = grpc.experimental.PickArgs;
type PickResult = grpc.experimental.PickResult;
type TypedLoadBalancingConfig = grpc.experimental.TypedLoadBalancingConfig;
type ChannelControlHelper = grpc.experimental.ChannelControlHelper;
type Endpoint = grpc.experimental.Endpoint;

export const TOKEN_KEY = 'x-resilient-attempt';
export const POLICY_NAME = 'resilient_filter';

/** What the call layer knows about an attempt that the LB layer cannot see. */
export interface AttemptContext {
  shape: 'unary' | 'server-stream' | 'client-stream' | 'bidi';
  messagesReceived: number;
  /** We ended it: caller abort, parent cancelled, pool close, reader left. */
  endedByUs: boolean;
  /** Filled by the picker: the endpoint the attempt used. */
  address?: string;
  verdict?: Verdict;
}
export type Verdict = 'healthy' | 'failure' | 'neutral';

export const attempts = new Map<string, AttemptContext>();

/** The one classification (the real one lives in a status module shared with breaker and retry). */
export function classify(code: grpc.status, ctx: AttemptContext | undefined): Verdict {
  if (ctx?.endedByUs) return 'neutral';
  if (code === grpc.status.OK) return 'healthy';
  // A stream that delivered messages and then hit its own deadline was served.
  if (code === grpc.status.DEADLINE_EXCEEDED && ctx && ctx.shape !== 'unary' && ctx.messagesReceived > 0) return 'healthy';
  switch (code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
    case grpc.status.DATA_LOSS:
    case grpc.status.RESOURCE_EXHAUSTED:
      return 'failure';
    case grpc.status.CANCELLED:
      return ctx ? 'neutral' : 'failure'; // no context: we cannot tell who cancelled; stay conservative
    default:
      return 'healthy'; // NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED...: the server decided
  }
}

class FilterConfig implements TypedLoadBalancingConfig {
  constructor(readonly child: TypedLoadBalancingConfig) {}
  getLoadBalancerName() {
    return POLICY_NAME;
  }
  toJsonObject() {
    return { [POLICY_NAME]: { child_policy: [this.child.toJsonObject()] } };
  }
  static createFromJson(obj: { child_policy?: unknown }) {
    if (!Array.isArray(obj.child_policy)) throw new Error('child_policy must be an array');
    const child = selectLbConfigFromList(obj.child_policy);
    if (!child) throw new Error('child_policy: no valid recognized policy found');
    return new FilterConfig(child);
  }
}

class FilterPicker implements Picker {
  constructor(private readonly child: Picker) {}
  pick(args: PickArgs): PickResult {
    const token = args.metadata.get(TOKEN_KEY)[0];
    args.metadata.remove(TOKEN_KEY); // args.metadata is the attempt's final metadata: keep it off the wire
    const result = this.child.pick(args);
    if (result.pickResultType !== PickResultType.COMPLETE) return result;
    const ctx = typeof token === 'string' ? attempts.get(token) : undefined;
    if (ctx && result.subchannel) ctx.address = result.subchannel.getAddress();
    const inner = (result as { onCallEnded: ((c: grpc.status, d: string, m: grpc.Metadata) => void) | null }).onCallEnded;
    if (!inner) return result;
    return {
      ...result,
      onCallEnded: (code: grpc.status, details: string, trailers: grpc.Metadata) => {
        const verdict = classify(code, ctx);
        if (ctx) ctx.verdict = verdict;
        if (verdict === 'healthy') inner(grpc.status.OK, details, trailers);
        else if (verdict === 'failure') inner(code, details, trailers);
        // neutral: not counted at all
      },
    } as PickResult;
  }
}

class FilterBalancer implements grpc.experimental.LoadBalancer {
  private readonly child: InstanceType<typeof ChildLoadBalancerHandler>;
  constructor(helper: ChannelControlHelper) {
    this.child = new ChildLoadBalancerHandler(
      createChildChannelControlHelper(helper, {
        updateState: (state, picker, message) => helper.updateState(state, new FilterPicker(picker), message),
      }),
    );
  }
  updateAddressList(endpoints: grpc.experimental.StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: grpc.ChannelOptions, note: string) {
    if (!(config instanceof FilterConfig)) return false;
    return this.child.updateAddressList(endpoints, config.child, options, note);
  }
  exitIdle() {
    this.child.exitIdle();
  }
  resetBackoff() {
    this.child.resetBackoff();
  }
  destroy() {
    this.child.destroy();
  }
  getTypeName() {
    return POLICY_NAME;
  }
}

export function registerFilterPolicy(): void {
  registerLoadBalancerType(POLICY_NAME, FilterBalancer, FilterConfig);
}
