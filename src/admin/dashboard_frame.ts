/**
 * The dashboard's frames: per listener and per cluster rates, interval latency quantiles, connections and
 * health, computed from two successive merged stats snapshots (pure functions, unit-tested without a server).
 */
import { type HistogramSnapshot, quantileOf, type StatsSnapshot } from "../stats/store.ts";
import type { ClusterStatus } from "./types.ts";

/** A listener as the dashboard shows it: which stats are its own. */
export interface DashboardListener {
  name: string;
  /** Bound "ip:port". */
  address: string;
  /** Its `listener.<x>.` stat scope name (`<x>`: configured address_port). */
  statName: string;
  /** The stat_prefix of each http_connection_manager of its chains (`http.<prefix>.`). */
  httpPrefixes: string[];
}

/** One row of a frame (a listener or a cluster over the last interval). */
export interface DashboardRow {
  name: string;
  /** Requests per second (listener: downstream, cluster: upstream). */
  rps: number;
  /** Interval latency quantiles in ms (null: no request finished in the interval). */
  p50: number | null;
  p99: number | null;
  /** 4xx and 5xx responses per second. */
  rate4xx: number;
  rate5xx: number;
  /** Open connections (listener: downstream; cluster: upstream). */
  connections: number;
  /** New connections per second. */
  cxRate: number;
  /** In-flight requests. */
  active: number;
}

/** A listener row. */
export interface ListenerRow extends DashboardRow {
  address: string;
}

/** A cluster row with its health. */
export interface ClusterRow extends DashboardRow {
  healthy: number;
  total: number;
  ejectionsActive: number;
  /** Ejections per second (outlier_detection.ejections_enforced_total). */
  ejectionRate: number;
  hosts: { address: string; health: string }[];
}

/** One SSE frame. */
export interface DashboardFrame {
  /** Wall clock ms of the sample. */
  t: number;
  /** Seconds the rates cover. */
  interval: number;
  listeners: ListenerRow[];
  clusters: ClusterRow[];
}

function counterDelta(cur: StatsSnapshot, prev: StatsSnapshot, name: string): number {
  const c = cur.counters[name] ?? 0;
  const p = prev.counters[name] ?? 0;
  // after /reset_counters the counter restarts from zero: its value is the interval's count
  return c >= p ? c - p : c;
}

/** The interval's samples of a histogram (current minus previous buckets), or null when none. */
export function histogramDelta(
  cur: HistogramSnapshot | undefined,
  prev: HistogramSnapshot | undefined,
): { fine: number[]; count: number } | null {
  if (!cur || cur.count === 0) return null;
  if (!prev || prev.count > cur.count) return { fine: cur.fine, count: cur.count };
  const count = cur.count - prev.count;
  if (count === 0) return null;
  const fine = cur.fine.map((v, i) => Math.max(0, v - (prev.fine[i] ?? 0)));
  return { fine, count };
}

function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function quantiles(h: { fine: number[]; count: number } | null): { p50: number | null; p99: number | null } {
  if (h === null) return { p50: null, p99: null };
  return {
    p50: round(quantileOf(h.fine, h.count, 0.5), 3),
    p99: round(quantileOf(h.fine, h.count, 0.99), 3),
  };
}

/** Sums the histograms' interval deltas (same bucket layout). */
function sumDeltas(
  parts: ({ fine: number[]; count: number } | null)[],
): { fine: number[]; count: number } | null {
  let out: { fine: number[]; count: number } | null = null;
  for (const p of parts) {
    if (p === null) continue;
    if (out === null) out = { fine: [...p.fine], count: p.count };
    else {
      out.count += p.count;
      for (let i = 0; i < p.fine.length; i++) out.fine[i] += p.fine[i];
    }
  }
  return out;
}

/** Builds a frame from two snapshots `seconds` apart (pure: unit tests call it directly). */
export function computeFrame(
  cur: StatsSnapshot,
  prev: StatsSnapshot,
  seconds: number,
  listeners: readonly DashboardListener[],
  clusters: readonly ClusterStatus[],
  now: number,
): DashboardFrame {
  const s = seconds > 0 ? seconds : 1;
  const rate = (name: string) => round(counterDelta(cur, prev, name) / s);
  const gauge = (name: string) => cur.gauges[name] ?? 0;
  const hist = (name: string) => histogramDelta(cur.histograms[name], prev.histograms[name]);
  return {
    t: now,
    interval: round(s, 3),
    listeners: listeners.map((l): ListenerRow => {
      const lp = `listener.${l.statName}.`;
      const hp = [...new Set(l.httpPrefixes)].map((p) => `http.${p}.`);
      const sum = (f: (p: string) => number) => round(hp.reduce((a, p) => a + f(p), 0));
      return {
        name: l.name,
        address: l.address,
        rps: sum((p) => rate(`${p}downstream_rq_total`)),
        ...quantiles(sumDeltas(hp.map((p) => hist(`${p}downstream_rq_time`)))),
        rate4xx: sum((p) => rate(`${p}downstream_rq_4xx`)),
        rate5xx: sum((p) => rate(`${p}downstream_rq_5xx`)),
        connections: gauge(`${lp}downstream_cx_active`),
        cxRate: rate(`${lp}downstream_cx_total`),
        active: sum((p) => gauge(`${p}downstream_rq_active`)),
      };
    }),
    clusters: clusters.map((c): ClusterRow => {
      const p = `cluster.${c.name}.`;
      return {
        name: c.name,
        rps: rate(`${p}upstream_rq_total`),
        ...quantiles(hist(`${p}upstream_rq_time`)),
        rate4xx: rate(`${p}upstream_rq_4xx`),
        rate5xx: rate(`${p}upstream_rq_5xx`),
        connections: gauge(`${p}upstream_cx_active`),
        cxRate: rate(`${p}upstream_cx_total`),
        active: gauge(`${p}upstream_rq_active`),
        healthy: c.hosts.filter((h) => h.healthFlags.length === 0).length,
        total: c.hosts.length,
        ejectionsActive: gauge(`${p}outlier_detection.ejections_active`),
        ejectionRate: rate(`${p}outlier_detection.ejections_enforced_total`),
        hosts: c.hosts.map((h) => ({
          address: `${h.address}:${h.port}`,
          health: h.healthFlags.length === 0 ? "healthy" : h.healthFlags.join("|"),
        })),
      };
    }),
  };
}
