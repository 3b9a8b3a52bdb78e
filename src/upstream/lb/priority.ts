/**
 * Envoy's host selection above the LB policy: priority levels with failover (the "priority load" from each
 * level's health scaled by the overprovisioning factor), degraded hosts as a fallback, per-level panic,
 * locality-weighted picking and zone aware routing at priority 0 (zone_aware.ts). Built when membership or
 * health changes (or the local cluster's); `choose` runs per request and only pays for levels and localities
 * when the cluster has more than one place traffic can go.
 */
import { runtime } from "../../runtime/current.ts";
import type { HostImpl } from "../host.ts";
import type { Host, LbContext } from "../types.ts";
import type { LoadBalancer, Random } from "./lb.ts";
import {
  normLocality,
  pickLocality,
  type ZoneAwareConfig,
  type ZoneRouting,
  zoneRouting,
} from "./zone_aware.ts";

/** How many hosts of one priority level are healthy and degraded (the rest are unhealthy). */
export interface LevelCounts {
  total: number;
  healthy: number;
  degraded: number;
}

/** Percent of traffic per priority level to its healthy and degraded hosts, and which levels are in panic. */
export interface PriorityLoad {
  healthy: number[];
  degraded: number[];
  panic: boolean[];
}

/**
 * Envoy's LoadBalancerBase::recalculatePerPriorityState and recalculatePerPriorityPanic: a level's health is
 * min(100, overprovisioning x healthy / total) (integer percent), likewise its degraded availability; load goes
 * to healthy levels in order, then to degraded ones, normalized by the total availability (capped at 100), with
 * rounding left-overs to the first available level. A level is in panic when (healthy + degraded) percent is
 * under `panicThreshold`; when every level is (or nothing is available) load follows host counts instead.
 */
export function priorityLoad(
  levels: readonly LevelCounts[],
  overprovisioning: number,
  panicThreshold: number,
): PriorityLoad {
  const n = Math.max(1, levels.length);
  const healthy = new Array<number>(n).fill(0);
  const degraded = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  const health = new Array<number>(n).fill(0);
  const deg = new Array<number>(n).fill(0);
  let sum = 0;
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.total > 0) {
      health[i] = Math.min(100, Math.floor(overprovisioning * l.healthy / l.total));
      deg[i] = Math.min(100, Math.floor(overprovisioning * l.degraded / l.total));
    }
    sum += health[i] + deg[i];
  }
  const nta = Math.min(100, sum);
  if (nta > 0) {
    let rest = 100;
    let firstHealthy = -1;
    for (let i = 0; i < n; i++) {
      if (firstHealthy < 0 && health[i] > 0) firstHealthy = i;
      healthy[i] = Math.min(rest, Math.floor(health[i] * 100 / nta));
      rest -= healthy[i];
    }
    let firstDegraded = -1;
    for (let i = 0; i < n; i++) {
      if (firstDegraded < 0 && deg[i] > 0) firstDegraded = i;
      degraded[i] = Math.min(rest, Math.floor(deg[i] * 100 / nta));
      rest -= degraded[i];
    }
    if (rest > 0) {
      if (firstHealthy >= 0) healthy[firstHealthy] += rest;
      else degraded[firstDegraded] += rest;
    }
  }
  if (panicThreshold === 0 && nta === 0) {
    healthy[0] = 100; // nothing available and panic disabled: P0 takes the load and finds no host
    return { healthy, degraded, panic };
  }
  for (let i = 0; i < n; i++) {
    const l = levels[i];
    const usable = l === undefined || l.total === 0 ? 0 : 100 * (l.healthy + l.degraded) / l.total;
    // as Envoy (recalculatePerPriorityPanic): never panic while the levels together are fully available
    panic[i] = nta === 100 ? false : nta === 0 || usable < panicThreshold;
  }
  if (panic.every(Boolean)) {
    // total panic: load by host count, whatever their health
    let total = 0;
    for (const l of levels) total += l.total;
    degraded.fill(0);
    healthy.fill(0);
    if (total === 0) {
      healthy[0] = 100;
      return { healthy, degraded, panic };
    }
    let rest = 100;
    let first = -1;
    for (let i = 0; i < levels.length; i++) {
      if (first < 0 && levels[i].total > 0) first = i;
      healthy[i] = Math.floor(100 * levels[i].total / total);
      rest -= healthy[i];
    }
    healthy[first] += rest;
  }
  return { healthy, degraded, panic };
}

