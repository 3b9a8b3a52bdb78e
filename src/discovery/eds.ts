/**
 * The registry's hosts as Envoy v3 EDS: one ClusterLoadAssignment per service (cluster_name = the service),
 * endpoints grouped by locality {region: tags.region, zone: tags.az}, each locality weighted by the sum of its
 * hosts' weights (Envoy drops unweighted localities when locality weighting is on, and grpc-js-xds needs the
 * weight), each host weighted by tags.load_balancing_weight or 1. The version is a content hash, so replicas
 * agree and a poll with the current version can be answered "not modified". Transport-free: the REST handler
 * below uses it, and a gRPC (ADS) server can reuse `buildEdsSnapshot`.
 */
import { xxhash64Hex } from "../common/xxhash64.ts";
import type { Registry } from "./registry.ts";
import { BadRequestError, type HostRecord } from "./types.ts";

/** Envoy's ClusterLoadAssignment type URL. */
export const CLA_TYPE_URL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/** A ClusterLoadAssignment in proto3 JSON form. */
export interface ClusterLoadAssignmentJson {
  cluster_name: string;
  endpoints: {
    locality?: { region?: string; zone?: string };
    load_balancing_weight: number;
    lb_endpoints: {
      endpoint: { address: { socket_address: { address: string; port_value: number } } };
      /** `envoy.lb.canary`: the host's canary tag (false when absent), for subset load balancing. */
      metadata: { filter_metadata: { "envoy.lb": { canary: boolean } } };
      load_balancing_weight: number;
    }[];
  }[];
}

/** A set of assignments and their content version. */
export interface EdsSnapshot {
  version: string;
  resources: ClusterLoadAssignmentJson[];
}

/** Builds the assignment of `service` from its live hosts (any order; output is sorted). */
export function loadAssignment(service: string, hosts: readonly HostRecord[]): ClusterLoadAssignmentJson {
  const groups = new Map<string, { region?: string; zone?: string; hosts: HostRecord[] }>();
  for (const h of hosts) {
    const region = h.tags.region || undefined;
    const zone = h.tags.az || undefined;
    const key = `${region ?? ""}\n${zone ?? ""}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = { region, zone, hosts: [] });
    g.hosts.push(h);
  }
  const keys = [...groups.keys()].sort();
  return {
    cluster_name: service,
    endpoints: keys.map((k) => {
      const g = groups.get(k)!;
      const sorted = [...g.hosts].sort((a, b) =>
        a.ip_address === b.ip_address ? a.port - b.port : a.ip_address < b.ip_address ? -1 : 1
      );
      const lbEndpoints = sorted.map((h) => ({
        endpoint: { address: { socket_address: { address: h.ip_address, port_value: h.port } } },
        metadata: { filter_metadata: { "envoy.lb": { canary: h.tags.canary === true } } },
        load_balancing_weight: h.tags.load_balancing_weight ?? 1,
      }));
      const locality = g.region === undefined && g.zone === undefined ? undefined : {
        ...(g.region !== undefined ? { region: g.region } : {}),
        ...(g.zone !== undefined ? { zone: g.zone } : {}),
      };
      return {
        ...(locality ? { locality } : {}),
        load_balancing_weight: lbEndpoints.reduce((n, e) => n + e.load_balancing_weight, 0),
        lb_endpoints: lbEndpoints,
      };
    }),
  };
}

/** Builds the snapshot of `services` (name -> live hosts), in the order given; the version hashes the content. */
export function buildEdsSnapshot(services: Iterable<[string, readonly HostRecord[]]>): EdsSnapshot {
  const resources = [...services].map(([name, hosts]) => loadAssignment(name, hosts));
  const version = xxhash64Hex(JSON.stringify(resources));
  return { version, resources };
}

/** The answer to one REST EDS poll: 200 with a DiscoveryResponse, or 304 when the version is unchanged. */
export interface EdsAnswer {
  status: 200 | 304;
  /** The DiscoveryResponse (absent on 304). */
  body?: Record<string, unknown>;
  /** True when some service was answered from the cache because the store failed. */
  stale: boolean;
  version: string;
}

let nonce = 0;

/**
 * Answers a DiscoveryRequest (parsed JSON) from `registry`: the named services (every service when none is
 * named, as a wildcard). Throws BadRequestError on a malformed request, StoreUnavailableError when the store
 * fails and a service has no cached answer (the client then keeps what it has).
 */
export async function answerEdsRequest(registry: Registry, request: unknown): Promise<EdsAnswer> {
  if (!request || typeof request !== "object" || Array.isArray(request)) {
    throw new BadRequestError("DiscoveryRequest must be a JSON object");
  }
  const req = request as Record<string, unknown>;
  if (req.type_url !== undefined && req.type_url !== CLA_TYPE_URL) {
    throw new BadRequestError(`type_url must be ${CLA_TYPE_URL}, not ${JSON.stringify(req.type_url)}`);
  }
  const names = req.resource_names ?? [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
    throw new BadRequestError("resource_names must be an array of strings");
  }
  const wanted = names.length > 0 ? [...new Set(names as string[])] : await registry.services();
  let stale = false;
  const reads: [string, HostRecord[]][] = [];
  for (const name of wanted) {
    const r = await registry.hosts(name);
    stale ||= r.stale;
    reads.push([name, r.hosts]);
  }
  const snap = buildEdsSnapshot(reads);
  if (typeof req.version_info === "string" && req.version_info === snap.version) {
    return { status: 304, stale, version: snap.version };
  }
  return {
    status: 200,
    stale,
    version: snap.version,
    body: {
      version_info: snap.version,
      type_url: CLA_TYPE_URL,
      resources: snap.resources.map((r) => ({ "@type": CLA_TYPE_URL, ...r })),
      nonce: String(++nonce),
    },
  };
}
