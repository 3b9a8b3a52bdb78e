/**
 * The stats store: counters, gauges and histograms with Envoy's dotted names.
 * Each worker owns one store; the main thread merges worker snapshots (see `mergeSnapshots`).
 */

/** A monotonically increasing count. */
export class Counter {
  value = 0;
  /** Set on the first `inc` and kept (Envoy's `used()`): stats sinks flush only used counters. */
  used = false;
  constructor(readonly name: string) {}
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
}

/** How a gauge combines across workers and hot restarts. */
export type GaugeMode = "accumulate" | "never_import";

/** A value that goes up and down. */
export class Gauge {
  value = 0;
  used = false;
  constructor(readonly name: string, readonly mode: GaugeMode = "accumulate") {}
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }
  /** Sets the value. */
  set(v: number): void {
    this.value = v;
    this.used = true;
  }
}

/** Envoy's default histogram bucket bounds (used for Prometheus output). */
export const SUPPORTED_BUCKETS: readonly number[] = [
  0.5,
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  300000,
  600000,
  1800000,
  3600000,
];

const FINE_MIN = 0.001;
const FINE_PER_OCTAVE = 16;
const FINE_COUNT = 48 * FINE_PER_OCTAVE + 2;
const LOG2_FINE_MIN = Math.log2(FINE_MIN);

/** Index of the fine bucket holding `v` (0 holds everything below FINE_MIN). */
function fineIndex(v: number): number {
  if (!(v >= FINE_MIN)) return 0;
  const i = Math.floor((Math.log2(v) - LOG2_FINE_MIN) * FINE_PER_OCTAVE) + 1;
  return i >= FINE_COUNT ? FINE_COUNT - 1 : i;
}

/** Lower bound of fine bucket `i`. */
function fineLower(i: number): number {
  return i === 0 ? 0 : Math.pow(2, LOG2_FINE_MIN + (i - 1) / FINE_PER_OCTAVE);
}

/** Called with each value a histogram records (stats sinks that send every value, as Envoy's statsd). */
export type HistogramListener = (h: Histogram, value: number) => void;

/** A distribution of values (milliseconds or bytes) with mergeable log-linear buckets (about 4 % wide). */
export class Histogram {
  count = 0;
  sum = 0;
  used = false;
  /** Fine buckets for quantiles. */
  fine: Uint32Array = new Uint32Array(FINE_COUNT);
  /** Non-cumulative counts per bucket bound (last slot: above the last bound). */
  buckets: Float64Array;
  /** Sinks that want every value (set by the store when stats sinks are configured). */
  onRecord: HistogramListener | undefined = undefined;
  /**
   * `bounds`: the bucket upper bounds (Prometheus output), ascending; Envoy's SUPPORTED_BUCKETS unless
   * stats_config.histogram_bucket_settings names this histogram.
   */
  constructor(
    readonly name: string,
    readonly unit: "ms" | "bytes" | "unspecified" = "ms",
    readonly bounds: readonly number[] = SUPPORTED_BUCKETS,
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** Records one value. */
  record(v: number): void {
    if (!(v >= 0)) v = 0;
    this.count++;
    this.sum += v;
    this.used = true;
    this.fine[fineIndex(v)]++;
    let b = 0;
    const bounds = this.bounds;
    const n = bounds.length;
    while (b < n && v > bounds[b]) b++;
    this.buckets[b]++;
    if (this.onRecord !== undefined) this.onRecord(this, v);
  }

  /** Clears all recorded values. */
  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.fine.fill(0);
    this.buckets.fill(0);
  }

  /** The value below which fraction `q` (0..1) of samples fall, or NaN when empty. */
  quantile(q: number): number {
    return quantileOf(this.fine, this.count, q);
  }

  /** A plain, structured-clone-safe copy. */
  snapshot(): HistogramSnapshot {
    const s: HistogramSnapshot = {
      unit: this.unit,
      count: this.count,
      sum: this.sum,
      fine: Array.from(this.fine),
      buckets: Array.from(this.buckets),
    };
    if (this.bounds !== SUPPORTED_BUCKETS) s.bounds = this.bounds.slice();
    return s;
  }
}