/** Options of a PriorityLb. */
export interface PriorityLbOptions {
  /** The cluster's LB policy over one host list. */
  build: (hosts: readonly Host[]) => LoadBalancer;
  /** ClusterLoadAssignment.policy.overprovisioning_factor (percent, default 140). */
  overprovisioning: number;
  /** healthy_panic_threshold in percent (default 50). */
  panicThreshold: number;
  /** common_lb_config.locality_weighted_lb_config is set. */
  localityWeighted: boolean;
  /** Random source for the priority and locality picks without a hash. */
  random: Random;
  /**
   * Zone aware routing (a local cluster is configured and the policy is ROUND_ROBIN, LEAST_REQUEST or RANDOM):
   * its settings and the local cluster's priority 0 hosts (null: the local cluster is unknown). Ignored when
   * locality-weighted.
   */
  zoneAware?: { config: ZoneAwareConfig; local: readonly HostImpl[] | null } | null;
  /** zone_aware_lb_config.fail_traffic_on_panic: a pick that lands on a level in panic gets no host. */
  failTrafficOnPanic?: boolean;
  /**
   * Locality-weighted picks: the weight of the locality of `first` (one of its hosts) when `count` of its level's
   * hosts are here (the subset LB's scale_locality_weight); absent: the configured weight.
   */
  scaleLocalityWeight?: (first: HostImpl, count: number) => number;
}

const NO_HOSTS: LoadBalancer = { choose: () => null };

/** Hosts of one availability (healthy, degraded or all) of one level, with their locality schedule. */
class Source {
  readonly lb: LoadBalancer;
  /** Per-locality LBs and weights (locality-weighted LB with at least one weight > 0), else null. */
  readonly #lbs: LoadBalancer[] | null = null;
  readonly #weights: Float64Array | null = null;
  readonly #current: Float64Array | null = null;
  readonly #sum: number = 0;

  /** True when it has no host. */
  readonly empty: boolean;

  constructor(hosts: readonly HostImpl[], all: readonly HostImpl[] | null, o: PriorityLbOptions) {
    this.empty = hosts.length === 0;
    this.lb = hosts.length === 0 ? NO_HOSTS : o.build(hosts);
    if (all === null) return;
    // locality-weighted: effective weight = weight x min(1, overprovisioning x eligible / total)
    const byLocality = new Map<string, { eligible: HostImpl[]; total: number; first: HostImpl }>();
    for (const h of all) {
      let e = byLocality.get(h.locality);
      if (e === undefined) byLocality.set(h.locality, e = { eligible: [], total: 0, first: h });
      e.total++;
    }
    for (const h of hosts) byLocality.get(h.locality)!.eligible.push(h);
    const lbs: LoadBalancer[] = [];
    const weights: number[] = [];
    const scale = o.scaleLocalityWeight;
    for (const e of byLocality.values()) {
      const weight = scale === undefined ? e.first.localityWeight : scale(e.first, e.total);
      const w = weight * Math.min(1, (o.overprovisioning / 100) * e.eligible.length / e.total);
      if (w > 0 && e.eligible.length > 0) {
        lbs.push(o.build(e.eligible));
        weights.push(w);
      }
    }
    if (lbs.length === 0) return; // no locality has weight: plain LB over the hosts, as Envoy
    this.#lbs = lbs;
    this.#weights = new Float64Array(weights);
    this.#current = new Float64Array(weights.length);
    this.#sum = weights.reduce((a, b) => a + b, 0);
  }

