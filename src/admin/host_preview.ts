/**
 * The host a load balancer would pick now, previewed for admin `/debug/route` without moving any live balancer:
 * a throw-away balancer of the cluster's policy (priorities, panic threshold, locality weights) over the
 * cluster's current hosts and health. Hash policies (RING_HASH, MAGLEV) give the exact host; rotating and random
 * policies give a representative pick (each worker keeps its own rotation), which the answer says.
 */
import type { ClusterConfig } from "../upstream/config.ts";
import type { HostImpl } from "../upstream/host.ts";
import { lbBuilder } from "../upstream/lb/factory.ts";
import { PriorityLb } from "../upstream/lb/priority.ts";
import type { Cluster } from "../upstream/types.ts";

/** What the LB preview answers. */
export interface HostPreview {
  host: string | null;
  policy: string;
  healthy: number;
  total: number;
  reason: string;
  /** True when the pick moved no balancer state (always, except for hosts made per request). */
  sideEffectFree: boolean;
}

/** The host a fresh balancer of `cluster`'s policy picks over its current hosts (no live state moves). */
export function previewHost(cluster: Cluster, hash: bigint | undefined): HostPreview {
  const config = (cluster as { config?: ClusterConfig }).config;
  const hosts = cluster.hosts() as readonly HostImpl[];
  const healthy = hosts.filter((h) => h.healthy).length;
  const policy = config?.lb_policy ?? "ROUND_ROBIN";
  const base = { policy, healthy, total: hosts.length };
  if (cluster.connectsToOriginalDst) {
    return {
      ...base,
      host: null,
      reason: "ORIGINAL_DST: the host is each connection's original destination (made per request)",
      sideEffectFree: true,
    };
  }
  if (!config) {
    return { ...base, host: null, reason: "cluster configuration unknown", sideEffectFree: true };
  }
  const lb = new PriorityLb(hosts, {
    build: lbBuilder(config, Math.random),
    overprovisioning: config.load_assignment?.policy?.overprovisioning_factor ?? 140,
    panicThreshold: Math.min(100, config.common_lb_config?.healthy_panic_threshold?.value ?? 50),
    localityWeighted: config.common_lb_config?.locality_weighted_lb_config !== undefined,
    random: Math.random,
    zoneAware: null,
  });
  const h = lb.choose(hash === undefined ? {} : { hash }, 0);
  const notes: string[] = [];
  if (policy === "RING_HASH" || policy === "MAGLEV") {
    notes.push(
      hash === undefined
        ? "no hash from the route's hash_policy: a random host (as Envoy without a hash)"
        : `hash ${hash}: the same host every worker picks`,
    );
  } else if (policy === "ROUND_ROBIN") {
    notes.push(
      "a fresh rotation's first pick: each worker keeps its own rotation, so the next live pick may differ",
    );
  } else if (policy === "LEAST_REQUEST") {
    notes.push("least request over current active requests with random choices: live picks may differ");
  } else if (policy === "RANDOM") notes.push("random: live picks differ");
  if (lb.lastPanic) {
    notes.push(`panic mode: fewer healthy hosts than the panic threshold, all hosts eligible`);
  }
  if ((config as { lb_subset_config?: unknown }).lb_subset_config !== undefined) {
    notes.push("lb_subset_config is ignored by this preview");
  }
  if (
    (config as { common_lb_config?: { zone_aware_lb_config?: unknown } }).common_lb_config
      ?.zone_aware_lb_config
  ) {
    notes.push("zone aware routing is ignored by this preview");
  }
  return {
    ...base,
    host: h?.addressString ?? null,
    reason: h === null ? "no usable host (503 UH would follow)" : notes.join("; "),
    sideEffectFree: true,
  };
}
