/**
 * Fixed-window counter stores behind the service: the in-memory one (embedded default, one process) here,
 * Redis in redis_backend.ts. A key names a descriptor (`domain_key_value_..._`); the window start is
 * appended by the store, so every window counts from zero as in the reference service.
 */
import { type Clock, systemClock } from "../common/clock.ts";

/** One increment batch of a request: parallel arrays, one slot per limited descriptor. */
export interface IncrementBatch {
  /** Descriptor keys without the window (`domain_k1_v1_k2_v2_`). */
  keys: string[];
  /** Hits to add (0 only reads). */
  hits: number[];
  /** Window start in unix seconds. */
  windows: number[];
  /** Window length in seconds (the key's time to live). */
  ttls: number[];
}

/** A counter store; `increment` returns each key's count after adding its hits. */
export interface CounterBackend {
  /** Short name for logs and /rlconfig ("memory", "redis"). */
  readonly kind: string;
  /** Per request: adds the hits and returns the new counts (sync for memory, a promise for Redis). */
  increment(batch: IncrementBatch): number[] | Promise<number[]>;
  /** False while the store cannot answer (Redis down); the healthcheck and failure mode read it. */
  healthy(): boolean;
  /** Releases timers and connections. */
  close(): Promise<void>;
}

interface MemEntry {
  window: number;
  count: number;
  expiresAt: number;
}

/** Options of MemoryBackend. */
export interface MemoryBackendOptions {
  clock?: Clock;
  /** How often expired windows are dropped (default 10 s). */
  sweepIntervalMs?: number;
}

/** In-process counters: one entry per descriptor key holding the current window's count. */
export class MemoryBackend implements CounterBackend {
  readonly kind = "memory";
  readonly #entries = new Map<string, MemEntry>();
  readonly #clock: Clock;
  readonly #timer: ReturnType<typeof setInterval>;

  /** Starts the periodic sweep of expired windows. */
  constructor(opts: MemoryBackendOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#timer = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 10_000);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Number of descriptor keys held (tests, /rlconfig). */
  get size(): number {
    return this.#entries.size;
  }

  increment(batch: IncrementBatch): number[] {
    const n = batch.keys.length;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const key = batch.keys[i];
      const window = batch.windows[i];
      let e = this.#entries.get(key);
      if (e === undefined) {
        e = { window, count: 0, expiresAt: 0 };
        this.#entries.set(key, e);
      } else if (e.window !== window) {
        e.window = window;
        e.count = 0;
      }
      e.count += batch.hits[i];
      e.expiresAt = (window + batch.ttls[i]) * 1000;
      out[i] = e.count;
    }
    return out;
  }

  /** Drops entries whose window has ended (runs on a timer; callable from tests). */
  sweep(): void {
    const now = this.#clock.now();
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
  }

  healthy(): boolean {
    return true;
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#entries.clear();
    return Promise.resolve();
  }
}
