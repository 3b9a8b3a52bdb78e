/**
 * Stats sinks wiring: `configureStats` applies stats_config to an event loop's store and adds the sinks'
 * histogram writers; `StatsFlusher` runs on the main thread and hands each sink the used counters' deltas and
 * used gauges' values of a merged snapshot, every `stats_flush_interval` or when admin reads stats.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { ExtensionRef } from "../config/extension_ref.ts";
import { type CompiledStatsConfig, compileStatsConfig, type StatsConfig } from "./config.ts";
import type { ClusterManager } from "../upstream/types.ts";
import type {
  HistogramWriter,
  MetricSnapshot,
  StatsSink,
  StatsSinkContext,
  StatsSinkFactory,
} from "./sink.ts";
import type { Histogram, StatsSnapshot, StatsStore } from "./store.ts";

/** Envoy's default stats_flush_interval. */
export const DEFAULT_FLUSH_INTERVAL_MS = 5000;

/** The stats fields of a parsed bootstrap. */
export interface StatsBootstrap {
  readonly stats_config?: StatsConfig;
  readonly stats_sinks: readonly ExtensionRef[];
  readonly stats_flush_interval?: number;
  readonly stats_flush_on_admin?: boolean;
}

/** What `configureStats` set up for one event loop. */
export interface StatsSetup {
  readonly compiled: CompiledStatsConfig;
  /** Closes the histogram writers' sockets (data plane or server stop). */
  close(): Promise<void>;
}

const sinkLog = new Logger("stats");

/**
 * Applies stats_config (matcher, histogram buckets) to `store` and connects every sink's histogram writer, so
 * recorded values reach statsd from the event loop that recorded them (as Envoy's per-thread writers). Runs once
 * per event loop when its store is made, before any stat is declared.
 */
export function configureStats(
  store: StatsStore,
  b: StatsBootstrap,
  clusters: () => ClusterManager | undefined = () => undefined,
): StatsSetup {
  const compiled = compileStatsConfig(b.stats_config);
  const writers: HistogramWriter[] = [];
  const sinks = b.stats_sinks ?? [];
  const ctx: StatsSinkContext = { tags: compiled.tags, log: sinkLog, stats: store, clusters };
  for (const ref of sinks) {
    const f = ref.ext.create as StatsSinkFactory<unknown>;
    const w = f.createHistogramWriter?.(ref.config, ctx);
    if (w) writers.push(w);
  }
  const onHistogram = writers.length === 0
    ? undefined
    : writers.length === 1
    ? (h: Histogram, v: number) => writers[0].record(h, v)
    : (h: Histogram, v: number) => {
      for (const w of writers) w.record(h, v);
    };
  store.configure({
    rejects: compiled.rejects,
    bucketsFor: compiled.bucketsFor,
    onHistogram,
    reportUnused: sinks.length > 0,
  });
  return {
    compiled,
    close: async () => {
      await Promise.all(writers.map((w) => w.close()));
    },
  };
}

/** Options of a flusher. */
export interface StatsFlusherOptions {
  /** The merged snapshot of every event loop (Server.stats). */
  readonly snapshot: () => Promise<StatsSnapshot>;
  /** Flush period; undefined: only `flush()` calls (stats_flush_on_admin). */
  readonly intervalMs?: number;
  readonly clock: Clock;
}

/** Builds the main thread's sinks of a bootstrap (at server start); throws when a sink cannot be built. */
export function createSinks(
  b: StatsBootstrap,
  compiled: CompiledStatsConfig,
  main: { stats: StatsStore; clusters: () => ClusterManager | undefined },
): StatsSink[] {
  const ctx: StatsSinkContext = { tags: compiled.tags, log: sinkLog, ...main };
  return (b.stats_sinks ?? []).map((ref) =>
    (ref.ext.create as StatsSinkFactory<unknown>).createSink(ref.config, ctx)
  );
}

/** Flushes sinks on the main thread: counter deltas since the previous flush, gauge values; used stats only. */
export class StatsFlusher {
  readonly #sinks: readonly StatsSink[];
  readonly #opts: StatsFlusherOptions;
  /** Counter values at the previous flush. */
  readonly #latched = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #closed = false;
  #running: Promise<void> | undefined;

  constructor(sinks: readonly StatsSink[], opts: StatsFlusherOptions) {
    this.#sinks = sinks;
    this.#opts = opts;
  }

  /** Arms the periodic flush (nothing with stats_flush_on_admin). */
  start(): void {
    if (this.#opts.intervalMs === undefined || this.#closed) return;
    this.#timer = this.#opts.clock.setTimer(() => {
      this.#timer = undefined;
      this.flush().finally(() => this.start());
    }, this.#opts.intervalMs);
  }

  /** Takes a snapshot and flushes it; resolves when the sinks have it (one flush at a time). */
  flush(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#opts.snapshot()
      .then((s) => this.flushSnapshot(s))
      .catch((e) => sinkLog.warn(`stats flush failed: ${e}`))
      .finally(() => this.#running = undefined);
    return this.#running;
  }

  /** Hands one merged snapshot to every sink (used counters' deltas, used gauges). */
  flushSnapshot(s: StatsSnapshot): void {
    const m = toMetricSnapshot(s, this.#latched);
    for (const sink of this.#sinks) {
      try {
        sink.flush(m);
      } catch (e) {
        sinkLog.warn(`stats sink flush failed: ${e}`);
      }
    }
  }

  /** Stops the timer and closes every sink; waits for a flush in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await Promise.all(this.#sinks.map((sink) => sink.close()));
  }
}

/**
 * The sinks' view of a snapshot: counters whose `used` bit is set with their increase since `latched` (updated
 * here; a counter that went down, as after /reset_counters, reports its whole value), and used gauges.
 */
export function toMetricSnapshot(s: StatsSnapshot, latched: Map<string, number>): MetricSnapshot {
  const unused = new Set(s.unused ?? []);
  const counters: { name: string; delta: number }[] = [];
  const gauges: { name: string; value: number }[] = [];
  for (const name in s.counters) {
    const v = s.counters[name];
    const prev = latched.get(name) ?? 0;
    latched.set(name, v);
    if (unused.has(name)) continue;
    counters.push({ name, delta: v >= prev ? v - prev : v });
  }
  for (const name in s.gauges) if (!unused.has(name)) gauges.push({ name, value: s.gauges[name] });
  return { counters, gauges };
}
