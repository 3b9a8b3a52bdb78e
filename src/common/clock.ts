/** An opaque timer handle (Deno 2.9's setTimeout returns a Node-style Timeout object). */
export type TimerHandle = unknown;

/** Injected time source so timers, buckets and TTLs are testable without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch (wall clock), for access logs and TTLs. */
  now(): number;
  /**
   * Monotonic milliseconds with sub-millisecond precision, for durations (the system clock's is read once per
   * event-loop turn: see tickMonotonic).
   */
  monotonic(): number;
  /** Runs `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer made by `setTimer`. */
  clearTimer(handle: TimerHandle): void;
}

/** The reading of this turn (see tickMonotonic); -1 when none was taken yet. */
let tickMono = -1;
const endTick = (): void => {
  tickMono = -1;
};

/**
 * performance.now() read once per turn of the event loop: the first call samples the clock and queues a
 * microtask that forgets the sample, so every callback that runs before that microtask (the streams parsed from
 * one read, the op completions Deno delivers together) shares one reading, as Envoy's dispatcher shares its
 * approximate time within an event loop iteration. `performance.now` is a Deno op: six of them per proxied
 * gRPC request were 6 % of the event loop's busy time. The reading is late by at most the time the turn has run
 * (well under a millisecond but for a loaded proxy's longest turns), which stats in milliseconds and timers
 * with a 10 ms wheel do not see; what needs the exact time reads performance.now itself.
 */
function tickMonotonic(): number {
  if (tickMono < 0) {
    tickMono = performance.now();
    queueMicrotask(endTick);
  }
  return tickMono;
}

/** The real clock, backed by Date.now, performance.now (once per event-loop turn) and setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: tickMonotonic,
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