  /** Picks a host: a locality by smooth weighted round robin first when locality-weighted. */
  choose(ctx: LbContext, attempt: number): Host | null {
    const lbs = this.#lbs;
    if (lbs === null) return this.lb.choose(ctx, attempt);
    const w = this.#weights!, cur = this.#current!;
    let best = 0;
    for (let i = 0; i < w.length; i++) {
      cur[i] += w[i];
      if (cur[i] > cur[best]) best = i;
    }
    cur[best] -= this.#sum;
    return lbs[best].choose(ctx, attempt);
  }
}

/** Zone aware routing of priority 0: the routing structures and one source per upstream locality. */
interface ZoneLevel {
  readonly z: ZoneRouting;
  readonly cfg: ZoneAwareConfig;
  /** Healthy and degraded hosts per locality, indexed as `z.localities`. */
  readonly healthy: Source[];
  readonly degraded: Source[];
}

/** One priority level: its sources and loads. */
interface Level {
  panic: boolean;
  healthy: Source | null;
  degraded: Source | null;
  all: Source | null;
  zone: ZoneLevel | null;
}

/** Picks priority, then availability and locality, then a host with the cluster's policy. */
export class PriorityLb implements LoadBalancer {
  /** Percent loads (tests, admin). */
  readonly load: PriorityLoad;
  /** True when the last pick used all hosts of a level in panic (the cluster counts lb_healthy_panic). */
  lastPanic = false;
  /** True when some level with load is in panic. */
  readonly panic: boolean;
  /** The only place traffic goes (one level, one availability): picks skip the priority choice. */
  readonly #fast: Source | null = null;
  readonly #fastPanic: boolean = false;
  readonly #levels: Level[];
  /** Cumulative loads: healthy of every level, then degraded of every level (sums to 100). */
  readonly #cum: Int32Array;
  readonly #random: Random;
  readonly #failOnPanic: boolean;
  /** Priority 0's zone routing state (tests, admin); null without zone aware routing. */
  readonly zone: ZoneRouting | null = null;

