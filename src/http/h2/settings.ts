/** SETTINGS handling: the list we advertise, the peer's values as received, and the inbound flood counters. */
import { ErrorCode, MAX_WINDOW, SettingId } from "./constants.ts";
import { readU32 } from "./frame.ts";
import type { ResolvedH2Options } from "./options.ts";

/** The SETTINGS we send first, as parallel id/value lists. */
export function localSettings(o: ResolvedH2Options, isClient: boolean): [number[], number[]] {
  const ids: number[] = [];
  const vals: number[] = [];
  const add = (id: number, v: number) => (ids.push(id), vals.push(v));
  if (o.hpack_table_size !== 4096) add(SettingId.HEADER_TABLE_SIZE, o.hpack_table_size);
  if (isClient) add(SettingId.ENABLE_PUSH, 0);
  else add(SettingId.MAX_CONCURRENT_STREAMS, o.max_concurrent_streams);
  add(SettingId.INITIAL_WINDOW_SIZE, o.initial_stream_window_size);
  if (o.max_frame_size !== 16384) add(SettingId.MAX_FRAME_SIZE, o.max_frame_size);
  add(SettingId.MAX_HEADER_LIST_SIZE, o.max_header_list_size);
  if (!isClient && o.allow_connect) add(SettingId.ENABLE_CONNECT_PROTOCOL, 1);
  return [ids, vals];
}

/** The peer's settings (RFC 9113 defaults until its SETTINGS arrive; concurrency assumed 100). */
export class PeerSettings {
  /** SETTINGS_MAX_FRAME_SIZE. */
  maxFrameSize = 16384;
  /** SETTINGS_INITIAL_WINDOW_SIZE. */
  initialWindow = 65535;
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrent = 100;
  /** SETTINGS_HEADER_TABLE_SIZE of the last frame that carried it, else -1. */
  headerTableSize = -1;
  /** Change of the initial window made by the last `apply`. */
  windowDelta = 0;
  /** Error code of the last failed `apply`. */
  errorCode = 0;

  /** Applies a SETTINGS payload; returns "" or the detail of a connection error (code in errorCode). */
  apply(b: Uint8Array, s: number, e: number, isClient: boolean): string {
    this.windowDelta = 0;
    this.headerTableSize = -1;
    if ((e - s) % 6 !== 0) return this.#err(ErrorCode.FRAME_SIZE_ERROR, "http2.settings_size");
    for (let p = s; p < e; p += 6) {
      const key = (b[p] << 8) | b[p + 1];
      const v = readU32(b, p + 2);
      switch (key) {
        case SettingId.HEADER_TABLE_SIZE:
          this.headerTableSize = v;
          break;
        case SettingId.ENABLE_PUSH:
          if (v > 1 || (v === 1 && isClient)) {
            return this.#err(ErrorCode.PROTOCOL_ERROR, "http2.invalid_enable_push");
          }
          break;
        case SettingId.MAX_CONCURRENT_STREAMS:
          this.maxConcurrent = v;
          break;
        case SettingId.INITIAL_WINDOW_SIZE:
          if (v > MAX_WINDOW) return this.#err(ErrorCode.FLOW_CONTROL_ERROR, "http2.invalid_window");
          this.windowDelta += v - this.initialWindow;
          this.initialWindow = v;
          break;
        case SettingId.MAX_FRAME_SIZE:
          if (v < 16384 || v > 16777215) {
            return this.#err(ErrorCode.PROTOCOL_ERROR, "http2.invalid_max_frame_size");
          }
          this.maxFrameSize = v;
          break;
      }
    }
    return "";
  }

  #err(code: number, detail: string): string {
    this.errorCode = code;
    return detail;
  }
}

/** Inbound frame counters behind Envoy's flood protections. */
export class InboundCounters {
  #empty = 0;
  #priority = 0;
  #windowUpdates = 0;
  readonly #o: ResolvedH2Options;

  /** Counters checked against `o`'s limits. */
  constructor(o: ResolvedH2Options) {
    this.#o = o;
  }

  /** A DATA/HEADERS/CONTINUATION frame arrived; true when too many in a row were empty without END_STREAM. */
  emptyFlood(empty: boolean): boolean {
    if (!empty) {
      this.#empty = 0;
      return false;
    }
    return ++this.#empty > this.#o.max_consecutive_inbound_frames_with_empty_payload;
  }

  /** A PRIORITY frame arrived; true past the per-stream allowance. */
  priorityFlood(streamsOpened: number): boolean {
    return ++this.#priority > 5 + 2 * this.#o.max_inbound_priority_frames_per_stream * (1 + streamsOpened);
  }

  /** A WINDOW_UPDATE arrived; true past the allowance per DATA frame sent. */
  windowUpdateFlood(streamsOpened: number, dataFramesSent: number): boolean {
    const per = this.#o.max_inbound_window_update_frames_per_data_frame_sent;
    return ++this.#windowUpdates > 5 + 2 * (streamsOpened + per * dataFramesSent);
  }
}
