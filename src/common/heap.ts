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
import { libc } from "./libc.ts";

type GcFn = (options: { type: "major"; execution: "sync"; flavor: "last-resort" | "regular" }) => void;

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
 * A regular full collection (garbage of the old generation freed, its empty pages released) that leaves the
 * young generation at the size V8 grew it to: shrinking it, as `compactHeap` does, made the next burst of
 * traffic run ~15 % slower until V8 grew it back. Returns false when V8's collector could not be reached.
 */
export function collectGarbage(): boolean {
  if (gcFn === undefined) gcFn = obtainGc();
  if (gcFn === null) return false;
  gcFn({ type: "major", execution: "sync", flavor: "regular" });
  return true;
}

/**
 * Gives the C heap's free pages back to the operating system (glibc's `malloc_trim(0)`, which releases free
 * pages inside the heap as well as at its top; ~1 ms). The runtime's per-connection and per-op allocations
 * (socket resources, op futures, backing stores) interleave with short-lived ones, so after a burst the C heap
 * holds pages with nothing live on them that glibc never returns by itself: ~0.6 KiB per connection held
 * through a burst of 10,000 requests. Envoy's `shrink_heap` overload action does the same for tcmalloc.
 * False where libc (or its malloc_trim) is unavailable.
 */
export function trimNativeHeap(): boolean {
  const trim = libc()?.malloc_trim;
  if (!trim) return false;
  trim(0n);
  return true;
}

/** The idle reducer's default: a regular full collection (see `collectGarbage`), then the C heap trimmed. */
export function collectAndTrim(): boolean {
  if (!collectGarbage()) return false;
  trimNativeHeap();
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

/** The figures `IdleMemoryReducer` samples (the shape of `Deno.memoryUsage()`). */
export interface HeapSample {
  heapTotal: number;
  heapUsed: number;
  external: number;
}

/** Options of `IdleMemoryReducer`; the defaults suit a proxy. */
export interface IdleMemoryReducerOptions {
  /** How often the heap is sampled, ms (default 1000). */
  intervalMs?: number;
  /** Growth of heapTotal + external since the last compaction that is worth a collection (default 4 MiB). */
  growthBytes?: number;
  /** Allocation between two samples below which the isolate counts as quiet (default 512 KiB). */
  quietBytes?: number;
  /** Samples the heap (default `Deno.memoryUsage`). */
  sample?: () => HeapSample;
  /** Runs the collection (default `collectAndTrim`). */
  compact?: () => boolean;
}

/**
 * V8's memory reducer, which Chrome and Node run and Deno does not: once an isolate goes quiet after a burst,
 * one memory-reducing collection gives back what the burst left (dead request objects, a young generation grown
 * under load, the backing stores of freed buffers), and the C heap is trimmed after it (`trimNativeHeap`).
 * Without it a proxy that served a burst of connections kept the burst's garbage resident until traffic came
 * back (~11 of the ~15 KiB an idle keep-alive connection seemed to cost). Quiet means heapUsed moved by less than `quietBytes` between two samples; the collection
 * runs only when heapTotal + external grew by `growthBytes` since the last one, so a steady or idle process
 * pays one `Deno.memoryUsage()` a second and nothing else. The pause (tens of ms) lands when little or no
 * traffic is there to notice it.
 */
export class IdleMemoryReducer {
  #timer: ReturnType<typeof setInterval> | undefined;
  #base = 0;
  #lastUsed = 0;
  /** Follow-up collections armed after one that freed a lot (0: none). */
  #again = 0;
  readonly #growth: number;
  readonly #quiet: number;
  readonly #sample: () => HeapSample;
  readonly #compact: () => boolean;
  /** Collections run so far. */
  runs = 0;

  constructor(opts: IdleMemoryReducerOptions = {}) {
    this.#growth = opts.growthBytes ?? 4 * 1024 * 1024;
    this.#quiet = opts.quietBytes ?? 512 * 1024;
    this.#sample = opts.sample ?? Deno.memoryUsage;
    this.#compact = opts.compact ?? collectAndTrim;
    this.#rebase();
    this.#timer = setInterval(() => this.tick(), opts.intervalMs ?? 1000);
    // never what keeps a process alive
    Deno.unrefTimer(this.#timer);
  }

  #rebase(): void {
    const s = this.#sample();
    this.#base = s.heapTotal + s.external;
    this.#lastUsed = s.heapUsed;
  }

  /** One sample (the interval calls it; tests call it directly). */
  tick(): void {
    const s = this.#sample();
    const moved = Math.abs(s.heapUsed - this.#lastUsed);
    this.#lastUsed = s.heapUsed;
    const size = s.heapTotal + s.external;
    // a collection since the last compaction (heap shrank) resets the baseline downwards
    if (size < this.#base) this.#base = size;
    if (moved >= this.#quiet) {
      this.#again = 0;
      return;
    }
    if (this.#again === 0 && size - this.#base < this.#growth) return;
    if (!this.#compact()) return this.close();
    this.runs++;
    const before = size;
    this.#rebase();
    // as V8's reducer: a collection that still freed a lot (the burst was winding down) is followed by another
    // at the next quiet sample, at most three in a row
    this.#again = before - this.#base >= this.#growth && this.#again < 2 ? this.#again + 1 : 0;
  }

  /** Stops sampling. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
