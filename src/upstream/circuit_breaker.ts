/**
 * Circuit breakers per cluster and routing priority (Envoy's ResourceManager): connections, pending
 * requests, requests and retries. The counts live in the SharedArena so every worker enforces one limit;
 * they change with Atomics (increment, check, undo on overflow). Gauges are kept additive across workers:
 * a worker adds exactly what its own operations changed, so the merged value is right.
 */
import type { SharedArena } from "../common/shared_arena.ts";
import type { Counter, Gauge, Scope } from "../stats/store.ts";

/** Routing priorities (envoy.config.core.v3.RoutingPriority). */
export const Priority = { Default: 0, High: 1 } as const;
/** One of Priority. */
export type Priority = typeof Priority[keyof typeof Priority];

/** Parsed thresholds of one priority. */
export interface ThresholdsConfig {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  /** retry_budget: when set, max_retries is replaced by the budget. */
  retryBudget?: { budgetPercent: number; minRetryConcurrency: number };
  trackRemaining: boolean;
}

/** Envoy's defaults. */
export const DEFAULT_THRESHOLDS: ThresholdsConfig = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  trackRemaining: false,
};

const CX = 0;
const PENDING = 1;
const RQ = 2;
const RETRY = 3;
const NAMES = ["cx", "rq_pending", "rq", "rq_retry"];
const REMAINING = ["remaining_cx", "remaining_pending", "remaining_rq", "remaining_retries"];

/**
 * The shared counts of one cluster's breakers (`cb/<cluster>/default|high`, 6 Int32s each), held once per
 * cluster name on a thread and shared by every generation of that cluster (cluster updates), so requests
 * still in flight on a replaced cluster give back their slots to the same counts.
 */
export class BreakerSlots {
  /** [DEFAULT, HIGH] counts; private copies once released. */
  counts: [Int32Array, Int32Array];
  readonly #arena: SharedArena;
  readonly #cluster: string;
  #released = false;

  /** Takes this thread's use of the cluster's breaker slots (config time). */
  constructor(arena: SharedArena, cluster: string) {
    this.#arena = arena;
    this.#cluster = cluster;
    this.counts = [arena.slot(`cb/${cluster}/default`, 6), arena.slot(`cb/${cluster}/high`, 6)];
  }

  /**
   * Gives the slots back (the cluster was removed): breakers still in use by requests in flight switch to a
   * private copy of the counts, so they never write into memory the arena hands out again. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.counts = [this.counts[0].slice(), this.counts[1].slice()];
    this.#arena.release(`cb/${this.#cluster}/default`);
    this.#arena.release(`cb/${this.#cluster}/high`);
  }
}

/** The breakers of one priority of one cluster. */
export class PriorityBreakers {
  readonly #slots: BreakerSlots;
  readonly #p: number;
  readonly #max: number[];
  readonly #open: Gauge[];
  readonly #remaining: Gauge[] | null;
  readonly #budget: { percent: number; min: number } | undefined;

  constructor(readonly thresholds: ThresholdsConfig, slots: BreakerSlots, priority: number, scope: Scope) {
    this.#slots = slots;
    this.#p = priority;
    const counts = slots.counts[priority];
    const t = thresholds;
    this.#max = [t.maxConnections, t.maxPendingRequests, t.maxRequests, t.maxRetries];
    this.#budget = t.retryBudget
      ? { percent: t.retryBudget.budgetPercent, min: t.retryBudget.minRetryConcurrency }
      : undefined;
    this.#open = NAMES.map((n) => scope.gauge(`${n}_open`));
    for (const g of this.#open) g.set(g.value); // present (0) from the start, as Envoy
    if (t.trackRemaining) {
      this.#remaining = REMAINING.map((n) => scope.gauge(n));
      // One thread contributes the full limits; every thread then adds its own deltas.
      if (Atomics.compareExchange(counts, 4, 0, 1) === 0) {
        for (let i = 0; i < 4; i++) this.#remaining[i].inc(this.#limit(i) - Atomics.load(counts, i));
      }
    } else this.#remaining = null;
  }

  /** Shared counts: [cx, pending, rq, retries, init flag] (read through the slots: see BreakerSlots.release). */
  get #counts(): Int32Array {
    return this.#slots.counts[this.#p];
  }

