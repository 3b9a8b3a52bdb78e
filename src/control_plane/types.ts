/**
 * The contracts between the control plane's parts: the resource source the xDS servers (gRPC ADS, per-type,
 * REST) serve from, and the mesh state they report ACKs, NACKs and connections to. Kept free of
 * implementation so the servers, the snapshot cache and the tests depend only on this file.
 */
import type { RawAny } from "../xds/codec/discovery.ts";
import { TYPE_URLS } from "../xds/types.ts";

/** The Secret type URL (SDS). */
export const SECRET_TYPE_URL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/** Every type the control plane serves, in the order an ADS stream pushes a change: make before break. */
export const PUSH_ORDER: readonly string[] = [
  SECRET_TYPE_URL,
  TYPE_URLS.cluster,
  TYPE_URLS.endpoint,
  TYPE_URLS.listener,
  TYPE_URLS.route,
];

/** The node a request names (envoy.config.core.v3.Node, the fields the control plane reads). */
export interface NodeInfo {
  /** node.id: one proxy. */
  id: string;
  /** node.cluster: the service the proxy fronts (the manifest it gets), or the edge's name. */
  cluster: string;
  /** node.user_agent_name and version, for the mesh report. */
  userAgent?: string;
  /** node.locality.zone, when given. */
  zone?: string;
}

/** One resource ready to send: its content version and the encoded message. */
export interface ResourceEntry {
  /** Content hash of the resource (hex). */
  version: string;
  /** The resource as an Any: type URL and the encoded message. */
  any: RawAny;
}

/**
 * What the xDS servers serve from. `resolve` answers the current resources of a type for a node: for
 * `names` null (a wildcard subscription) every resource of that type the node's snapshot has; otherwise those
 * of `names` that exist (names it cannot serve are absent from the map). It may read the registry, so it is
 * asynchronous; it never throws for a missing resource.
 */
export interface XdsSource {
  resolve(
    node: NodeInfo,
    typeUrl: string,
    names: readonly string[] | null,
  ): Promise<Map<string, ResourceEntry>>;
  /**
   * Told when resources may have changed: the node clusters (`NodeInfo.cluster`) affected, or null for
   * every node. Streams of those nodes resolve what they watch again and send what changed.
   */
  readonly changeListeners: Set<(nodeClusters: ReadonlySet<string> | null) => void>;
}

/** Where the xDS servers report what proxies do (the mesh coverage report reads it). */
export interface MeshObserver {
  /** A stream (gRPC) or a poll (REST) of `node` began; `stream` identifies it until `disconnected`. */
  connected(
    node: NodeInfo,
    stream: string,
    transport: "ads" | "delta-ads" | "grpc" | "delta-grpc" | "rest",
  ): void;
  /** The stream ended. */
  disconnected(node: NodeInfo, stream: string): void;
  /** A response of `typeUrl` at `version` was sent to `node`. */
  sent(node: NodeInfo, typeUrl: string, version: string): void;
  /** `node` ACKed `version` of `typeUrl`. */
  acked(node: NodeInfo, typeUrl: string, version: string): void;
  /** `node` NACKed `version` of `typeUrl` with `message`; it keeps its last accepted one. */
  nacked(node: NodeInfo, typeUrl: string, version: string, message: string): void;
}
