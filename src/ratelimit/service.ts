/**
 * The rate-limit decision (`ShouldRateLimit`), transport-free: match each descriptor to its rule, add the
 * hits to fixed-window counters (memory or Redis), answer per descriptor and overall, and count stats per
 * rule as the reference service does (total_hits, over_limit, near_limit at 80 %, within_limit, shadow_mode).
 */
import { type Clock, systemClock } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import { type Counter, StatsStore } from "../stats/store.ts";
import type { CounterBackend, IncrementBatch } from "./backend.ts";
import { type LimitsConfig, limitStats, makeRule, type RateLimitRule } from "./limits.ts";
import { decodeRateLimitRequest, encodeRateLimitResponse } from "./rls_proto.ts";
import {
  Code,
  type DescriptorEntry,
  type DescriptorStatus,
  type RateLimitRequest,
  type RateLimitResponse,
  RateLimitServiceError,
  UNIT_SECONDS,
} from "./types.ts";

const log = new Logger("ratelimit");

/** What to answer when the counter store fails: allow (open) or deny (closed) the limited descriptors. */
export type FailureMode = "open" | "closed";

/** Options of RateLimitService. */
export interface RateLimitServiceOptions {
  /** Where counts live. */
  backend: CounterBackend;
  /** Stats store (default: a new one). */
  stats?: StatsStore;
  clock?: Clock;
  /** Default "open". */
  failureMode?: FailureMode;
  /** Global shadow mode: OVER_LIMIT is counted but answered OK. */
  shadowMode?: boolean;
  /** Near-limit ratio (default 0.8). */
  nearLimitRatio?: number;
}

const MAX_UINT32 = 4294967295;

/** Per-request working state (one object instead of closures). */
class Pending {
  readonly statuses: DescriptorStatus[];
  readonly rules: RateLimitRule[] = [];
  readonly index: number[] = [];
  readonly batch: IncrementBatch = { keys: [], hits: [], windows: [], ttls: [] };
  constructor(n: number, readonly nowS: number) {
    this.statuses = new Array(n);
  }
}

/** The service core; one per process, its config swapped whole on reload. */
export class RateLimitService {
  readonly stats: StatsStore;
  readonly backend: CounterBackend;
  readonly failureMode: FailureMode;
  readonly nearLimitRatio: number;
  readonly #clock: Clock;
  readonly #shadow: boolean;
  #config: LimitsConfig | undefined;
  readonly #total: Counter;
  readonly #backendError: Counter;
  readonly #serviceError: Counter;
  readonly #failOpen: Counter;
  readonly #failClosed: Counter;
  readonly #globalShadow: Counter;
  #lastErrorLog = 0;

  /** A service with no limits until `setConfig`. */
  constructor(opts: RateLimitServiceOptions) {
    this.backend = opts.backend;
    this.stats = opts.stats ?? new StatsStore();
    this.failureMode = opts.failureMode ?? "open";
    this.nearLimitRatio = opts.nearLimitRatio ?? 0.8;
    this.#clock = opts.clock ?? systemClock;
    this.#shadow = opts.shadowMode ?? false;
    const call = this.stats.scope("ratelimit.service.call.should_rate_limit");
    this.#total = call.counter("total");
    this.#backendError = call.counter("redis_error");
    this.#serviceError = call.counter("service_error");
    this.#failOpen = call.counter("failure_mode_allowed");
    this.#failClosed = call.counter("failure_mode_denied");
    this.#globalShadow = this.stats.counter("ratelimit.service.global_shadow_mode");
  }

  /** The loaded limits, undefined until the first good load. */
  get config(): LimitsConfig | undefined {
    return this.#config;
  }

  /** Swaps in a new limits snapshot (after a successful load). */
  setConfig(config: LimitsConfig): void {
    this.#config = config;
  }

