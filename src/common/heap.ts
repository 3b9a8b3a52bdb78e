/**
 * Gives the memory that start-up and config loads leave behind back to the operating system.
 *
 * Loading a bootstrap allocates tens of MB that die at once (the YAML document, zod's parse, module
 * evaluation), and V8 grows the young generation to hold them. Chrome and Node run V8's memory reducer,
 * which compacts the heap and shrinks the young generation once a process goes quiet; Deno does not, so
 * an idle proxy kept about 9 MB of empty young-generation pages for ever. `compactHeap()` asks V8 for the
 * same memory-reducing full collection, once per isolate, after a config has been applied. Under load
 * the young generation grows back as V8 sees fit, so throughput is untouched.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type GcFn = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/** V8's `gc` function of this isolate; null when it could not be had (then compaction is skipped). */
let gcFn: GcFn | null | undefined;

function obtainGc(): GcFn | null {
  const exposed = (globalThis as { gc?: GcFn }).gc;
  if (typeof exposed === "function") return exposed;
  try {
    // --expose-gc only takes effect in contexts created after it is set: make one, keep its `gc`.
    setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc");
    return typeof fn === "function" ? fn as GcFn : null;
  } catch {
    return null;
  }
}

/**
 * Runs a synchronous, memory-reducing full collection of this isolate (a pause of tens of ms on a
 * freshly loaded proxy). Returns false when V8's collector could not be reached.
 */
export function compactHeap(): boolean {
  if (gcFn === undefined) gcFn = obtainGc();
  if (gcFn === null) return false;
  gcFn({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}

/**
 * Compacts once config updates have been quiet for `quietMs` (xDS updates: a burst of EDS changes every 100 ms
 * must not pause the event loop each time), and at most once per `minIntervalMs`. `note()` after each applied
 * update; `close()` cancels the pending compaction (no timer is left).
 */
export class CompactionScheduler {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #last = 0;

  constructor(readonly quietMs = 1000, readonly minIntervalMs = 5000, readonly compact = compactHeap) {}

  /** An update was applied: (re)arms the quiet-period timer. */
  note(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const wait = Math.max(this.quietMs, this.#last + this.minIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = Date.now();
      this.compact();
    }, wait);
  }

  /** Cancels a pending compaction. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
