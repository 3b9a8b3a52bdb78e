/**
 * A coarse timer wheel for per-connection and per-request timeouts. Deno 2.9's setTimeout allocates a
 * Node-style Timeout object per call; the wheel needs one interval timer per worker while anything is armed,
 * and arming/disarming is O(1) with no allocation beyond the caller's own TimerEntry and, while the wheel
 * runs, no clock call (deadlines count from the last tick).
 */
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";

/** Something that can time out; `onTimeout` runs once when its deadline passes. */
export interface TimeoutTarget {
  onTimeout(kind: number): void;
}

/** A reusable timer slot owned by the caller (one per connection or stream; re-armed freely). */
export class TimerEntry {
  /** Deadline in monotonic ms; 0 when disarmed. */
  deadline = 0;
  /** Caller-defined code passed to onTimeout (which timeout fired). */
  kind = 0;
  prev: TimerEntry | null = null;
  next: TimerEntry | null = null;
  slot = -1;
  constructor(readonly target: TimeoutTarget) {}
  /** True while armed. */
  get armed(): boolean {
    return this.slot >= 0;
  }
}

const SLOTS = 512;

/** A hashed timer wheel with `resolutionMs` granularity (default 10 ms). */
export class TimerWheel {
  #slots: (TimerEntry | null)[] = new Array(SLOTS).fill(null);
  #count = 0;
  #timer: TimerHandle | undefined;
  #lastTick = 0;
  readonly #resolution: number;
  readonly #clock: Clock;
  readonly #tick = () => this.#advance();

  constructor(clock: Clock = systemClock, resolutionMs = 10) {
    this.#clock = clock;
    this.#resolution = resolutionMs;
  }

  /** Number of armed entries. */
  get size(): number {
    return this.#count;
  }

  /**
   * Monotonic ms for coarse uses (activity stamps, deadlines): while the wheel runs, the time of its last
   * tick (at most about one resolution old, and no clock call); otherwise the clock's.
   */
  now(): number {
    return this.#timer !== undefined ? this.#lastTick : this.#clock.monotonic();
  }

  /**
   * Arms (or re-arms) `e` to fire `ms` from now with `kind`. While the wheel runs the deadline counts from
   * its last tick plus one resolution, so an entry never fires early and arming costs no clock call.
   */
  arm(e: TimerEntry, ms: number, kind = 0): void {
    if (e.slot >= 0) this.#unlink(e);
    const running = this.#timer !== undefined;
    const now = running ? this.#lastTick : this.#clock.monotonic();
    e.deadline = running ? now + ms + this.#resolution : now + ms;
    e.kind = kind;
    const slot = Math.floor(e.deadline / this.#resolution) % SLOTS;
    e.slot = slot;
    e.prev = null;
    e.next = this.#slots[slot];
    if (e.next) e.next.prev = e;
    this.#slots[slot] = e;
    if (this.#count++ === 0) this.#start(now);
  }

  /** Disarms `e` (no-op when not armed); the interval stops with the last armed entry. */
  disarm(e: TimerEntry): void {
    if (e.slot < 0) return;
    this.#unlink(e);
    e.deadline = 0;
    if (--this.#count === 0) this.#stop();
  }

  /** Stops the wheel's interval timer; armed entries never fire afterwards. */
  close(): void {
    this.#stop();
    this.#slots.fill(null);
    this.#count = 0;
  }

  #unlink(e: TimerEntry): void {
    if (e.prev) e.prev.next = e.next;
    else this.#slots[e.slot] = e.next;
    if (e.next) e.next.prev = e.prev;
    e.prev = e.next = null;
    e.slot = -1;
  }

  #start(now: number): void {
    if (this.#timer !== undefined) return; // re-armed from inside a tick: the interval still runs
    this.#lastTick = now;
    this.#timer = setInterval(this.#tick, this.#resolution);
    // Timeouts alone must not keep the process alive.
    try {
      Deno.unrefTimer(this.#timer as number);
    } catch {
      // Not a Deno timer (tests with fake timers)
    }
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer as number);
    this.#timer = undefined;
  }

  #advance(): void {
    const now = this.#clock.monotonic();
    const from = Math.floor(this.#lastTick / this.#resolution);
    const to = Math.floor(now / this.#resolution);
    const steps = Math.min(to - from, SLOTS - 1);
    this.#lastTick = now;
    for (let i = 0; i <= steps; i++) {
      const slot = (to - steps + i) % SLOTS;
      let e = this.#slots[slot];
      while (e) {
        const next = e.next;
        if (e.deadline <= now) {
          this.#unlink(e);
          e.deadline = 0;
          this.#count--;
          try {
            e.target.onTimeout(e.kind);
          } catch (err) {
            console.error("Timeout handler threw", err);
          }
        }
        e = next;
      }
    }
    if (this.#count === 0) this.#stop();
  }
}