  /** Healthy when limits are loaded and, in closed failure mode, the counter store is up. */
  health(): { ok: boolean; reason: string } {
    if (!this.#config) return { ok: false, reason: "No rate limit configuration loaded" };
    if (this.failureMode === "closed" && !this.backend.healthy()) {
      return { ok: false, reason: `Counter store (${this.backend.kind}) unavailable` };
    }
    return { ok: true, reason: "OK" };
  }

  /** The gRPC handler body: serialized RateLimitRequest in, serialized RateLimitResponse out. */
  async handleShouldRateLimit(reqBytes: Uint8Array): Promise<Uint8Array> {
    let req: RateLimitRequest;
    try {
      req = decodeRateLimitRequest(reqBytes);
    } catch (e) {
      this.#serviceError.inc();
      throw new RateLimitServiceError(`Malformed RateLimitRequest: ${(e as Error).message}`);
    }
    const res = this.shouldRateLimit(req);
    return encodeRateLimitResponse(res instanceof Promise ? await res : res);
  }

  /** Per request: decides; sync with the memory store, a promise with Redis. Throws RateLimitServiceError. */
  shouldRateLimit(req: RateLimitRequest): RateLimitResponse | Promise<RateLimitResponse> {
    this.#total.inc();
    const config = this.#config;
    if (req.domain === "") return this.#refuse("Rate limit domain must not be empty", 3);
    if (req.descriptors.length === 0) return this.#refuse("Rate limit descriptor list must not be empty", 3);
    if (!config) return this.#refuse("No rate limit configuration loaded", 14);
    const n = req.descriptors.length;
    const p = new Pending(n, Math.floor(this.#clock.now() / 1000));
    const rules: (RateLimitRule | undefined)[] = new Array(n);
    let replacing: Set<string> | undefined;
    const known = config.hasDomain(req.domain);
    if (!known) this.stats.counter(`ratelimit.service.rate_limit.${req.domain}.domain_not_found`).inc();
    for (let i = 0; known && i < n; i++) {
      const d = req.descriptors[i];
      let rule = d.limit
        ? this.#overrideRule(req.domain, d.entries, d.limit)
        : config.find(req.domain, d.entries);
      if (rule?.detailedMetric) {
        rule = { ...rule, stats: limitStats(this.stats, detailedKey(req.domain, d.entries)) };
      }
      if (rule && rule.replaces.length > 0) {
        replacing ??= new Set();
        for (const name of rule.replaces) replacing.add(name);
      }
      rules[i] = rule;
    }
    const defaultHits = req.hitsAddend > 0 ? req.hitsAddend : 1;
    for (let i = 0; i < n; i++) {
      const rule = rules[i];
      if (rule === undefined || (replacing !== undefined && rule.name !== "" && replacing.has(rule.name))) {
        p.statuses[i] = { code: Code.OK, limitRemaining: 0 };
        continue;
      }
      if (rule.unlimited) {
        p.statuses[i] = { code: Code.OK, limitRemaining: MAX_UINT32 };
        continue;
      }
      const d = req.descriptors[i];
      const hits = d.hitsAddend ?? defaultHits;
      rule.stats.totalHits.inc(hits);
      p.rules.push(rule);
      p.index.push(i);
      p.batch.keys.push(cacheKey(req.domain, d.entries));
      p.batch.hits.push(hits);
      p.batch.windows.push(p.nowS - (p.nowS % rule.unitSeconds));
      p.batch.ttls.push(rule.unitSeconds);
    }
    if (p.rules.length === 0) return this.#respond(p);
    let counts: number[] | Promise<number[]>;
    try {
      counts = this.backend.increment(p.batch);
    } catch (e) {
      return this.#failed(p, e as Error);
    }
    if (counts instanceof Promise) return this.#awaitCounts(p, counts);
    return this.#decide(p, counts);
  }

  async #awaitCounts(p: Pending, counts: Promise<number[]>): Promise<RateLimitResponse> {
    let c: number[];
    try {
      c = await counts;
    } catch (e) {
      return this.#failed(p, e as Error);
    }
    return this.#decide(p, c);
  }

  #decide(p: Pending, counts: number[]): RateLimitResponse {
    for (let j = 0; j < p.rules.length; j++) {
      const rule = p.rules[j];
      const hits = p.batch.hits[j];
      const after = counts[j];
      const before = after - hits;
      const limit = rule.requestsPerUnit;
      const near = rule.nearThreshold;
      const s = rule.stats;
      let status: DescriptorStatus;
      const reset = (rule.unitSeconds - (p.nowS % rule.unitSeconds)) * 1000;
      if (after > limit) {
        if (before >= limit) s.overLimit.inc(hits);
        else {
          s.overLimit.inc(after - limit);
          s.nearLimit.inc(limit - Math.max(near, before));
        }
        if (rule.shadowMode) {
          s.shadowMode.inc(before >= limit ? hits : after - limit);
          status = {
            code: Code.OK,
            currentLimit: rule.currentLimit,
            limitRemaining: 0,
            durationUntilResetMs: reset,
          };
        } else {
          status = {
            code: Code.OVER_LIMIT,
            currentLimit: rule.currentLimit,
            limitRemaining: 0,
            durationUntilResetMs: reset,
          };
        }
      } else {
        if (after > near) s.nearLimit.inc(before >= near ? hits : after - near);
        s.withinLimit.inc(hits);
        status = {
          code: Code.OK,
          currentLimit: rule.currentLimit,
          limitRemaining: limit - after,
          durationUntilResetMs: reset,
        };
      }
      p.statuses[p.index[j]] = status;
    }
    return this.#respond(p);
  }

  #failed(p: Pending, err: Error): RateLimitResponse {
    this.#backendError.inc();
    const closed = this.failureMode === "closed";
    (closed ? this.#failClosed : this.#failOpen).inc();
    const now = this.#clock.monotonic();
    if (now - this.#lastErrorLog > 1000) {
      this.#lastErrorLog = now;
      log.warn(`Counter store error, failing ${this.failureMode}: ${err.message}`);
    }
    for (let j = 0; j < p.rules.length; j++) {
      const rule = p.rules[j];
      const deny = closed && !rule.shadowMode;
      p.statuses[p.index[j]] = {
        code: deny ? Code.OVER_LIMIT : Code.OK,
        currentLimit: rule.currentLimit,
        limitRemaining: 0,
      };
    }
    return this.#respond(p);
  }

  #respond(p: Pending): RateLimitResponse {
    let overall: typeof Code.OK | typeof Code.OVER_LIMIT = Code.OK;
    for (const s of p.statuses) if (s.code === Code.OVER_LIMIT) overall = Code.OVER_LIMIT;
    if (overall === Code.OVER_LIMIT && this.#shadow) {
      overall = Code.OK;
      this.#globalShadow.inc();
    }
    return { overallCode: overall, statuses: p.statuses, responseHeadersToAdd: [], requestHeadersToAdd: [] };
  }

  #refuse(message: string, grpcStatus: number): never {
    this.#serviceError.inc();
    throw new RateLimitServiceError(message, grpcStatus);
  }

  #overrideRule(
    domain: string,
    entries: readonly DescriptorEntry[],
    o: { requestsPerUnit: number; unit: number },
  ): RateLimitRule | undefined {
    if (!(UNIT_SECONDS[o.unit] > 0)) return undefined;
    return makeRule(detailedKey(domain, entries), o, {
      stats: this.stats,
      nearLimitRatio: this.nearLimitRatio,
    });
  }
}

/** `domain_k1_v1_k2_v2_`: the reference service's cache key without the window start. */
export function cacheKey(domain: string, entries: readonly DescriptorEntry[]): string {
  let k = domain + "_";
  for (let i = 0; i < entries.length; i++) k += entries[i].key + "_" + entries[i].value + "_";
  return k;
}

/** `domain.k1_v1.k2_v2`: the stats key of a detailed_metric rule or a caller's limit override. */
export function detailedKey(domain: string, entries: readonly DescriptorEntry[]): string {
  let k = domain;
  for (let i = 0; i < entries.length; i++) k += "." + entries[i].key + "_" + entries[i].value;
  return k;
}