  /** Groups `hosts` by priority and builds the per-level sources (config or health change time). */
  constructor(hosts: readonly HostImpl[], o: PriorityLbOptions) {
    this.#random = o.random;
    this.#failOnPanic = o.failTrafficOnPanic ?? false;
    const byLevel: HostImpl[][] = [];
    for (const h of hosts) (byLevel[h.priority] ??= []).push(h);
    for (let i = 0; i < byLevel.length; i++) byLevel[i] ??= [];
    const split = byLevel.map((all) => {
      const healthy: HostImpl[] = [], degraded: HostImpl[] = [];
      for (const h of all) {
        if (!h.healthy) continue;
        (h.degraded ? degraded : healthy).push(h);
      }
      return { all, healthy, degraded };
    });
    this.load = priorityLoad(
      split.map((s) => ({ total: s.all.length, healthy: s.healthy.length, degraded: s.degraded.length })),
      o.overprovisioning,
      o.panicThreshold,
    );
    const { healthy, degraded, panic } = this.load;
    const lw = o.localityWeighted;
    const za = lw ? null : o.zoneAware ?? null;
    let zone: ZoneLevel | null = null;
    if (za !== null) {
      const p0 = split[0] ?? { all: [], healthy: [], degraded: [] };
      const z = this.zone = zoneRouting(p0.all, za.local, za.config, o.panicThreshold);
      if (z.state !== "none") zone = zoneLevel(z, za.config, p0.healthy, p0.degraded, o);
    }
    this.#levels = healthy.map((_, i) => {
      const s = split[i] ?? { all: [], healthy: [], degraded: [] };
      if (panic[i]) {
        return { panic: true, healthy: null, degraded: null, all: new Source(s.all, null, o), zone: null };
      }
      return {
        panic: false,
        healthy: healthy[i] > 0 ? new Source(s.healthy, lw ? s.all : null, o) : null,
        degraded: degraded[i] > 0 ? new Source(s.degraded, lw ? s.all : null, o) : null,
        all: null,
        zone: i === 0 ? zone : null,
      };
    });
    const n = healthy.length;
    this.#cum = new Int32Array(2 * n);
    let acc = 0, places = 0, only = -1;
    for (let i = 0; i < 2 * n; i++) {
      const v = i < n ? healthy[i] : degraded[i - n];
      acc += v;
      this.#cum[i] = acc;
      if (v > 0) {
        places++;
        only = i;
      }
    }
    let anyPanic = false;
    for (let i = 0; i < n; i++) if (panic[i] && healthy[i] > 0) anyPanic = true;
    this.panic = anyPanic;
    // one place for all traffic: picks skip the priority choice (unless zone routing or failing on panic decide)
    const l = places === 1 ? this.#levels[only % n] : null;
    if (l !== null && l.zone === null && !(l.panic && this.#failOnPanic)) {
      this.#fast = l.panic ? l.all : only < n ? l.healthy : l.degraded;
      this.#fastPanic = l.panic;
    }
  }

  choose(ctx: LbContext, attempt: number): Host | null {
    const fast = this.#fast;
    if (fast !== null) {
      this.lastPanic = this.#fastPanic;
      return fast.choose(ctx, attempt);
    }
    const hash = ctx.hash;
    const r = hash !== undefined ? Number(hash % 100n) + 1 : Math.floor(this.#random() * 100) + 1;
    const cum = this.#cum;
    const n = this.#levels.length;
    let i = 0;
    while (i < cum.length - 1 && r > cum[i]) i++;
    const l = this.#levels[i % n];
    this.lastPanic = l.panic;
    if (l.panic) return this.#failOnPanic ? null : l.all!.choose(ctx, attempt);
    const src = i < n ? l.healthy : l.degraded;
    if (src === null) return null;
    const zone = l.zone;
    if (zone !== null) {
      const h = this.#zonePick(zone, i >= n, ctx, attempt);
      if (h !== undefined) return h;
    }
    return src.choose(ctx, attempt);
  }

  /**
   * Envoy's hostSourceToUse past the locality-weighted branch: a host of the locality zone routing picks, null
   * (fail_traffic_on_panic with the local cluster in panic), or undefined to pick among all of the level's hosts
   * of that availability (routing_enabled sampled this pick out, the local cluster is in panic, or the
   * locality picked has no host of that availability, where Envoy would find none).
   */
  #zonePick(zone: ZoneLevel, degraded: boolean, ctx: LbContext, attempt: number): Host | null | undefined {
    const cfg = zone.cfg;
    const enabled = runtime().getInteger("upstream.zone_routing.enabled", cfg.routingEnabled);
    if (enabled < 100 && (enabled <= 0 || Math.floor(this.#random() * 100) >= enabled)) return undefined;
    if (zone.z.localPanic) {
      cfg.stats.lb_local_cluster_not_ok.inc();
      return cfg.failTrafficOnPanic ? null : undefined;
    }
    const src = (degraded ? zone.degraded : zone.healthy)[pickLocality(zone.z, cfg.stats, this.#random)];
    return src === undefined || src.empty ? undefined : src.choose(ctx, attempt);
  }
}

/** Per-locality sources of priority 0 for zone aware routing, indexed as `z.localities`. */
function zoneLevel(
  z: ZoneRouting,
  cfg: ZoneAwareConfig,
  healthy: readonly HostImpl[],
  degraded: readonly HostImpl[],
  o: PriorityLbOptions,
): ZoneLevel {
  const index = new Map(z.localities.map((k, i) => [k, i]));
  const group = (hosts: readonly HostImpl[]) => {
    const by: HostImpl[][] = z.localities.map(() => []);
    for (const h of hosts) by[index.get(normLocality(h.locality))!].push(h);
    return by.map((hs) => new Source(hs, null, o));
  };
  return { z, cfg, healthy: group(healthy), degraded: group(degraded) };
}
