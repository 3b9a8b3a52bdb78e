/** Messages between the main thread and data-plane workers (structured-clone safe). */
import type { ClusterStatus } from "../admin/types.ts";
import type { LogSettings } from "../common/log.ts";
import type { RuntimeWire } from "../runtime/current.ts";
import type { StatsSnapshot } from "../stats/store.ts";
import type { ListenerAddress } from "./data_plane.ts";
import type { DrainOptions } from "../listener/listener_manager.ts";
import type { RawUpdate } from "./xds_wiring.ts";

/** A listener version and its state in a data plane (for /config_dump's draining listeners). */
export interface ListenerStateInfo {
  name: string;
  version: string;
  state: "active" | "warming" | "draining";
}

/** Main -> worker. */
export type ToWorker =
  | {
    type: "start";
    raw: unknown;
    workerIndex: number;
    log: LogSettings;
    shared: SharedArrayBuffer;
    drainTimeMs?: number;
    /** The runtime snapshot to serve with from the first request. */
    runtime?: RuntimeWire;
  }
  | { type: "log_settings"; settings: LogSettings }
  | { type: "reopen_logs" }
  | { type: "stats"; id: number }
  | { type: "reset_counters"; id: number }
  | { type: "stop"; graceMs: number; drain?: DrainOptions }
  | { type: "xds"; id: number; update: RawUpdate }
  /** A new runtime snapshot (layered_runtime reload or /runtime_modify); answered once installed. */
  | { type: "runtime"; id: number; runtime: RuntimeWire }
  | { type: "mark_warm"; cluster: string }
  | { type: "routes_gave_up"; name: string }
  | { type: "listener_states"; id: number }
  | { type: "drain_listeners"; inboundOnly: boolean; graceful: boolean; graceMs: number; spreadMs: number };

/** Worker -> main. */
export type FromWorker =
  | { type: "started"; addresses: ListenerAddress[] }
  | { type: "error"; message: string }
  | { type: "stats"; id: number; snapshot: StatsSnapshot; clusters: ClusterStatus[] }
  | { type: "reset_counters"; id: number }
  | { type: "xds"; id: number; error?: string; failed?: string[] }
  | { type: "runtime"; id: number }
  | { type: "listener_states"; id: number; states: ListenerStateInfo[] }
  /** The worker's last stats (hot restart hands them to the next process). */
  | { type: "stopped"; snapshot?: StatsSnapshot };
