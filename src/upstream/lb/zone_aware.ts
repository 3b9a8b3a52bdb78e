/**
 * Envoy's zone aware routing (ZoneAwareLoadBalancerBase): with `cluster_manager.local_cluster_name` set, the
 * hosts of that cluster say where the callers are, and each caller sends as much of its priority 0 traffic to
 * upstream hosts in its own locality as keeps every upstream host at about the same request rate. When the
 * local locality holds a larger share of the callers than of the upstream's healthy hosts, only part of the
 * traffic stays local and the rest goes to the localities with capacity left ("residual"), in proportion to it.
 *
 * The structures are computed when the upstream's or the local cluster's membership or health changes
 * (`zoneRouting`); `pickLocality` runs per request. Percentages are in 1/100 of a percent (0..10000), as Envoy.
 */
import { Counter, type Scope } from "../../stats/store.ts";
import type { HostImpl } from "../host.ts";
import type { Random } from "./lb.ts";

/** `cluster.<name>.lb_*` counters of zone aware routing. */
export interface ZoneStats {
  /** The routing structures were recomputed. */
  lb_recalculate_zone_structures: Counter;
  /** Not done: the upstream has fewer healthy priority 0 hosts than min_cluster_size. */
  lb_zone_cluster_too_small: Counter;
  /** The pick went to the local locality because it has enough capacity for all callers there. */
  lb_zone_routing_all_directly: Counter;
  /** The pick went to the local locality by sampling (only part of the traffic can). */
  lb_zone_routing_sampled: Counter;
  /** The pick went to another locality (residual capacity). */
  lb_zone_routing_cross_zone: Counter;
  /** Not done: the local cluster has no hosts in this proxy's locality, or is in panic. */
  lb_local_cluster_not_ok: Counter;
  /** Kept for Envoy's stat list: Envoy no longer requires equal locality counts and never increments it. */
  lb_zone_number_differs: Counter;
  /** Rounding left no residual capacity: a random locality was picked. */
  lb_zone_no_capacity_left: Counter;
}

const STAT_NAMES = [
  "lb_recalculate_zone_structures",
  "lb_zone_cluster_too_small",
  "lb_zone_routing_all_directly",
  "lb_zone_routing_sampled",
  "lb_zone_routing_cross_zone",
  "lb_local_cluster_not_ok",
  "lb_zone_number_differs",
  "lb_zone_no_capacity_left",
] as const;

/** Registers the zone routing counters in `scope` (`cluster.<name>.`), or detached ones without a scope. */
export function createZoneStats(scope?: Scope): ZoneStats {
  const out = {} as Record<(typeof STAT_NAMES)[number], Counter>;
  for (const n of STAT_NAMES) out[n] = scope ? scope.counter(n) : new Counter(n);
  return out;
}

/** common_lb_config.zone_aware_lb_config with Envoy's defaults, plus where this proxy runs. */
export interface ZoneAwareConfig {
  /** Locality key (region/zone/sub_zone) of this proxy: node.locality (`--service-zone` sets its zone). */
  localLocality: string;
  /** routing_enabled as a whole percent (default 100): share of picks that consider zone routing. */
  routingEnabled: number;
  /** min_cluster_size (default 6): fewer healthy upstream priority 0 hosts disable zone routing. */
  minClusterSize: number;
  /** fail_traffic_on_panic: no host (instead of all hosts) when the upstream level or the local cluster panics. */
  failTrafficOnPanic: boolean;
  stats: ZoneStats;
}

/** The local cluster's priority 0 hosts as the upstream LB sees them (one snapshot per membership/health). */
export interface LocalHostSet {
  /** Changes whenever the hosts or their health change (unique across clusters and their versions). */
  readonly version: number;
  readonly hosts: readonly HostImpl[];
}

/** Where zone aware routing stands for one upstream level (Envoy's LocalityRoutingState). */
export type RoutingState = "none" | "direct" | "residual";

/** The routing structures of an upstream priority 0 level. */
export interface ZoneRouting {
  state: RoutingState;
  /** Upstream locality keys, the local locality first when the upstream has it, then in key order. */
  localities: string[];
  /** True when `localities[0]` is this proxy's locality. */
  hasLocal: boolean;
  /** Residual state: share of picks (0..10000) that may stay local. */
  localPercentToRoute: number;
  /** Residual state: cumulative residual capacity per locality (the local one adds nothing). */
  residual: number[];
  /** The local cluster is in panic (its healthy + degraded share under the upstream's panic threshold). */
  localPanic: boolean;
}

/** Normalized locality key: an absent locality is the empty one, as Envoy's default Locality. */
export function normLocality(key: string): string {
  return key === "" ? "//" : key;
}

/** Local and upstream share (0..10000) of the hosts of one upstream locality. */
export interface LocalityPercentages {
  local: number;
  upstream: number;
}

/**
 * Envoy's calculateLocalityPercentages: for each upstream locality (in `localities` order), its share of the
 * local hosts and of the upstream hosts, both given as host counts per locality key.
 */
