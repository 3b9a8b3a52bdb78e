/**
 * Envoy's subset load balancer (cluster `lb_subset_config`): hosts are grouped by the values of their `envoy.lb`
 * endpoint metadata for each subset selector's keys, and a request whose metadata match criteria (route
 * metadata_match, a weighted cluster's, `envoy.lb` dynamic metadata) name exactly one selector's keys is balanced
 * over that subset with the cluster's policy, priorities, health and panic (a PriorityLb per subset). Without a
 * matching subset, the selector's fallback_policy (ANY_ENDPOINT, DEFAULT_SUBSET, KEYS_SUBSET, NO_FALLBACK) or the
 * cluster's (NO_FALLBACK, ANY_ENDPOINT, DEFAULT_SUBSET; panic_mode_any after it) decides. metadata_fallback_policy
 * FALLBACK_LIST retries with each `fallback_list` entry merged over the criteria.
 *
 * The cluster rebuilds it whenever membership, health or host metadata changes (`SubsetLbFactory.build`); the
 * factory outlives the builds so `lb_subsets_created|removed|active` follow subsets across them. Per request:
 * one Map lookup by the criteria's precomputed key.
 */
import { MetadataMatchCriteria, valueKey } from "../../common/metadata_match.ts";
import { ENVOY_LB, type Struct } from "../../config/metadata.ts";
import { Counter, Gauge, type Scope } from "../../stats/store.ts";
import type { LbSubsetConfig } from "../config.ts";
import type { HostImpl } from "../host.ts";
import type { Host, LbContext } from "../types.ts";
import type { LoadBalancer } from "./lb.ts";
import { PriorityLb, type PriorityLbOptions } from "./priority.ts";

/** What the cluster needs of its load balancer beyond picks. */
export interface ClusterLb extends LoadBalancer {
  /** True when the last pick used all hosts of a level in panic (the cluster counts lb_healthy_panic). */
  readonly lastPanic: boolean;
  /** True when the last pick may be an unhealthy host by design (single_host_per_subset ignores health). */
  readonly lastAnyHealth?: boolean;
  /** True when some level with load is in panic. */
  readonly panic: boolean;
}

/** `cluster.<name>.lb_subsets_*` stats. */
export interface SubsetStats {
  /** Subsets that currently have hosts. */
  lb_subsets_active: Gauge;
  lb_subsets_created: Counter;
  lb_subsets_removed: Counter;
  /** Picks served by the subset the criteria named. */
  lb_subsets_selected: Counter;
  /** Picks served by the cluster's fallback_policy. */
  lb_subsets_fallback: Counter;
  /** Picks served by panic_mode_any after the fallback subset had no host. */
  lb_subsets_fallback_panic: Counter;
  /** Hosts a single_host_per_subset selector left out (another host has the same values). */
  lb_subsets_single_host_per_subset_duplicate: Gauge;
}

/**
 * Registers the subset stats in `scope` (`cluster.<name>.`). The ones describing the cluster (active, created,
 * removed, duplicates) are registered only by the thread owning membership; others get detached ones, so summing
 * worker stats does not multiply them. The per-pick counters are registered everywhere.
 */
export function createSubsetStats(scope: Scope, ownsMembership = true): SubsetStats {
  const p = scope.prefix;
  return {
    lb_subsets_active: ownsMembership
      ? scope.gauge("lb_subsets_active", "never_import")
      : new Gauge(p + "lb_subsets_active", "never_import"),
    lb_subsets_created: ownsMembership
      ? scope.counter("lb_subsets_created")
      : new Counter(p + "lb_subsets_created"),
    lb_subsets_removed: ownsMembership
      ? scope.counter("lb_subsets_removed")
      : new Counter(p + "lb_subsets_removed"),
    lb_subsets_selected: scope.counter("lb_subsets_selected"),
    lb_subsets_fallback: scope.counter("lb_subsets_fallback"),
    lb_subsets_fallback_panic: scope.counter("lb_subsets_fallback_panic"),
    lb_subsets_single_host_per_subset_duplicate: ownsMembership
      ? scope.gauge("lb_subsets_single_host_per_subset_duplicate", "never_import")
      : new Gauge(p + "lb_subsets_single_host_per_subset_duplicate", "never_import"),
  };
}

/** A selector's fallback_policy. */
type SelectorFallback = "NOT_DEFINED" | "NO_FALLBACK" | "ANY_ENDPOINT" | "DEFAULT_SUBSET" | "KEYS_SUBSET";

/** One subset_selectors entry, compiled. */
interface Selector {
  /** Keys, sorted and unique (Envoy keeps them in a std::set). */
  readonly keys: readonly string[];
  readonly singleHost: boolean;
}

