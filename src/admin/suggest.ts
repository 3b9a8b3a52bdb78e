/**
 * `GET /debug/suggest`: settings proposed from what the stats observed, per cluster and per route forwarding to
 * it: a route timeout (p99.9 of upstream latency x 1.5), a per-try timeout, a retry budget (from the retryable
 * error and retry rates) and circuit breaker limits (from the concurrency seen: peaks the dashboard sampled, the
 * gauges now, and Little's law over the latency and request rate, with headroom). Every proposal carries its
 * evidence (sample counts, quantiles) and says when the samples are too few to trust.
 */
import { type HistogramSnapshot, quantileOf, type StatsSnapshot } from "../stats/store.ts";
import type { AdminEndpoint, ClusterStatus } from "./types.ts";

/** Samples below which no timeout is proposed. */
export const MIN_SAMPLES = 100;
/** Samples from which p99.9 is trusted (below it p99 x 2 stands in, flagged "low"). */
export const P999_SAMPLES = 1000;
/** Headroom over observed concurrency for circuit breakers. */
export const HEADROOM = 2;

/** A route forwarding to clusters, as configured now. */
export interface SuggestRoute {
  routeConfig: string;
  virtualHost: string;
  /** Route name, or "#<index>" when unnamed. */
  route: string;
  clusters: string[];
  /** Configured route timeout in ms (0: disabled). */
  timeoutMs: number;
  /** The route (or its virtual host) has a retry policy. */
  retries: boolean;
}

/** Peaks seen by a sampler (the dashboard's, while it ran). */
export interface ObservedPeaks {
  /** Seconds the sampler ran. */
  sampledSeconds: number;
  clusters: Map<string, { rqActive: number; cxActive: number; rps: number }>;
}

/** What /debug/suggest reads. */
export interface SuggestSource {
  stats(): Promise<StatsSnapshot>;
  clusters(): Promise<ClusterStatus[]>;
  routes(): Promise<SuggestRoute[]>;
  /** Peaks seen so far by the dashboard sampler, when it ran. */
  peaks?(): ObservedPeaks | undefined;
}

function r3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** A duration rounded up to two significant digits (137.2 -> 140 ms), at least 1 ms. */
export function niceMs(v: number): number {
  if (!(v > 1)) return 1;
  const p = 10 ** (Math.floor(Math.log10(v)) - 1);
  return Math.round(Math.ceil(v / p) * p * 1000) / 1000;
}

/** Latency evidence of one histogram. */
export function latencyEvidence(h: HistogramSnapshot | undefined): {
  count: number;
  mean_ms: number | null;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
} {
  const n = h?.count ?? 0;
  const q = (x: number) => (n > 0 ? r3(quantileOf(h!.fine, n, x)) : null);
  return {
    count: n,
    mean_ms: n > 0 ? r3(h!.sum / n) : null,
    p50_ms: q(0.5),
    p90_ms: q(0.9),
    p99_ms: q(0.99),
    p999_ms: q(0.999),
  };
}

/** A timeout proposal from latency evidence: p99.9 x 1.5 (or p99 x 2 with fewer samples), none below MIN_SAMPLES. */
export function proposeTimeout(l: ReturnType<typeof latencyEvidence>): {
  value_ms: number | null;
  confidence: "high" | "low" | "none";
  basis: string;
} {
  if (l.count < MIN_SAMPLES) {
    return {
      value_ms: null,
      confidence: "none",
      basis: `too few samples: ${l.count} upstream requests timed (need ${MIN_SAMPLES})`,
    };
  }
  if (l.count < P999_SAMPLES) {
    return {
      value_ms: niceMs(l.p99_ms! * 2),
      confidence: "low",
      basis: `p99 ${l.p99_ms} ms x 2 over ${l.count} samples (p99.9 needs ${P999_SAMPLES})`,
    };
  }
  return {
    value_ms: niceMs(l.p999_ms! * 1.5),
    confidence: "high",
    basis: `p99.9 ${l.p999_ms} ms x 1.5 over ${l.count} samples`,
  };
}

function counter(s: StatsSnapshot, name: string): number {
  return s.counters[name] ?? 0;
}

