/// <reference lib="deno.worker" />
/** Entry point of a data-plane worker: loads the bootstrap, runs a DataPlane, answers stats requests. */
import "../config/zod_setup.ts";
import "../registry/builtin.ts";
import { compactHeap, CompactionScheduler, IdleMemoryReducer } from "../common/heap.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { applyLogSettings, reopenLogFile, setLogTag } from "../common/log.ts";
import { reopenAccessLogs } from "../access_log/writer.ts";
import { bootstrapSchema } from "../config/bootstrap.ts";
import { prepareTls } from "../transport/cert_store.ts";
import { prepareExtensions } from "../registry/prepare.ts";
import { DataPlane } from "./data_plane.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";
import type { DynamicClusterManager } from "../upstream/types.ts";
import { applyToPlane, parseUpdate, PartialApplyError } from "./xds_apply.ts";
import type { RawUpdate } from "./xds_wiring.ts";
import { setRuntimeFromWire } from "../runtime/current.ts";

/** Re-parses an update the main thread validated and applies it here; resolves to an error message or undefined. */
async function applyRawUpdate(p: DataPlane, u: RawUpdate): Promise<{ error?: string; failed?: string[] }> {
  const parsed = parseUpdate(u.kind, u.version, u.resources, u.removed);
  if (typeof parsed === "string") return { error: parsed };
  try {
    await applyToPlane(p, parsed, p.statics, undefined, u.reload);
    return {};
  } catch (e) {
    return { error: (e as Error).message, failed: e instanceof PartialApplyError ? e.failed : undefined };
  }
}

let plane: DataPlane | undefined;
/** After xDS updates go quiet, this worker's heap is compacted as at start-up. */
const compaction = new CompactionScheduler();
/** Gives a burst's garbage back once this worker goes quiet (started with the data plane). */
let reducer: IdleMemoryReducer | undefined;

function send(m: FromWorker): void {
  self.postMessage(m);
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  try {
    if (m.type === "start") {
      applyLogSettings(m.log);
      setLogTag(`worker_${m.workerIndex}`);
      // the main thread validated this document; a worker never reads config files, it parses what it is sent
      const r = bootstrapSchema.safeParse(m.raw);
      if (!r.success) {
        send({ type: "error", message: `Bootstrap rejected in the worker: ${r.error.issues[0]?.message}` });
        return;
      }
      // the main thread owns the runtime; this event loop serves with the snapshots it sends
      if (m.runtime) setRuntimeFromWire(m.runtime);
      // Workers only report outcomes: the main thread decides health (checks, outlier sweeps).
      await prepareTls(r.data);
      await prepareExtensions(r.data);
      plane = new DataPlane(r.data, m.workerIndex, SharedArena.attach(m.shared), false, {
        drainTimeMs: m.drainTimeMs,
      });
      await plane.start(true);
      send({ type: "started", addresses: plane.addresses() });
      compactHeap();
      reducer = new IdleMemoryReducer();
    } else if (m.type === "stats") {
      send({ type: "stats", id: m.id, snapshot: plane!.stats.snapshot(), clusters: plane!.clusterStatus() });
    } else if (m.type === "xds") {
      send({ type: "xds", id: m.id, ...await applyRawUpdate(plane!, m.update) });
      compaction.note();
    } else if (m.type === "runtime") {
      setRuntimeFromWire(m.runtime);
      send({ type: "runtime", id: m.id });
    } else if (m.type === "listener_states") {
      send({ type: "listener_states", id: m.id, states: plane!.listenerStates() });
    } else if (m.type === "drain_listeners") {
      plane?.drainListeners(m);
    } else if (m.type === "routes_gave_up") {
      plane?.routes.giveUp(m.name);
    } else if (m.type === "mark_warm") {
      (plane?.clusters as DynamicClusterManager | undefined)?.markWarm(m.cluster);
    } else if (m.type === "log_settings") {
      applyLogSettings(m.settings);
    } else if (m.type === "reopen_logs") {
      reopenAccessLogs();
      reopenLogFile();
    } else if (m.type === "reset_counters") {
      plane?.stats.resetCounters();
      send({ type: "reset_counters", id: m.id });
    } else if (m.type === "stop") {
      compaction.close();
      reducer?.close();
      await plane?.stop(m.graceMs, m.drain);
      send({ type: "stopped", snapshot: plane?.stats.snapshot() });
      self.close();
    }
  } catch (err) {
    send({ type: "error", message: (err as Error).message });
  }
};
