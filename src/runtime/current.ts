/**
 * The runtime snapshot of this event loop (module state: the main thread and each worker have their own copy,
 * as with SecretRegistry). The main thread's RuntimeLoader builds every snapshot and hands it to each event loop
 * (directly in-process, as a `{type: "runtime"}` message to workers); features read `runtime()` per request and
 * never touch files.
 */
import { EMPTY_SNAPSHOT, type RuntimeEntry, RuntimeSnapshot } from "./snapshot.ts";

let current: RuntimeSnapshot = EMPTY_SNAPSHOT;

/** This event loop's current snapshot (per request: one module variable read). */
export function runtime(): RuntimeSnapshot {
  return current;
}

/** Installs `s` as this event loop's snapshot (the loader on the main thread, a worker on a runtime message). */
export function setRuntime(s: RuntimeSnapshot): void {
  current = s;
}

/** A snapshot as it crosses to workers: the merged entries and the version (structured-clone safe). */
export interface RuntimeWire {
  version: number;
  entries: [string, RuntimeEntry][];
}

/** The wire form of a snapshot (layers stay on the main thread, which alone answers /runtime). */
export function toWire(s: RuntimeSnapshot): RuntimeWire {
  return { version: s.version, entries: [...s.entries()] };
}

/** Installs a snapshot received from the main thread. */
export function setRuntimeFromWire(w: RuntimeWire): void {
  current = new RuntimeSnapshot([{ name: "main", values: new Map(w.entries) }], w.version);
}
