// A small xDS control plane in this process, on 127.0.0.1: one ADS stream per client
// (envoy.service.discovery.v3.AggregatedDiscoveryService, state of the world), serving the four
// resource types a grpc-js-xds client asks for, built from the envoy protos @grpc/grpc-js-xds
// ships under its deps/:
//
//   LDS  one Listener per name, an api_listener holding an HttpConnectionManager (router filter)
//        that points at a route configuration over RDS
//   RDS  one RouteConfiguration: every path to one cluster, optionally with a route retry policy
//   CDS  one Cluster of type EDS, round robin
//   EDS  one ClusterLoadAssignment: one locality holding the backends' loopback addresses
//
//   const plane = await startControlPlane({ listener: 'listener1', backends: [a.port, b.port] });
//   channelOptions: { [XDS_BOOTSTRAP_OPTION]: plane.bootstrap }   // per channel, tests only
//   plane.setBackends([c.port]);                  // an EDS update, pushed to every stream
//   plane.setRetryPolicy({ numRetries: 2 });      // an RDS update: the route retries
//
// Every change bumps the version of its type and is pushed to the streams that watch it. The
// plane counts what it saw (streams open now and in all, NACKs) so a test can tell a rejected
// resource from a slow one.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** grpc-js-xds's per-channel bootstrap option (resolver-xds.ts), meant for tests only. */
export const XDS_BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoints: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;
const HTTP_CONNECTION_MANAGER = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

const ROUTE_NAME = 'route1';
const CLUSTER_NAME = 'cluster1';

/** A route retry policy (envoy's RetryPolicy, as grpc-js-xds reads it). */
export interface RouteRetryPolicy {
  /** Retries after the first attempt: maxAttempts on the wire is numRetries + 1. */
  numRetries: number;
  /** envoy `retry_on`, as grpc names the codes. Default: 'unavailable'. */
  retryOn?: string;
  /** First backoff, in ms. Default: 10. */
  baseIntervalMs?: number;
}

export interface ControlPlaneOptions {
  /** Listener names served (the path of `xds:///NAME`). Default: ['listener1']. */
  listeners?: readonly string[];
  /** Ports of loopback backends for EDS. */
  backends: readonly number[];
  retryPolicy?: RouteRetryPolicy | undefined;
}

export interface ControlPlane {
  readonly port: number;
  /** A bootstrap JSON pointing at this plane, for {@link XDS_BOOTSTRAP_OPTION}. */
  readonly bootstrap: string;
  /** ADS streams open now. */
  readonly openStreams: number;
  /** ADS streams opened so far. */
  readonly streamsOpened: number;
  /** NACKs received (the client refused a resource), with its reason. */
  readonly nacks: readonly string[];
  /** Replaces the backends (an EDS update). */
  setBackends(ports: readonly number[]): void;
  /** Sets or clears the route's retry policy (an RDS update). */
  setRetryPolicy(policy: RouteRetryPolicy | undefined): void;
  /** Closes every stream and stops the server. Idempotent. */
  close(): Promise<void>;
}

type TypeUrl = (typeof TYPE)[keyof typeof TYPE];
type Resource = Record<string, unknown>;

interface Stream {
  call: grpc.ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>;
  /** The version last sent per type; undefined until the client asks for the type. */
  sent: Map<TypeUrl, number>;
  nonce: number;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const listeners = options.listeners ?? ['listener1'];
  let backends = [...options.backends];
  let retryPolicy = options.retryPolicy;
  const version: Record<TypeUrl, number> = { [TYPE.listener]: 1, [TYPE.route]: 1, [TYPE.cluster]: 1, [TYPE.endpoints]: 1 };
  const streams = new Set<Stream>();
  const nacks: string[] = [];
  let streamsOpened = 0;

  const resourcesOf = (type: TypeUrl): Resource[] => {
    switch (type) {
      case TYPE.listener:
        return listeners.map(listenerResource);
      case TYPE.route:
        return [routeResource(retryPolicy)];
      case TYPE.cluster:
        return [clusterResource()];
      case TYPE.endpoints:
        return [endpointsResource(backends)];
    }
  };
  const send = (stream: Stream, type: TypeUrl): void => {
    stream.sent.set(type, version[type]);
    stream.call.write({
      version_info: String(version[type]),
      type_url: type,
      nonce: String(++stream.nonce),
      resources: resourcesOf(type).map((resource) => ({ '@type': type, ...resource })),
    });
  };
  const changed = (type: TypeUrl): void => {
    version[type]++;
    for (const stream of streams) if (stream.sent.has(type)) send(stream, type);
  };

