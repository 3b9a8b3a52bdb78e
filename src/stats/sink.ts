/**
 * The stats sink contract (Envoy's Stats::Sink): `stats_sinks` extensions register a `StatsSinkFactory` under
 * the category "stats_sink". The main thread flushes counter deltas and gauge values of used stats every
 * `stats_flush_interval` (workers' stats merged); a sink that wants each histogram value (statsd's timers)
 * also gets a `HistogramWriter` in every event loop, which the store calls as values are recorded.
 */
import type { Logger } from "../common/log.ts";
import type { ClusterManager } from "../upstream/types.ts";
import type { Histogram, Scope } from "./store.ts";
import type { TagProducer } from "./tags.ts";

/** One flush: what changed since the previous one, as Envoy's MetricSnapshot gives sinks. */
export interface MetricSnapshot {
  /** Used counters (ever incremented) with their increase since the last flush, by full name. */
  readonly counters: readonly { readonly name: string; readonly delta: number }[];
  /** Used gauges (ever set) with their value, by full name. */
  readonly gauges: readonly { readonly name: string; readonly value: number }[];
}

/** What a sink is built with. */
export interface StatsSinkContext {
  /** The tag producer of stats_config (tag-extracted names and tags for sinks that send tags). */
  readonly tags: TagProducer;
  /** The stat sinks' logger. */
  readonly log: Logger;
  /** The event loop's stats (a sink's own counters, e.g. `statsd.cx_overflow`). */
  readonly stats: Scope;
  /** The event loop's cluster manager (sinks writing through a cluster); read when connecting, not at build. */
  readonly clusters: () => ClusterManager | undefined;
}

/** A sink on the main thread. */
export interface StatsSink {
  /** Sends one flush; runs on the main thread off the request path, never throws (errors are logged). */
  flush(snapshot: MetricSnapshot): void;
  /** Releases sockets once what is in flight went out; runs at server stop. */
  close(): Promise<void> | void;
}

/** One event loop's receiver of recorded histogram values. */
export interface HistogramWriter {
  /** Called by the store for each recorded value (the request path: must not block). */
  record(h: Histogram, value: number): void;
  /** Releases sockets once what is in flight went out; runs when the event loop's data plane stops. */
  close(): Promise<void> | void;
}

/** What a stats_sink extension's `create` is. */
export interface StatsSinkFactory<C> {
  /** Builds the main thread's sink (at server start). */
  createSink(config: C, ctx: StatsSinkContext): StatsSink;
  /** Builds a per-event-loop histogram writer; absent: the sink does not want histogram values. */
  createHistogramWriter?(config: C, ctx: StatsSinkContext): HistogramWriter;
}
