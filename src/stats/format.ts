/**
 * Envoy's `/stats` output formats (text and `?format=json`) over a StatsSnapshot.
 * The snapshot keeps cumulative data only, so each histogram quantile prints its cumulative
 * value in both the interval and the cumulative slot.
 */
import { type HistogramSnapshot, quantileOf, type StatsSnapshot } from "./store.ts";

/** Envoy's supported quantiles as fractions (printed as P0 .. P100). */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1];

/** The same quantiles as Envoy prints them (percent). */
const QUANTILE_LABELS: readonly number[] = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

/** Options shared by every stats output: `?filter=REGEX` and `?usedonly`. */
export interface StatsQuery {
  /** Only stats whose full name matches (partial match, like Envoy's RE2 search). */
  readonly filter?: RegExp;
  /**
   * Only used stats. The snapshot has no `used` bits, so "used" means a non-zero counter or gauge,
   * or a histogram with at least one value.
   */
  readonly usedOnly?: boolean;
}

/** Reads `filter` and `usedonly` from a query string (the regex is compiled once here); an error string on a bad regex. */
export function parseStatsQuery(params: URLSearchParams): StatsQuery | string {
  const usedOnly = params.has("usedonly");
  const f = params.get("filter");
  if (f === null || f === "") return { usedOnly };
  try {
    return { filter: new RegExp(f), usedOnly };
  } catch (e) {
    return `Invalid regex in filter "${f}": ${(e as Error).message}`;
  }
}

/** True when `name` passes the filter. */
function keep(q: StatsQuery, name: string): boolean {
  return q.filter === undefined || q.filter.test(name);
}

/** Counters and gauges that pass the query, sorted by name. */
export function selectScalars(snap: StatsSnapshot, q: StatsQuery): [string, number][] {
  const out: [string, number][] = [];
  for (const k in snap.counters) {
    const v = snap.counters[k];
    if ((!q.usedOnly || v !== 0) && keep(q, k)) out.push([k, v]);
  }
  for (const k in snap.gauges) {
    const v = snap.gauges[k];
    if ((!q.usedOnly || v !== 0) && keep(q, k)) out.push([k, v]);
  }
  return out.sort(byName);
}

/** Histograms that pass the query, sorted by name. */
export function selectHistograms(snap: StatsSnapshot, q: StatsQuery): [string, HistogramSnapshot][] {
  const out: [string, HistogramSnapshot][] = [];
  for (const k in snap.histograms) {
    const h = snap.histograms[k];
    if ((!q.usedOnly || h.count > 0) && keep(q, k)) out.push([k, h]);
  }
  return out.sort(byName);
}

function byName(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** A quantile value rounded to 6 significant digits (Envoy's histograms are approximate too). */
function roundValue(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
}

/** The quantiles of a histogram in SUPPORTED_QUANTILES order (NaN when empty). */
export function computeQuantiles(h: HistogramSnapshot): number[] {
  return SUPPORTED_QUANTILES.map((q) => roundValue(quantileOf(h.fine, h.count, q)));
}

/** Envoy's one-line histogram summary, "P0(a,a) P25(b,b) ..." or "No recorded values". */
export function histogramSummary(h: HistogramSnapshot): string {
  if (h.count === 0) return "No recorded values";
  const qs = computeQuantiles(h);
  let out = "";
  for (let i = 0; i < qs.length; i++) {
    const v = String(qs[i]);
    out += `${i ? " " : ""}P${QUANTILE_LABELS[i]}(${v},${v})`;
  }
  return out;
}

/** The `/stats` text body: "name: value" lines for counters and gauges (sorted), then histograms. */
export function formatStatsText(snap: StatsSnapshot, q: StatsQuery = {}): string {
  const parts: string[] = [];
  for (const [k, v] of selectScalars(snap, q)) parts.push(`${k}: ${v}\n`);
  for (const [k, h] of selectHistograms(snap, q)) parts.push(`${k}: ${histogramSummary(h)}\n`);
  return parts.join("");
}

/** One computed quantile pair of the JSON output. */
interface QuantilePair {
  interval: number | null;
  cumulative: number | null;
}

/** The `/stats?format=json` document in Envoy's shape (histograms as the last element of "stats"). */
export function statsJson(snap: StatsSnapshot, q: StatsQuery = {}): { stats: unknown[] } {
  const stats: unknown[] = [];
  for (const [name, value] of selectScalars(snap, q)) stats.push({ name, value });
  const hists = selectHistograms(snap, q);
  if (hists.length > 0) {
    const computed = hists.map(([name, h]) => ({
      name,
      values: computeQuantiles(h).map((v): QuantilePair => {
        const x = Number.isNaN(v) ? null : v;
        return { interval: x, cumulative: x };
      }),
    }));
    stats.push({
      histograms: { supported_quantiles: QUANTILE_LABELS.slice(), computed_quantiles: computed },
    });
  }
  return { stats };
}

/** `statsJson` serialized (pretty-printed like Envoy's admin output). */
export function formatStatsJson(snap: StatsSnapshot, q: StatsQuery = {}): string {
  return JSON.stringify(statsJson(snap, q), null, 2) + "\n";
}