/** The fallback of criteria naming exactly a selector's keys. */
interface SelectorFallbackParams {
  readonly policy: SelectorFallback;
  readonly keys: ReadonlySet<string> | null;
}

/** The subsets of one build: the LB of each, by subset key. */
interface Subset {
  choose(ctx: LbContext, attempt: number): Host | null;
  readonly lb: PriorityLb | null;
}

/** A single_host_per_subset subset: its host of the highest priority, whatever its health (as Envoy). */
class SingleHostSubset implements Subset {
  readonly lb = null;
  /** First host seen per priority level. */
  readonly byPriority = new Map<number, Host>();
  #host: Host | null = null;
  /** Fixes the host once every host was pushed. */
  finish(): void {
    let best = Infinity;
    for (const [p, h] of this.byPriority) {
      if (p < best) {
        best = p;
        this.#host = h;
      }
    }
  }
  choose(): Host | null {
    return this.#host;
  }
}

/** A subset balanced with the cluster's policy over its hosts. */
class PrioritySubset implements Subset {
  constructor(readonly lb: PriorityLb) {}
  choose(ctx: LbContext, attempt: number): Host | null {
    return this.lb.choose(ctx, attempt);
  }
}

/** The compiled lb_subset_config of one cluster; builds a SubsetLb per membership or health change. */
export class SubsetLbFactory {
  readonly #selectors: readonly Selector[];
  /** Fallback params by criteria names (joined with NUL), as Envoy's selector trie holds them. */
  readonly #selectorFallbacks = new Map<string, SelectorFallbackParams>();
  readonly #fallback: "NO_FALLBACK" | "ANY_ENDPOINT" | "DEFAULT_SUBSET";
  readonly #defaultSubset: [string, unknown][];
  readonly #needAny: boolean;
  readonly #needDefault: boolean;
  readonly #panicModeAny: boolean;
  readonly #listAsAny: boolean;
  readonly #localityWeightAware: boolean;
  readonly #scaleLocalityWeight: boolean;
  readonly #fallbackList: boolean;
  readonly #stats: SubsetStats;
  /** Subset keys with hosts after the last build (for created/removed). */
  #active = new Set<string>();
  /** Duplicates counted in the gauge by the last build. */
  #duplicates = 0;

