/**
 * The `http2.*` stats the codec maintains, as a plain interface of counters and gauges so the codec does not
 * depend on the stats store (a store Counter or Gauge satisfies it). `newH2Stats` gives standalone ones.
 */

/** Something that counts up (a stats store Counter fits). */
export interface H2Counter {
  /** Adds `n` (default 1). */
  inc(n?: number): void;
}

/** Something that goes up and down (a stats store Gauge fits). */
export interface H2Gauge extends H2Counter {
  /** Subtracts `n` (default 1). */
  dec(n?: number): void;
}

/** Counter names, as Envoy names them under `http2.`. */
export const H2_COUNTERS = [
  "dropped_headers_with_underscores",
  "goaway_sent",
  "header_overflow",
  "headers_cb_no_stream",
  "inbound_empty_frames_flood",
  "inbound_priority_frames_flood",
  "inbound_window_update_frames_flood",
  "keepalive_timeout",
  "outbound_control_flood",
  "outbound_flood",
  "rx_messaging_error",
  "rx_reset",
  "stream_refused_errors",
  "too_many_premature_resets",
  "trailers",
  "tx_reset",
] as const;

/** Gauge names, as Envoy names them under `http2.`. */
export const H2_GAUGES = ["streams_active", "pending_send_bytes"] as const;

/** The codec's stats: one counter or gauge per name. */
export type H2Stats =
  & { [K in typeof H2_COUNTERS[number]]: H2Counter }
  & { [K in typeof H2_GAUGES[number]]: H2Gauge };

/** A standalone counter/gauge with a readable value. */
export class H2Value implements H2Gauge {
  /** Current value. */
  value = 0;
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
  }
}

/** Standalone stats for one or more connections (tests, or callers without a store). */
export type H2StatValues = { [K in keyof H2Stats]: H2Value };

/** Makes a fresh set of standalone stats. */
export function newH2Stats(): H2StatValues {
  const s: Record<string, H2Value> = {};
  for (const n of H2_COUNTERS) s[n] = new H2Value();
  for (const n of H2_GAUGES) s[n] = new H2Value();
  return s as H2StatValues;
}

/** Builds H2Stats from a factory (e.g. `(n, gauge) => gauge ? store.gauge("http2." + n) : store.counter(...)`). */
export function h2StatsFrom(make: (name: string, gauge: boolean) => H2Gauge | H2Counter): H2Stats {
  const s: Record<string, H2Counter> = {};
  for (const n of H2_COUNTERS) s[n] = make(n, false);
  for (const n of H2_GAUGES) s[n] = make(n, true);
  return s as H2Stats;
}