  /** Current shared count of resource `i` (tests, admin). */
  count(i: number): number {
    return Atomics.load(this.#counts, i);
  }

  /** The limit of resource `i` now (the retry budget depends on active and pending requests). */
  #limit(i: number): number {
    if (i !== RETRY || this.#budget === undefined) return this.#max[i];
    const active = Atomics.load(this.#counts, RQ) + Atomics.load(this.#counts, PENDING);
    return Math.max(this.#budget.min, Math.floor(active * this.#budget.percent / 100));
  }

  #try(i: number): boolean {
    const max = this.#limit(i);
    const old = Atomics.add(this.#counts, i, 1);
    if (old >= max) {
      this.#release(i, false);
      return false;
    }
    if (old === max - 1) this.#open[i].inc();
    if (this.#remaining) this.#remaining[i].dec();
    return true;
  }

  #force(i: number): void {
    const old = Atomics.add(this.#counts, i, 1);
    if (old === this.#limit(i) - 1) this.#open[i].inc();
    if (this.#remaining) this.#remaining[i].dec();
  }

  #release(i: number, counted: boolean): void {
    const old = Atomics.sub(this.#counts, i, 1);
    if (old === this.#limit(i)) this.#open[i].dec();
    if (counted && this.#remaining) this.#remaining[i].inc();
  }

  /** Takes a connection slot; false when max_connections is reached. */
  tryConnection(): boolean {
    return this.#try(CX);
  }
  /** Takes a connection slot even over the limit (a host's first connection, as Envoy). */
  forceConnection(): void {
    this.#force(CX);
  }
  /** Gives back a connection slot. */
  releaseConnection(): void {
    this.#release(CX, true);
  }
  /** Takes a pending-request slot; false when max_pending_requests is reached. */
  tryPending(): boolean {
    return this.#try(PENDING);
  }
  /** Gives back a pending-request slot. */
  releasePending(): void {
    this.#release(PENDING, true);
  }
  /** Takes a request slot; false when max_requests is reached. */
  tryRequest(): boolean {
    return this.#try(RQ);
  }
  /** Gives back a request slot. */
  releaseRequest(): void {
    this.#release(RQ, true);
  }
  /** Takes a retry slot; false when max_retries (or the retry budget) is reached. */
  tryRetry(): boolean {
    return this.#try(RETRY);
  }
  /** Gives back a retry slot. */
  releaseRetry(): void {
    this.#release(RETRY, true);
  }
}

/** Overflow counters under `cluster.<name>.`. */
export interface OverflowStats {
  upstream_cx_overflow: Counter;
  upstream_rq_pending_overflow: Counter;
  upstream_rq_retry_overflow: Counter;
}

/** The breakers of one cluster: one PriorityBreakers per priority, plus the overflow counters. */
export class CircuitBreakers {
  readonly #by: [PriorityBreakers, PriorityBreakers];
  /** Overflow counters of the cluster. */
  readonly stats: OverflowStats;

  /**
   * Built once per cluster (config time). `thresholds` are per priority (index 0 DEFAULT, 1 HIGH); counts
   * live in `arena` under `cb/<cluster>/<priority>`, or in `slots` when the cluster manager shares them
   * between generations of the cluster.
   */
  constructor(
    cluster: string,
    thresholds: readonly [ThresholdsConfig, ThresholdsConfig],
    arena: SharedArena,
    scope: Scope,
    slots: BreakerSlots = new BreakerSlots(arena, cluster),
  ) {
    this.stats = {
      upstream_cx_overflow: scope.counter("upstream_cx_overflow"),
      upstream_rq_pending_overflow: scope.counter("upstream_rq_pending_overflow"),
      upstream_rq_retry_overflow: scope.counter("upstream_rq_retry_overflow"),
    };
    const make = (p: number, name: string) =>
      new PriorityBreakers(thresholds[p], slots, p, scope.scope(`circuit_breakers.${name}`));
    this.#by = [make(0, "default"), make(1, "high")];
  }

  /** The breakers of `priority` (0 DEFAULT, 1 HIGH). */
  forPriority(priority: number): PriorityBreakers {
    return this.#by[priority === 1 ? 1 : 0];
  }
}

/** The `circuit_breakers.thresholds[]` entries as parsed by the cluster schema. */
export interface ThresholdsInput {
  priority: "DEFAULT" | "HIGH";
  max_connections?: number;
  max_pending_requests?: number;
  max_requests?: number;
  max_retries?: number;
  retry_budget?: { budget_percent?: { value: number }; min_retry_concurrency?: number };
  track_remaining?: boolean;
}

/** Per-priority thresholds from config: the first entry of a priority wins, missing ones get defaults. */
export function thresholdsFromConfig(
  list: readonly ThresholdsInput[] | undefined,
): [ThresholdsConfig, ThresholdsConfig] {
  const out: [ThresholdsConfig, ThresholdsConfig] = [DEFAULT_THRESHOLDS, DEFAULT_THRESHOLDS];
  const seen = [false, false];
  for (const t of list ?? []) {
    const p = t.priority === "HIGH" ? 1 : 0;
    if (seen[p]) continue;
    seen[p] = true;
    out[p] = {
      maxConnections: t.max_connections ?? 1024,
      maxPendingRequests: t.max_pending_requests ?? 1024,
      maxRequests: t.max_requests ?? 1024,
      maxRetries: t.max_retries ?? 3,
      retryBudget: t.retry_budget
        ? {
          budgetPercent: t.retry_budget.budget_percent?.value ?? 20,
          minRetryConcurrency: t.retry_budget.min_retry_concurrency ?? 3,
        }
        : undefined,
      trackRemaining: t.track_remaining ?? false,
    };
  }
  return out;
}