  /** Compiles `config` (its selectors must have keys: see `subsetsEnabled`). */
  constructor(config: LbSubsetConfig, stats: SubsetStats) {
    this.#stats = stats;
    // selectors without keys are ignored (LoadBalancerSubsetInfoImpl)
    const selectors = config.subset_selectors.filter((s) => s.keys.length > 0);
    this.#selectors = selectors.map((s) => ({
      keys: [...new Set(s.keys)].sort(),
      singleHost: s.single_host_per_subset,
    }));
    // Envoy's selector trie keeps the fallback of the selector that created the node for its last key: an
    // earlier, longer selector sharing the prefix leaves it NOT_DEFINED
    const seen = new Set<string>();
    let any = config.fallback_policy === "ANY_ENDPOINT" || config.panic_mode_any;
    let def = config.fallback_policy === "DEFAULT_SUBSET";
    selectors.forEach((s, i) => {
      const keys = this.#selectors[i].keys;
      for (let k = 1; k <= keys.length; k++) {
        const path = keys.slice(0, k).join("\u0000");
        if (k === keys.length && !seen.has(path)) {
          this.#selectorFallbacks.set(path, {
            policy: s.fallback_policy,
            keys: s.fallback_policy === "KEYS_SUBSET" ? new Set(s.fallback_keys_subset) : null,
          });
          if (s.fallback_policy === "ANY_ENDPOINT") any = true;
          if (s.fallback_policy === "DEFAULT_SUBSET") def = true;
        }
        seen.add(path);
      }
    });
    this.#fallback = config.fallback_policy;
    this.#defaultSubset = Object.entries(config.default_subset);
    this.#needAny = any;
    this.#needDefault = def;
    this.#panicModeAny = config.panic_mode_any;
    this.#listAsAny = config.list_as_any;
    this.#localityWeightAware = config.locality_weight_aware;
    this.#scaleLocalityWeight = config.locality_weight_aware && config.scale_locality_weight;
    this.#fallbackList = config.metadata_fallback_policy === "FALLBACK_LIST";
  }

  /** True when `config` turns subsetting on (some selector has keys). */
  static enabled(config: LbSubsetConfig | undefined): config is LbSubsetConfig {
    return config !== undefined && config.subset_selectors.some((s) => s.keys.length > 0);
  }

  /**
   * Builds the subsets of `hosts` (config, membership, health or metadata change); `o` are the cluster's
   * PriorityLb options (locality weighting follows locality_weight_aware instead). Updates the subset stats.
   */
  build(hosts: readonly HostImpl[], o: PriorityLbOptions): SubsetLb {
    const opts: PriorityLbOptions = { ...o, localityWeighted: this.#localityWeightAware };
    if (this.#scaleLocalityWeight) opts.scaleLocalityWeight = scaleBy(hosts);
    const members = new Map<string, HostImpl[] | SingleHostSubset>();
    let duplicates = 0;
    for (const h of hosts) {
      const lb = h.metadata?.[ENVOY_LB];
      if (lb === undefined) continue;
      for (const s of this.#selectors) {
        for (const key of this.#subsetKeys(s.keys, lb)) {
          let m = members.get(key);
          if (m === undefined) members.set(key, m = s.singleHost ? new SingleHostSubset() : []);
          if (Array.isArray(m)) m.push(h);
          else if (m.byPriority.has(h.priority)) duplicates++;
          else m.byPriority.set(h.priority, h);
        }
      }
    }
    const subsets = new Map<string, Subset>();
    for (const [key, m] of members) {
      if (Array.isArray(m)) subsets.set(key, new PrioritySubset(new PriorityLb(m, opts)));
      else {
        m.finish();
        subsets.set(key, m);
      }
    }
    this.#count(subsets, duplicates);
    const any = this.#needAny ? new PriorityLb(hosts, opts) : null;
    const def = this.#needDefault ? new PriorityLb(hosts.filter((h) => this.#matchesDefault(h)), opts) : null;
    const fallback = this.#fallback === "ANY_ENDPOINT"
      ? any
      : this.#fallback === "DEFAULT_SUBSET"
      ? def
      : null;
    return new SubsetLb({
      subsets,
      selectorFallbacks: this.#selectorFallbacks,
      any,
      def,
      fallback,
      panic: this.#panicModeAny ? any : null,
      fallbackList: this.#fallbackList,
      stats: this.#stats,
    });
  }

  /** Subset keys of a host's `envoy.lb` fields for sorted `keys` (several with list_as_any); none if one is missing. */
  #subsetKeys(keys: readonly string[], lb: Struct): string[] {
    let out = [""];
    for (const k of keys) {
      if (!Object.hasOwn(lb, k)) return [];
      const v = lb[k];
      const values = this.#listAsAny && Array.isArray(v) ? v : [v];
      const next: string[] = [];
      for (const prefix of out) {
        for (const x of values) next.push(`${prefix}${k}\u0000${valueKey(x)}\u0001`);
      }
      out = next;
    }
    return out;
  }

  /** True when `h` has every default_subset field with an equal value (Envoy's metadataLabelMatch). */
  #matchesDefault(h: HostImpl): boolean {
    const d = this.#defaultSubset;
    if (d.length === 0) return true;
    const lb = h.metadata?.[ENVOY_LB];
    if (lb === undefined) return false;
    for (const [k, want] of d) {
      if (!Object.hasOwn(lb, k)) return false;
      const v = lb[k];
      const w = valueKey(want);
      if (this.#listAsAny && Array.isArray(v)) {
        if (!v.some((x) => valueKey(x) === w)) return false;
      } else if (valueKey(v) !== w) return false;
    }
    return true;
  }

  /** Counts subsets that appeared and vanished since the last build. */
  #count(subsets: ReadonlyMap<string, Subset>, duplicates: number): void {
    const s = this.#stats;
    const prev = this.#active;
    const next = new Set(subsets.keys());
    for (const k of next) if (!prev.has(k)) s.lb_subsets_created.inc();
    for (const k of prev) if (!next.has(k)) s.lb_subsets_removed.inc();
    // deltas, not sets: the gauges are shared with the cluster's other generations (CDS updates)
    s.lb_subsets_active.inc(next.size - prev.size);
    s.lb_subsets_single_host_per_subset_duplicate.inc(duplicates - this.#duplicates);
    this.#active = next;
    this.#duplicates = duplicates;
  }

  /** Subsets gone with the cluster (retired or closed): counted removed, as Envoy's destructor does. */
  close(): void {
    const s = this.#stats;
    if (this.#active.size > 0) s.lb_subsets_removed.inc(this.#active.size);
    s.lb_subsets_active.dec(this.#active.size);
    s.lb_subsets_single_host_per_subset_duplicate.dec(this.#duplicates);
    this.#active = new Set();
    this.#duplicates = 0;
  }
}

/** scale_locality_weight: a locality's weight times the share of its level's hosts in the subset, rounded. */
function scaleBy(hosts: readonly HostImpl[]): (first: HostImpl, count: number) => number {
  const totals = new Map<string, number>();
  for (const h of hosts) {
    const k = `${h.priority}|${h.locality}`;
    totals.set(k, (totals.get(k) ?? 0) + 1);
  }
  return (first, count) => {
    const total = totals.get(`${first.priority}|${first.locality}`) ?? 0;
    return total === 0 ? 0 : Math.round(first.localityWeight * count / total);
  };
}

/** One build's subsets and fallbacks. */
interface SubsetLbParts {
  subsets: ReadonlyMap<string, Subset>;
  selectorFallbacks: ReadonlyMap<string, SelectorFallbackParams>;
  any: PriorityLb | null;
  def: PriorityLb | null;
  fallback: PriorityLb | null;
  panic: PriorityLb | null;
  fallbackList: boolean;
  stats: SubsetStats;
}

const FALLBACK_LIST = "fallback_list";

/** The subset load balancer of one build (see the module comment). */
export class SubsetLb implements ClusterLb {
  lastPanic = false;
  lastAnyHealth = false;
  readonly panic: boolean;
  readonly #p: SubsetLbParts;

  constructor(parts: SubsetLbParts) {
    this.#p = parts;
    let panic = parts.fallback?.panic ?? false;
    for (const s of parts.subsets.values()) if (s.lb?.panic) panic = true;
    this.panic = panic;
  }

  /** Subset keys with hosts (tests, admin). */
  get subsetKeys(): string[] {
    return [...this.#p.subsets.keys()];
  }

  choose(ctx: LbContext, attempt: number): Host | null {
    this.lastPanic = false;
    this.lastAnyHealth = false;
    const criteria = ctx.metadataMatch ?? null;
    if (criteria !== null && this.#p.fallbackList) {
      const list = criteria.get(FALLBACK_LIST);
      if (list !== undefined) return this.#withFallbackList(criteria, list, ctx, attempt);
    }
    return this.#iteration(criteria, ctx, attempt);
  }

  /** FALLBACK_LIST: the criteria without `fallback_list`, then with each entry merged over them, until a host. */
  #withFallbackList(
    criteria: MetadataMatchCriteria,
    list: unknown,
    ctx: LbContext,
    attempt: number,
  ): Host | null {
    const names = new Set(criteria.names);
    names.delete(FALLBACK_LIST);
    const base = criteria.filter(names);
    const entries = Array.isArray(list) ? list : [];
    if (entries.length === 0) return this.#iteration(base, ctx, attempt);
    for (const e of entries) {
      const s = typeof e === "object" && e !== null && !Array.isArray(e) ? e as Struct : {};
      const c = base === null ? MetadataMatchCriteria.fromStruct(s) : base.merge(s);
      const h = this.#iteration(c, ctx, attempt);
      if (h !== null) return h;
    }
    return null;
  }

  /** Envoy's chooseHostIteration. */
  #iteration(criteria: MetadataMatchCriteria | null, ctx: LbContext, attempt: number): Host | null {
    const p = this.#p;
    if (criteria !== null) {
      const subset = p.subsets.get(criteria.key);
      if (subset !== undefined) {
        p.stats.lb_subsets_selected.inc();
        return this.#pick(subset, ctx, attempt);
      }
      const params = p.selectorFallbacks.get(criteria.namesKey);
      if (params !== undefined && params.policy !== "NOT_DEFINED") {
        return this.#selectorFallback(params, criteria, ctx, attempt);
      }
    }
    const fallback = p.fallback;
    if (fallback === null) return null;
    const h = this.#pickLb(fallback, ctx, attempt);
    if (h !== null) {
      p.stats.lb_subsets_fallback.inc();
      return h;
    }
    if (p.panic !== null) {
      const x = this.#pickLb(p.panic, ctx, attempt);
      if (x !== null) {
        p.stats.lb_subsets_fallback_panic.inc();
        return x;
      }
    }
    return null;
  }

  #selectorFallback(
    params: SelectorFallbackParams,
    criteria: MetadataMatchCriteria,
    ctx: LbContext,
    attempt: number,
  ): Host | null {
    const p = this.#p;
    switch (params.policy) {
      case "ANY_ENDPOINT":
        return p.any === null ? null : this.#pickLb(p.any, ctx, attempt);
      case "DEFAULT_SUBSET":
        return p.def === null ? null : this.#pickLb(p.def, ctx, attempt);
      case "KEYS_SUBSET":
        return this.#iteration(criteria.filter(params.keys!), ctx, attempt);
      default:
        return null;
    }
  }

  #pick(subset: Subset, ctx: LbContext, attempt: number): Host | null {
    const lb = subset.lb;
    if (lb === null) {
      this.lastAnyHealth = true;
      return subset.choose(ctx, attempt);
    }
    return this.#pickLb(lb, ctx, attempt);
  }

  #pickLb(lb: PriorityLb, ctx: LbContext, attempt: number): Host | null {
    const h = lb.choose(ctx, attempt);
    this.lastPanic = lb.lastPanic;
    return h;
  }
}
