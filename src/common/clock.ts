/** An opaque timer handle (Deno 2.9's setTimeout returns a Node-style Timeout object). */
export type TimerHandle = unknown;

/** Injected time source so timers, buckets and TTLs are testable without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch (wall clock), for access logs and TTLs. */
  now(): number;
  /** Monotonic milliseconds with sub-millisecond precision, for durations. */
  monotonic(): number;
  /** Runs `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer made by `setTimer`. */
  clearTimer(handle: TimerHandle): void;
}

/** The real clock, backed by Date.now, performance.now and setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as number),
};

/** A manual clock for tests: time moves only when `advance` is called. */
export class ManualClock implements Clock {
  #now: number;
  #mono = 0;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  monotonic(): number {
    return this.#mono;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const h = this.#next++;
    this.#timers.set(h, { at: this.#mono + ms, fn });
    return h;
  }
  clearTimer(h: TimerHandle): void {
    this.#timers.delete(h as number);
  }
  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.#mono + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.#now += best[1].at - this.#mono;
      this.#mono = best[1].at;
      best[1].fn();
    }
    this.#now += end - this.#mono;
    this.#mono = end;
  }
}
