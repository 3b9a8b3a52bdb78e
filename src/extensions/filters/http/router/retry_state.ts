/**
 * Per-request retry state, made only for requests whose route (or an internal caller's headers) asks for
 * retries: the effective conditions and limit, attempted hosts, the back-off timer and Envoy's retry stats.
 */
import { type TimeoutTarget, TimerEntry, type TimerWheel } from "../../../../common/timer_wheel.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import {
  backOffMs,
  retriableReset,
  retriableResponse,
  type RetryPolicy,
} from "../../../../http/routing/retry_policy.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import type { Cluster, Host, UpstreamError } from "../../../../upstream/types.ts";

/** Router stats under `cluster.<name>.` beyond the cluster's own (created once per cluster, on first use). */
export interface RetryStats {
  upstream_rq_retry: Counter;
  upstream_rq_retry_success: Counter;
  upstream_rq_retry_limit_exceeded: Counter;
  upstream_rq_retry_overflow: Counter;
  retry_or_shadow_abandoned: Counter;
  upstream_rq_per_try_timeout: Counter;
}

const statsCache = new WeakMap<Cluster, RetryStats>();

/** The retry stats of `cluster` in `root` (cached per cluster). */
export function retryStats(cluster: Cluster, root: Scope): RetryStats {
  let s = statsCache.get(cluster);
  if (s === undefined) {
    const sc = root.scope(`cluster.${cluster.name}`);
    s = {
      upstream_rq_retry: cluster.stats.upstream_rq_retry,
      upstream_rq_retry_success: sc.counter("upstream_rq_retry_success"),
      upstream_rq_retry_limit_exceeded: sc.counter("upstream_rq_retry_limit_exceeded"),
      upstream_rq_retry_overflow: cluster.circuitBreakers.stats.upstream_rq_retry_overflow,
      retry_or_shadow_abandoned: sc.counter("retry_or_shadow_abandoned"),
      upstream_rq_per_try_timeout: sc.counter("upstream_rq_per_try_timeout"),
    };
    statsCache.set(cluster, s);
  }
  return s;
}

/** What the retry decision came to. */
export const RetryDecision = {
  /** Not a retriable outcome (or retries are off). */
  No: 0,
  /** A retry is scheduled; the router waits for `onRetry`. */
  Yes: 1,
  /** Retriable, but num_retries is used up (URX). */
  LimitExceeded: 2,
  /** Retriable, but max_retries of the circuit breaker is reached (UO). */
  Overflow: 3,
} as const;
/** One of RetryDecision. */
export type RetryDecision = typeof RetryDecision[keyof typeof RetryDecision];

/** Who runs the retry when the back-off ends. */
export interface RetryTarget {
  /** Starts the next attempt (the back-off has passed). */
  onRetry(): void;
}

/** The retry state of one request. */
export class RetryState implements TimeoutTarget {
  /** Retries left. */
  remaining: number;
  /** Retries done so far. */
  retries = 0;
  /** Hosts tried (previous_hosts predicate). */
  readonly attempted: Host[] = [];
  /** Extra retriable codes from x-envoy-retriable-status-codes (internal callers). */
  extraCodes: number[] | null = null;
  /** False once the request body outgrew the buffer: the request can no longer be replayed. */
  replayable = true;
  /** The back-off of the last scheduled retry, ms (debug logs). */
  backoffMs = 0;
  readonly #timer = new TimerEntry(this);
  #holdsRetrySlot = false;
  #stats: RetryStats | null = null;

  constructor(
    readonly policy: RetryPolicy | null,
    readonly retryOn: number,
    numRetries: number,
    readonly target: RetryTarget,
    readonly timers: TimerWheel,
    readonly random: () => number,
  ) {
    this.remaining = numRetries;
  }

  /** The router stats of `cluster` (cached). */
  stats(cluster: Cluster, root: Scope): RetryStats {
    return this.#stats ??= retryStats(cluster, root);
  }

  /** Whether a response should be retried; on Yes the back-off timer runs and `target.onRetry` follows. */
  onResponse(
    status: number,
    headers: HeaderMap,
    breakers: PriorityBreakers,
    stats: RetryStats,
  ): RetryDecision {
    this.#releaseSlot(breakers);
    if (!retriableResponse(this.policy, this.retryOn, status, headers, this.extraCodes)) {
      if (this.retries > 0) stats.upstream_rq_retry_success.inc();
      return RetryDecision.No;
    }
    return this.#schedule(breakers, stats);
  }

  /**
   * Whether an attempt that failed with `err` (no response; retryable) should be retried under retry_on.
   */
  onReset(err: UpstreamError, breakers: PriorityBreakers, stats: RetryStats): RetryDecision {
    this.#releaseSlot(breakers);
    if (!retriableReset(this.retryOn, err)) return RetryDecision.No;
    return this.#schedule(breakers, stats);
  }

  #schedule(breakers: PriorityBreakers, stats: RetryStats): RetryDecision {
    if (!this.replayable) return RetryDecision.No;
    if (this.remaining <= 0) {
      stats.upstream_rq_retry_limit_exceeded.inc();
      return RetryDecision.LimitExceeded;
    }
    if (!breakers.tryRetry()) {
      stats.upstream_rq_retry_overflow.inc();
      return RetryDecision.Overflow;
    }
    this.#holdsRetrySlot = true;
    this.remaining--;
    this.retries++;
    stats.upstream_rq_retry.inc();
    const p = this.policy;
    const delay = backOffMs(this.retries, p?.baseIntervalMs ?? 25, p?.maxIntervalMs ?? 250, this.random());
    this.backoffMs = Math.max(1, delay);
    this.timers.arm(this.#timer, this.backoffMs, 0);
    return RetryDecision.Yes;
  }

  onTimeout(): void {
    this.target.onRetry();
  }

  #releaseSlot(breakers: PriorityBreakers): void {
    if (this.#holdsRetrySlot) {
      this.#holdsRetrySlot = false;
      breakers.releaseRetry();
    }
  }

  /** Stops a pending back-off and gives back the retry slot (the request ended). */
  destroy(breakers: PriorityBreakers | null): void {
    this.timers.disarm(this.#timer);
    if (breakers) this.#releaseSlot(breakers);
  }
}