/** The value below which fraction `q` of the samples in `fine` fall (interpolated), or NaN when empty. */
export function quantileOf(fine: ArrayLike<number>, count: number, q: number): number {
  if (count === 0) return NaN;
  const target = q * count;
  let seen = 0;
  for (let i = 0; i < fine.length; i++) {
    const c = fine[i];
    if (c === 0) continue;
    if (seen + c >= target) {
      const lo = fineLower(i);
      const hi = fineLower(i + 1);
      const frac = c === 0 ? 0 : (target - seen) / c;
      return lo + (hi - lo) * Math.min(1, Math.max(0, frac));
    }
    seen += c;
  }
  return fineLower(fine.length);
}

/** A histogram as plain data. */
export interface HistogramSnapshot {
  unit: string;
  count: number;
  sum: number;
  fine: number[];
  buckets: number[];
  /** The bucket bounds `buckets` counts against when not Envoy's SUPPORTED_BUCKETS (histogram_bucket_settings). */
  bounds?: number[];
}

/** All stats of a store (or a merge of stores) as plain data; keys are full stat names. */
export interface StatsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, HistogramSnapshot>;
  /** The gauges whose mode is never_import (a hot restart's next process does not add them to its own). */
  neverImport?: string[];
  /**
   * Counters and gauges never changed (Envoy's `used()` false), which stats sinks skip; present only when the
   * store reports it (stats sinks configured, `StatsStore.configure`).
   */
  unused?: string[];
}

/** How a store instantiates stats (stats_config): which names it rejects, histogram buckets, value listeners. */
export interface StoreSettings {
  /** True for a name stats_config.stats_matcher rejects: the stat works but is never stored or shown. */
  readonly rejects?: (name: string) => boolean;
  /** Bucket bounds for a new histogram (histogram_bucket_settings; first match). */
  readonly bucketsFor?: (name: string) => readonly number[];
  /** Gets every value a histogram records (stats sinks). */
  readonly onHistogram?: HistogramListener;
  /** Snapshots list never-used counters and gauges (stats sinks flush only used ones). */
  readonly reportUnused?: boolean;
}

/** A prefix view onto a store; `scope("cluster.a.")` then `counter("upstream_rq_total")`. */
export interface Scope {
  /** The full prefix of this scope (ends with "." unless empty). */
  readonly prefix: string;
  /** Finds or creates a counter. */
  counter(name: string): Counter;
  /** Finds or creates a gauge. */
  gauge(name: string, mode?: GaugeMode): Gauge;
  /** Finds or creates a histogram. */
  histogram(name: string, unit?: "ms" | "bytes" | "unspecified"): Histogram;
  /** A child scope; `prefix` gets a trailing "." if missing. */
  scope(prefix: string): Scope;
}

/** Owns every stat of one worker (or of the single-threaded process). */
export class StatsStore implements Scope {
  readonly prefix = "";
  readonly counters = new Map<string, Counter>();
  readonly gauges = new Map<string, Gauge>();
  readonly histograms = new Map<string, Histogram>();
  #settings: StoreSettings = {};
  /** Stats the matcher rejected, handed out again by name (Envoy's null stats: they count, nobody sees them). */
  #rejected: Map<string, Counter | Gauge | Histogram> | undefined;

  /**
   * Applies stats_config (matcher, buckets) and sinks' listeners; runs once when the event loop is built, before
   * stats are declared (stats already created keep their buckets and stay, as nothing re-instantiates them).
   */
  configure(settings: StoreSettings): void {
    this.#settings = settings;
    this.#rejected = settings.rejects ? new Map() : undefined;
    for (const h of this.histograms.values()) h.onRecord = settings.onHistogram;
  }

  #reject<T extends Counter | Gauge | Histogram>(name: string, make: () => T): T | undefined {
    if (this.#rejected === undefined || !this.#settings.rejects!(name)) return undefined;
    let r = this.#rejected.get(name);
    if (!r) this.#rejected.set(name, r = make());
    return r as T;
  }

