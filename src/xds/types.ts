/** xDS contracts shared by subscriptions and transports: type URLs, wire shapes, updates, the transport interface. */

/** The v3 resource type URLs nuncio subscribes to. */
export const TYPE_URLS = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
} as const;

/** One of the resource type URLs in TYPE_URLS. */
export type TypeUrl = typeof TYPE_URLS[keyof typeof TYPE_URLS];

/** The wrapper some servers put around each resource (envoy.service.discovery.v3.Resource). */
export const RESOURCE_WRAPPER_TYPE = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/** LDS and CDS are wildcard state-of-the-world types: a response carries the full set (absent = removed). */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TYPE_URLS.listener || typeUrl === TYPE_URLS.cluster;
}

/** The REST path of a type: `/v3/discovery:listeners` etc. */
export function restPath(typeUrl: TypeUrl): string {
  const kind = {
    [TYPE_URLS.listener]: "listeners",
    [TYPE_URLS.route]: "routes",
    [TYPE_URLS.cluster]: "clusters",
    [TYPE_URLS.endpoint]: "endpoints",
    [TYPE_URLS.secret]: "secrets",
  }[typeUrl];
  return `/v3/discovery:${kind}`;
}

/** envoy.config.core.v3.Node as sent in DiscoveryRequests (JSON form). */
export interface XdsNode {
  id?: string;
  cluster?: string;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  user_agent_version?: string;
}

/** google.rpc.Status carried by a NACK. */
export interface ErrorDetail {
  code: number;
  message: string;
}

/** envoy.service.discovery.v3.DiscoveryRequest in its JSON form (fields left out when empty, as proto3 JSON). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: XdsNode;
  resource_names?: string[];
  type_url: string;
  response_nonce?: string;
  error_detail?: ErrorDetail;
}

/** envoy.service.discovery.v3.DiscoveryResponse after decoding (resources: JSON objects with "@type"). */
export interface DiscoveryResponse {
  version_info: string;
  resources: unknown[];
  type_url: string;
  nonce: string;
}

/** A validated state-of-the-world update handed to the apply layer (resources without "@type"). */
export interface XdsUpdate {
  typeUrl: string;
  /** The response's version_info. */
  version: string;
  /** Resources in this response by name (for LDS/CDS the full set; for RDS/EDS only the named ones present). */
  resources: Map<string, unknown>;
  /** Names that were known before and are gone now (LDS/CDS only; RDS/EDS never remove by absence). */
  removed: string[];
}

/** Validates and applies an update: undefined when applied (ACK), else the reason it was rejected (NACK). */
export type ValidateAndApply = (update: XdsUpdate) => Promise<string | undefined>;

/** Why the initial fetch of a subscription completed. */
export type InitialFetchOutcome = "applied" | "rejected" | "timeout";

/** Where a management-server cluster is: the apply layer resolves it through the cluster manager. */
export interface ClusterAddress {
  host: string;
  port: number;
  tls?: boolean;
}

/** Resolves a static cluster name to one address; undefined when it has no usable host now. */
export type ResolveCluster = (clusterName: string) => ClusterAddress | undefined;

/** Random in [0, 1), injected so jitter is testable. */
export type RandomSource = () => number;

/**
 * What a transport (REST poller, file watcher, a future gRPC stream or ADS mux) does for one subscription:
 * it asks `DiscoveryStateMachine.request()` what to send, delivers responses to `handleResponse`, and reports
 * transport failures to `handleTransportFailure`. The subscription code never knows which transport it runs on.
 */
export interface XdsTransport {
  /** Starts fetching (first request now). */
  start(): void;
  /** The subscription's resource names changed: send a new request as soon as possible. */
  requestNow(): void;
  /** Stops for good; resolves when no timer, request or watcher is left. */
  close(): Promise<void>;
}