  const server = new grpc.Server();
  server.addService(adsService(), {
    StreamAggregatedResources(call: Stream['call']) {
      const stream: Stream = { call, sent: new Map(), nonce: 0 };
      streams.add(stream);
      streamsOpened++;
      const forget = () => streams.delete(stream);
      call.on('data', (request: Record<string, unknown>) => {
        const type = request.type_url as TypeUrl;
        if (!Object.values(TYPE).includes(type)) return;
        const error = request.error_detail as { message?: string } | null | undefined;
        if (error) nacks.push(`${type}: ${error.message ?? ''}`);
        // Answer a new subscription, or one that has not seen the current version yet; an ACK
        // of what was sent needs nothing.
        if (stream.sent.get(type) !== version[type] || request.response_nonce === '') send(stream, type);
      });
      call.on('end', () => {
        forget();
        call.end();
      });
      call.on('error', forget);
      call.on('cancelled', forget);
      call.on('close', forget);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  let closing: Promise<void> | undefined;
  return {
    port,
    bootstrap: JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'resilient-grpc-test', locality: {} },
    }),
    get openStreams() {
      return streams.size;
    },
    get streamsOpened() {
      return streamsOpened;
    },
    nacks,
    setBackends(ports) {
      backends = [...ports];
      changed(TYPE.endpoints);
    },
    setRetryPolicy(policy) {
      retryPolicy = policy;
      changed(TYPE.route);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const stream of streams) stream.call.end();
        streams.clear();
        server.forceShutdown();
        resolve();
      });
      return closing;
    },
  };
}

function listenerResource(name: string): Resource {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': HTTP_CONNECTION_MANAGER,
        rds: { route_config_name: ROUTE_NAME, config_source: { ads: {} } },
        http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }],
      },
    },
  };
}

function routeResource(retryPolicy: RouteRetryPolicy | undefined): Resource {
  const route: Resource = { cluster: CLUSTER_NAME };
  if (retryPolicy !== undefined) {
    const baseMs = retryPolicy.baseIntervalMs ?? 10;
    route.retry_policy = {
      retry_on: retryPolicy.retryOn ?? 'unavailable',
      num_retries: { value: retryPolicy.numRetries },
      retry_back_off: { base_interval: { seconds: Math.floor(baseMs / 1000), nanos: (baseMs % 1000) * 1_000_000 } },
    };
  }
  return {
    name: ROUTE_NAME,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '' }, route }] }],
  };
}

function clusterResource(): Resource {
  return {
    name: CLUSTER_NAME,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, service_name: CLUSTER_NAME },
    lb_policy: 'ROUND_ROBIN',
  };
}

function endpointsResource(ports: readonly number[]): Resource {
  return {
    cluster_name: CLUSTER_NAME,
    endpoints: [
      {
        locality: { region: 'loopback', zone: 'a', sub_zone: '' },
        // gRPC drops a locality without a weight.
        load_balancing_weight: { value: 1 },
        lb_endpoints: ports.map((port) => ({
          endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } },
          health_status: 'HEALTHY',
        })),
      },
    ],
  };
}

let adsDefinition: grpc.ServiceDefinition | undefined;

/**
 * The ADS service, with every resource type in the same protobuf root so that a resource
 * written as `{ '@type': URL, ...fields }` is packed into its `Any` by protobufjs.
 */
function adsService(): grpc.ServiceDefinition {
  if (adsDefinition !== undefined) return adsDefinition;
  const require = createRequire(import.meta.url);
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const definition = protoLoader.loadSync(
    [
      'envoy/service/discovery/v3/ads.proto',
      'envoy/config/listener/v3/listener.proto',
      'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
      'envoy/extensions/filters/http/router/v3/router.proto',
      'envoy/config/route/v3/route.proto',
      'envoy/config/cluster/v3/cluster.proto',
      'envoy/config/endpoint/v3/endpoint.proto',
    ],
    {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      json: true,
      includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((dir) => path.join(deps, dir)),
    },
  );
  const service = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  adsDefinition = service.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
  return adsDefinition;
}