export function localityPercentages(
  localities: readonly string[],
  localCounts: ReadonlyMap<string, number>,
  upstreamCounts: ReadonlyMap<string, number>,
): LocalityPercentages[] {
  let totalLocal = 0, totalUpstream = 0;
  for (const n of localCounts.values()) totalLocal += n;
  for (const n of upstreamCounts.values()) totalUpstream += n;
  return localities.map((l) => {
    const up = upstreamCounts.get(l) ?? 0;
    if (up === 0) return { local: 0, upstream: 0 };
    const loc = localCounts.get(l) ?? 0;
    return {
      local: totalLocal > 0 ? Math.floor(10000 * loc / totalLocal) : 0,
      upstream: totalUpstream > 0 ? Math.floor(10000 * up / totalUpstream) : 0,
    };
  });
}

function countByLocality(hosts: readonly HostImpl[], keep: (h: HostImpl) => boolean): Map<string, number> {
  const m = new Map<string, number>();
  for (const h of hosts) {
    const k = normLocality(h.locality);
    if (!m.has(k)) m.set(k, 0);
    if (keep(h)) m.set(k, m.get(k)! + 1);
  }
  return m;
}

const isHealthy = (h: HostImpl) => h.healthy && !h.degraded;

/**
 * Envoy's regenerateLocalityRoutingStructures for an upstream priority 0 level (`upstream`: all its hosts) and
 * the local cluster's priority 0 hosts (`local`, null when the local cluster is unknown). `panicThreshold` is
 * the upstream's healthy_panic_threshold (Envoy applies it to the local cluster too). Counts
 * lb_recalculate_zone_structures and, when it gives up for those reasons, lb_local_cluster_not_ok or
 * lb_zone_cluster_too_small.
 */
export function zoneRouting(
  upstream: readonly HostImpl[],
  local: readonly HostImpl[] | null,
  cfg: ZoneAwareConfig,
  panicThreshold: number,
): ZoneRouting {
  const me = normLocality(cfg.localLocality);
  const upAll = countByLocality(upstream, () => true);
  const upHealthy = countByLocality(upstream, isHealthy);
  const hasLocal = upAll.has(me);
  const localities = [...upAll.keys()].filter((k) => k !== me).sort();
  if (hasLocal) localities.unshift(me);
  const out: ZoneRouting = {
    state: "none",
    localities,
    hasLocal,
    localPercentToRoute: 0,
    residual: [],
    localPanic: false,
  };
  cfg.stats.lb_recalculate_zone_structures.inc();
  if (localities.length < 2) return out;
  const localAll = countByLocality(local ?? [], () => true);
  if (localAll.size < 2) return out;
  if ((localAll.get(me) ?? 0) === 0) {
    cfg.stats.lb_local_cluster_not_ok.inc();
    return out;
  }
  let healthyTotal = 0;
  for (const n of upHealthy.values()) healthyTotal += n;
  if (healthyTotal < cfg.minClusterSize) {
    cfg.stats.lb_zone_cluster_too_small.inc();
    return out;
  }
  // Envoy's isHostSetInPanic on the local host set, with this cluster's threshold
  let usable = 0;
  for (const h of local!) if (h.healthy) usable++;
  out.localPanic = 100 * usable / local!.length < panicThreshold;

  const pct = localityPercentages(localities, countByLocality(local!, isHealthy), upHealthy);
  if (hasLocal && pct[0].upstream > 0 && pct[0].upstream >= pct[0].local) {
    out.state = "direct";
    return out;
  }
  out.state = "residual";
  out.localPercentToRoute = hasLocal && pct[0].local > 0
    ? Math.floor(pct[0].upstream * 10000 / pct[0].local)
    : 0;
  let acc = 0;
  out.residual = pct.map((p, i) => {
    if (!(i === 0 && hasLocal) && p.upstream > p.local) acc += p.upstream - p.local;
    return acc;
  });
  return out;
}

/**
 * Envoy's tryChooseLocalLocalityHosts: the index (in `z.localities`) of the locality this pick goes to, counting
 * lb_zone_routing_all_directly, _sampled or _cross_zone (and lb_zone_no_capacity_left). `z.state` is not "none".
 */
export function pickLocality(z: ZoneRouting, stats: ZoneStats, random: Random): number {
  if (z.state === "direct") {
    stats.lb_zone_routing_all_directly.inc();
    return 0;
  }
  if (Math.floor(random() * 10000) < z.localPercentToRoute) {
    stats.lb_zone_routing_sampled.inc();
    return 0;
  }
  stats.lb_zone_routing_cross_zone.inc();
  const n = z.localities.length;
  const total = z.residual[n - 1];
  if (total === 0) {
    stats.lb_zone_no_capacity_left.inc();
    return Math.floor(random() * n);
  }
  const threshold = Math.floor(random() * total);
  let i = 0;
  while (threshold >= z.residual[i]) i++;
  return i;
}

/** What a cluster needs to route by zone: where this proxy runs and the local cluster's current hosts. */
export interface LocalClusterView {
  /** This proxy's locality key (localityKey of node.locality). */
  readonly locality: string;
  /** The local cluster's priority 0 hosts now; null while it is unknown (removed, or not warm yet). */
  hosts(): LocalHostSet | null;
}