/** Suggestions for one cluster (pure: unit tests call it). */
export function suggestCluster(
  name: string,
  s: StatsSnapshot,
  status: ClusterStatus | undefined,
  peaks: ObservedPeaks | undefined,
): Record<string, unknown> {
  const p = `cluster.${name}.`;
  const total = counter(s, `${p}upstream_rq_total`);
  const lat = latencyEvidence(s.histograms[`${p}upstream_rq_time`]);
  const e5 = counter(s, `${p}upstream_rq_5xx`);
  const e4 = counter(s, `${p}upstream_rq_4xx`);
  const timeouts = counter(s, `${p}upstream_rq_timeout`);
  const resets = counter(s, `${p}upstream_rq_rx_reset`) + counter(s, `${p}upstream_rq_tx_reset`);
  const cxFail = counter(s, `${p}upstream_cx_connect_fail`);
  const retries = counter(s, `${p}upstream_rq_retry`);
  const overflow = counter(s, `${p}upstream_rq_pending_overflow`);
  const uptime = s.gauges["server.uptime"] ?? 0;
  const retryable = e5 + timeouts + resets + cxFail;
  const errorPct = total > 0 ? r3(retryable * 100 / total) : null;
  const retryPct = total > 0 ? r3(retries * 100 / total) : null;

  const timeout = proposeTimeout(lat);
  const perTry = lat.count >= MIN_SAMPLES
    ? {
      value_ms: niceMs(lat.p99_ms! * 1.5),
      basis: `p99 ${lat.p99_ms} ms x 1.5: a try slower than most is cut and retried within the route timeout`,
    }
    : { value_ms: null, basis: timeout.basis };

  // Retry budget (Envoy's retry_budget): enough for the failures seen, at most Envoy's default 20 %
  let budget: Record<string, unknown>;
  if (total < MIN_SAMPLES) {
    budget = { budget_percent: null, basis: `too few requests: ${total} (need ${MIN_SAMPLES})` };
  } else {
    const pct = Math.min(20, Math.max(5, Math.ceil((errorPct ?? 0) * 2)));
    budget = {
      budget_percent: pct,
      min_retry_concurrency: 3,
      basis:
        `retryable failures ${errorPct}% of ${total} requests (5xx ${e5}, timeouts ${timeouts}, resets ${resets}, ` +
        `connect failures ${cxFail}); retries so far ${retryPct}%: twice the failure rate, between 5 and 20 %`,
    };
  }

  // Concurrency: the larger of the peak sampled, the gauges now and Little's law (rate x p99 latency)
  const peak = peaks?.clusters.get(name);
  const rqNow = s.gauges[`${p}upstream_rq_active`] ?? 0;
  const cxNow = s.gauges[`${p}upstream_cx_active`] ?? 0;
  const rate = peak?.rps ?? (uptime > 0 ? total / uptime : 0);
  const little = lat.p99_ms !== null ? r3(rate * lat.p99_ms / 1000) : null;
  const rqBase = Math.max(peak?.rqActive ?? 0, rqNow, little ?? 0);
  const cxBase = Math.max(peak?.cxActive ?? 0, cxNow, little ?? 0);
  const enough = total >= MIN_SAMPLES;
  const maxRequests = enough ? Math.max(16, Math.ceil(rqBase * HEADROOM)) : null;
  const breakers = {
    max_requests: maxRequests,
    max_connections: enough ? Math.max(16, Math.ceil(cxBase * HEADROOM)) : null,
    max_pending_requests: maxRequests === null ? null : Math.max(16, Math.ceil(maxRequests / 2)),
    max_retries: enough ? Math.max(3, Math.ceil((maxRequests ?? 0) * 0.2)) : null,
    basis: enough
      ? `observed concurrency ${r3(rqBase)} requests / ${
        r3(cxBase)
      } connections x ${HEADROOM} headroom (floor 16); ` +
        (peak
          ? `peaks sampled over ${peaks!.sampledSeconds} s by the dashboard`
          : "no dashboard samples: gauges now") +
        ` and Little's law ${little ?? "n/a"} (${r3(rate)} rq/s x p99)`
      : `too few requests: ${total} (need ${MIN_SAMPLES})`,
    current: status?.circuitBreakers?.default ?? {
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      maxRetries: 3,
    },
    overflows_seen: overflow,
  };
  return {
    name,
    evidence: {
      requests: total,
      latency: lat,
      errors: {
        "5xx": e5,
        "4xx": e4,
        timeouts,
        resets,
        connect_failures: cxFail,
        retryable_percent: errorPct,
      },
      retries: { count: retries, percent: retryPct },
      concurrency: {
        rq_active_now: rqNow,
        cx_active_now: cxNow,
        rq_active_peak: peak?.rqActive ?? null,
        cx_active_peak: peak?.cxActive ?? null,
        peak_rps: peak?.rps ?? null,
        average_rps: uptime > 0 ? r3(total / uptime) : null,
        little_law: little,
      },
    },
    suggestions: { timeout, per_try_timeout: perTry, retry_budget: budget, circuit_breakers: breakers },
  };
}

/** The whole /debug/suggest answer. */
export async function suggest(src: SuggestSource): Promise<Record<string, unknown>> {
  const [s, statuses, routes] = await Promise.all([src.stats(), src.clusters(), src.routes()]);
  const peaks = src.peaks?.();
  const clusters = statuses.map((c) => suggestCluster(c.name, s, c, peaks));
  const byName = new Map(clusters.map((c) => [c.name as string, c]));
  return {
    note: "proposals from counters and histograms since start (or the last /reset_counters); " +
      `no timeout below ${MIN_SAMPLES} samples, p99.9 only from ${P999_SAMPLES}`,
    clusters,
    routes: routes.map((r) => {
      // the slowest cluster the route may take decides its timeout
      const ts = r.clusters.map((c) =>
        (byName.get(c)?.suggestions as { timeout: { value_ms: number | null } })?.timeout
      );
      const known = ts.filter((t) => t && t.value_ms !== null).map((t) => t!.value_ms!);
      const value = known.length === r.clusters.length && known.length > 0 ? Math.max(...known) : null;
      return {
        route_config: r.routeConfig,
        virtual_host: r.virtualHost,
        route: r.route,
        clusters: r.clusters,
        current_timeout_ms: r.timeoutMs,
        suggested_timeout_ms: value,
        basis: value === null
          ? "not enough samples for every cluster of the route"
          : `the largest cluster proposal${r.clusters.length > 1 ? ` of ${r.clusters.join(", ")}` : ""}`,
        retries_configured: r.retries,
      };
    }),
  };
}

/** The /debug/suggest admin endpoint. */
export function suggestEndpoint(src: SuggestSource): AdminEndpoint {
  return {
    path: "/debug/suggest",
    method: "GET",
    help:
      "suggest timeouts, retry budgets and circuit breakers from observed latency, errors and concurrency",
    handler: async () =>
      new Response(JSON.stringify(await suggest(src), null, 2) + "\n", {
        headers: { "content-type": "application/json" },
      }),
  };
}
