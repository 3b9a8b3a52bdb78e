/**
 * The compiled limits: per domain a tree of descriptor levels (key -> exact values, trailing-`*` prefixes,
 * key-only default) built once per load, and the lookup the service runs per descriptor, following the
 * reference service: exact value first, then a wildcard, then the key alone; a rule applies only when it
 * sits at the request descriptor's last entry.
 */
import type { Counter, StatsStore } from "../stats/store.ts";
import { parseUnit, type YamlDescriptor, type YamlLimitsFile } from "./limits_file.ts";
import { type CurrentLimit, type DescriptorEntry, UNIT_NAMES, UNIT_SECONDS } from "./types.ts";

/** The per-rule counters (`ratelimit.service.rate_limit.<domain>.<key_value...>.*`). */
export interface LimitStats {
  totalHits: Counter;
  overLimit: Counter;
  nearLimit: Counter;
  withinLimit: Counter;
  shadowMode: Counter;
}

/** The stat prefix of every per-descriptor counter. */
export const RATE_LIMIT_STAT_PREFIX = "ratelimit.service.rate_limit.";

/** Finds or creates the counters of the rule with stats key `fullKey` (domain.key_value...). */
export function limitStats(store: StatsStore, fullKey: string): LimitStats {
  const p = RATE_LIMIT_STAT_PREFIX + fullKey + ".";
  return {
    totalHits: store.counter(p + "total_hits"),
    overLimit: store.counter(p + "over_limit"),
    nearLimit: store.counter(p + "near_limit"),
    withinLimit: store.counter(p + "within_limit"),
    shadowMode: store.counter(p + "shadow_mode"),
  };
}

/** One configured (or caller-overridden) limit, immutable once built. */
export interface RateLimitRule {
  /** Stats key: `domain.key_value.key2` (key alone where the config has no value). */
  readonly fullKey: string;
  readonly requestsPerUnit: number;
  /** Unit enum value. */
  readonly unit: number;
  /** Window length in seconds. */
  readonly unitSeconds: number;
  /** Hits above this count are near the limit (floor of requests_per_unit x near-limit ratio). */
  readonly nearThreshold: number;
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  /** `rate_limit.name`, "" when unnamed. */
  readonly name: string;
  /** Names of rules this one replaces when both match one request. */
  readonly replaces: readonly string[];
  readonly detailedMetric: boolean;
  /** The `current_limit` sent back for this rule (shared, never mutated). */
  readonly currentLimit: CurrentLimit;
  readonly stats: LimitStats;
}

interface KeyNodes {
  values?: Map<string, DescriptorNode>;
  wildcards?: [string, DescriptorNode][];
  any?: DescriptorNode;
}

type Level = Map<string, KeyNodes>;

interface DescriptorNode {
  rule?: RateLimitRule;
  children?: Level;
}

/** Options of `buildLimits`. */
export interface BuildLimitsOptions {
  /** Where the rules' counters live. */
  stats: StatsStore;
  /** Near-limit ratio (default 0.8, as the reference service). */
  nearLimitRatio?: number;
}

/** Makes a rule (config build time, or per request for a caller's limit override). */
export function makeRule(
  fullKey: string,
  fields: {
    requestsPerUnit: number;
    unit: number;
    unlimited?: boolean;
    shadowMode?: boolean;
    name?: string;
    replaces?: string[];
    detailedMetric?: boolean;
  },
  opts: BuildLimitsOptions,
): RateLimitRule {
  const ratio = opts.nearLimitRatio ?? 0.8;
  return {
    fullKey,
    requestsPerUnit: fields.requestsPerUnit,
    unit: fields.unit,
    unitSeconds: UNIT_SECONDS[fields.unit] ?? 0,
    nearThreshold: Math.floor(Math.fround(fields.requestsPerUnit) * Math.fround(ratio)),
    unlimited: fields.unlimited ?? false,
    shadowMode: fields.shadowMode ?? false,
    name: fields.name ?? "",
    replaces: fields.replaces ?? [],
    detailedMetric: fields.detailedMetric ?? false,
    currentLimit: { name: fields.name ?? "", requestsPerUnit: fields.requestsPerUnit, unit: fields.unit },
    stats: limitStats(opts.stats, fullKey),
  };
}