  /** Finds or creates a counter by full name. */
  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (!c) {
      const r = this.#reject(name, () => new Counter(name));
      if (r instanceof Counter) return r;
      this.counters.set(name, c = new Counter(name));
    }
    return c;
  }
  /** Finds or creates a gauge by full name. */
  gauge(name: string, mode: GaugeMode = "accumulate"): Gauge {
    let g = this.gauges.get(name);
    if (!g) {
      const r = this.#reject(name, () => new Gauge(name, mode));
      if (r instanceof Gauge) return r;
      this.gauges.set(name, g = new Gauge(name, mode));
    }
    return g;
  }
  /** Finds or creates a histogram by full name. */
  histogram(name: string, unit: "ms" | "bytes" | "unspecified" = "ms"): Histogram {
    let h = this.histograms.get(name);
    if (!h) {
      const r = this.#reject(name, () => new Histogram(name, unit));
      if (r instanceof Histogram) return r;
      h = new Histogram(name, unit, this.#settings.bucketsFor?.(name) ?? SUPPORTED_BUCKETS);
      h.onRecord = this.#settings.onHistogram;
      this.histograms.set(name, h);
    }
    return h;
  }
  /** A prefixed view. */
  scope(prefix: string): Scope {
    return new PrefixScope(this, prefix.endsWith(".") || prefix === "" ? prefix : prefix + ".");
  }
  /** Zeroes every counter (the admin `/reset_counters`). */
  resetCounters(): void {
    for (const c of this.counters.values()) c.value = 0;
    for (const h of this.histograms.values()) h.reset();
  }
  /** Plain-data copy of every stat, safe to postMessage between workers. */
  snapshot(): StatsSnapshot {
    const s: StatsSnapshot = { counters: {}, gauges: {}, histograms: {} };
    const unused: string[] | undefined = this.#settings.reportUnused ? [] : undefined;
    for (const [k, c] of this.counters) {
      s.counters[k] = c.value;
      if (unused && !c.used) unused.push(k);
    }
    for (const [k, g] of this.gauges) {
      s.gauges[k] = g.value;
      if (g.mode === "never_import") (s.neverImport ??= []).push(k);
      if (unused && !g.used) unused.push(k);
    }
    for (const [k, h] of this.histograms) s.histograms[k] = h.snapshot();
    if (unused) s.unused = unused;
    return s;
  }
}

class PrefixScope implements Scope {
  constructor(readonly store: StatsStore, readonly prefix: string) {}
  counter(name: string): Counter {
    return this.store.counter(this.prefix + name);
  }
  gauge(name: string, mode?: GaugeMode): Gauge {
    return this.store.gauge(this.prefix + name, mode);
  }
  histogram(name: string, unit?: "ms" | "bytes" | "unspecified"): Histogram {
    return this.store.histogram(this.prefix + name, unit);
  }
  scope(prefix: string): Scope {
    return new PrefixScope(this.store, this.prefix + (prefix.endsWith(".") ? prefix : prefix + "."));
  }
}

/** Sums snapshots from several workers into one (counters, accumulate gauges and histograms add up). */
export function mergeSnapshots(parts: StatsSnapshot[]): StatsSnapshot {
  const out: StatsSnapshot = { counters: {}, gauges: {}, histograms: {} };
  if (parts.some((p) => p.unused !== undefined)) out.unused = mergeUnused(parts);
  for (const p of parts) {
    for (const k in p.counters) out.counters[k] = (out.counters[k] ?? 0) + p.counters[k];
    for (const k in p.gauges) out.gauges[k] = (out.gauges[k] ?? 0) + p.gauges[k];
    if (p.neverImport) out.neverImport = [...new Set([...out.neverImport ?? [], ...p.neverImport])];
    for (const k in p.histograms) {
      const h = p.histograms[k];
      const o = out.histograms[k];
      if (!o) {
        out.histograms[k] = {
          unit: h.unit,
          count: h.count,
          sum: h.sum,
          fine: h.fine.slice(),
          buckets: h.buckets.slice(),
        };
        if (h.bounds) out.histograms[k].bounds = h.bounds.slice();
        continue;
      }
      o.count += h.count;
      o.sum += h.sum;
      for (let i = 0; i < h.fine.length; i++) o.fine[i] += h.fine[i];
      for (let i = 0; i < h.buckets.length; i++) o.buckets[i] += h.buckets[i];
    }
  }
  return out;
}

/** Names unused in every part that has them (a part without an `unused` list counts all its stats as used). */
function mergeUnused(parts: StatsSnapshot[]): string[] {
  const used = new Set<string>();
  const candidates = new Set<string>();
  for (const p of parts) {
    const u = new Set(p.unused ?? []);
    for (const k in p.counters) (u.has(k) ? candidates : used).add(k);
    for (const k in p.gauges) (u.has(k) ? candidates : used).add(k);
  }
  return [...candidates].filter((k) => !used.has(k));
}
