/** Connection options of the HTTP/2 codec, with Envoy's Http2ProtocolOptions names and defaults. */
import { DEFAULT_WINDOW, MIN_MAX_FRAME_SIZE } from "./constants.ts";
import type { H2Stats } from "./stats.ts";

/** Protocol options (snake_case like Envoy's Http2ProtocolOptions). Every field is optional. */
export interface H2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (default 100; Envoy's is 2147483647). */
  max_concurrent_streams?: number;
  /** Per-stream receive window (default 268435456, as Envoy). */
  initial_stream_window_size?: number;
  /** Connection receive window (default 268435456, as Envoy). */
  initial_connection_window_size?: number;
  /** Our HPACK decoder table size, SETTINGS_HEADER_TABLE_SIZE (default 4096). */
  hpack_table_size?: number;
  /** Largest header list (HPACK octets) accepted, SETTINGS_MAX_HEADER_LIST_SIZE (default 60 KiB). */
  max_header_list_size?: number;
  /** Largest header count accepted (default 100, Envoy's max_headers_count). */
  max_headers_count?: number;
  /** SETTINGS_MAX_FRAME_SIZE we accept (default 16384). */
  max_frame_size?: number;
  /** Frames queued for the socket before the connection is closed (default 10000). */
  max_outbound_frames?: number;
  /** Control frames queued for the socket before the connection is closed (default 1000). */
  max_outbound_control_frames?: number;
  /** Consecutive empty DATA/HEADERS/CONTINUATION frames tolerated (default 1). */
  max_consecutive_inbound_frames_with_empty_payload?: number;
  /** PRIORITY frames tolerated per opened stream (default 100). */
  max_inbound_priority_frames_per_stream?: number;
  /** WINDOW_UPDATE frames tolerated per DATA frame sent (default 10). */
  max_inbound_window_update_frames_per_data_frame_sent?: number;
  /** Streams closed before the premature-reset check applies (default 500, Envoy's runtime default). */
  premature_reset_total_stream_count?: number;
  /** A stream reset by the peer within this many ms of opening is premature (default 1000). */
  premature_reset_min_stream_lifetime_ms?: number;
  /** Advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (server only; default false). */
  allow_connect?: boolean;
  /** Bytes queued for the socket above which stream data waits in stream queues (default 256 KiB). */
  write_buffer_high_watermark?: number;
  /** Stats to maintain (default: private standalone values). */
  stats?: H2Stats;
}

/** Options with every default applied. */
export type ResolvedH2Options = Required<Omit<H2Options, "stats">>;

/** Applies defaults and checks ranges; throws a RangeError naming the field. */
export function resolveOptions(o: H2Options): ResolvedH2Options {
  const r: ResolvedH2Options = {
    max_concurrent_streams: o.max_concurrent_streams ?? 100,
    initial_stream_window_size: o.initial_stream_window_size ?? 268435456,
    initial_connection_window_size: o.initial_connection_window_size ?? 268435456,
    hpack_table_size: o.hpack_table_size ?? 4096,
    max_header_list_size: o.max_header_list_size ?? 60 * 1024,
    max_headers_count: o.max_headers_count ?? 100,
    max_frame_size: o.max_frame_size ?? MIN_MAX_FRAME_SIZE,
    max_outbound_frames: o.max_outbound_frames ?? 10000,
    max_outbound_control_frames: o.max_outbound_control_frames ?? 1000,
    max_consecutive_inbound_frames_with_empty_payload: o.max_consecutive_inbound_frames_with_empty_payload ??
      1,
    max_inbound_priority_frames_per_stream: o.max_inbound_priority_frames_per_stream ?? 100,
    max_inbound_window_update_frames_per_data_frame_sent:
      o.max_inbound_window_update_frames_per_data_frame_sent ??
        10,
    premature_reset_total_stream_count: o.premature_reset_total_stream_count ?? 500,
    premature_reset_min_stream_lifetime_ms: o.premature_reset_min_stream_lifetime_ms ?? 1000,
    allow_connect: o.allow_connect ?? false,
    write_buffer_high_watermark: o.write_buffer_high_watermark ?? 256 * 1024,
  };
  range("initial_stream_window_size", r.initial_stream_window_size, DEFAULT_WINDOW, 2147483647);
  range("initial_connection_window_size", r.initial_connection_window_size, DEFAULT_WINDOW, 2147483647);
  range("max_concurrent_streams", r.max_concurrent_streams, 1, 2147483647);
  range("max_frame_size", r.max_frame_size, MIN_MAX_FRAME_SIZE, 16777215);
  range("hpack_table_size", r.hpack_table_size, 0, 2147483647);
  return r;
}

function range(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`HTTP/2 option ${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
}