/** The loaded limits of every domain; swapped whole on reload. */
export class LimitsConfig {
  readonly #domains = new Map<string, Level>();
  /** Every configured rule, in file order. */
  readonly rules: RateLimitRule[] = [];
  /** The files it was built from. */
  readonly files: string[];

  /** Builds the trees from parsed files (already checked by parseLimitsText). */
  constructor(files: { file: YamlLimitsFile; name: string }[], opts: BuildLimitsOptions) {
    this.files = files.map((f) => f.name);
    for (const { file } of files) {
      this.#domains.set(file.domain, this.#level(file.descriptors ?? [], file.domain, opts));
    }
  }

  /** True when `domain` has a limits file. */
  hasDomain(domain: string): boolean {
    return this.#domains.has(domain);
  }

  /** Domain names, sorted. */
  domains(): string[] {
    return [...this.#domains.keys()].sort();
  }

  /** Per request and descriptor: the rule that applies to `entries` in `domain`, or undefined. */
  find(domain: string, entries: readonly DescriptorEntry[]): RateLimitRule | undefined {
    let level = this.#domains.get(domain);
    let rule: RateLimitRule | undefined;
    const last = entries.length - 1;
    for (let i = 0; level !== undefined && i <= last; i++) {
      const e = entries[i];
      const kn = level.get(e.key);
      if (kn === undefined) return undefined;
      let node = kn.values?.get(e.value);
      if (node === undefined && kn.wildcards !== undefined) {
        for (const [prefix, n] of kn.wildcards) {
          if (e.value.startsWith(prefix)) {
            node = n;
            break;
          }
        }
      }
      if (node === undefined) node = kn.any;
      if (node === undefined) return undefined;
      if (i === last) rule = node.rule;
      level = node.children;
    }
    return rule;
  }

  /** Plain data for the `/rlconfig` debug endpoint. */
  toJSON(): unknown {
    return {
      files: this.files,
      limits: this.rules.map((r) => ({
        key: r.fullKey,
        ...(r.name ? { name: r.name } : {}),
        ...(r.unlimited
          ? { unlimited: true }
          : { requests_per_unit: r.requestsPerUnit, unit: UNIT_NAMES[r.unit] }),
        shadow_mode: r.shadowMode,
        ...(r.replaces.length ? { replaces: r.replaces } : {}),
        ...(r.detailedMetric ? { detailed_metric: true } : {}),
      })),
    };
  }

  #level(list: YamlDescriptor[], parentKey: string, opts: BuildLimitsOptions): Level {
    const level: Level = new Map();
    for (const d of list) {
      const hasValue = d.value !== undefined && d.value !== "";
      const fullKey = `${parentKey}.${hasValue ? `${d.key}_${d.value}` : d.key}`;
      const node: DescriptorNode = {};
      const rl = d.rate_limit;
      if (rl) {
        const unlimited = rl.unlimited ?? false;
        node.rule = makeRule(fullKey, {
          requestsPerUnit: rl.requests_per_unit ?? 0,
          unit: unlimited ? 0 : parseUnit(rl.unit),
          unlimited,
          shadowMode: d.shadow_mode,
          name: rl.name,
          replaces: (rl.replaces ?? []).map((r) => r.name),
          detailedMetric: d.detailed_metric,
        }, opts);
        this.rules.push(node.rule);
      }
      if (d.descriptors && d.descriptors.length > 0) {
        node.children = this.#level(d.descriptors, fullKey, opts);
      }
      let kn = level.get(d.key);
      if (!kn) level.set(d.key, kn = {});
      if (!hasValue) kn.any = node;
      else if (d.value!.endsWith("*")) (kn.wildcards ??= []).push([d.value!.slice(0, -1), node]);
      else (kn.values ??= new Map()).set(d.value!, node);
    }
    return level;
  }
}
