/**
 * A token bucket in shared memory (a SharedArena slot), one bucket for the main thread and every worker.
 * Envoy's local rate limit bucket: starts full with `maxTokens`, gains `tokensPerFill` every `fillIntervalMs`
 * (never above `maxTokens`), and each admitted request or connection takes one token.
 *
 * Slot layout (Int32): [0] tokens, [1] last fill interval index (wall ms / interval, wrapping at 2^32),
 * [2] init state (0 fresh, 1 initializing, 2 ready). Tokens only change by compareExchange, so two threads
 * never hand out more than the bucket holds; only the thread that moves [1] forward adds the refill.
 * Time is the injected Clock's wall time (`now()`), the one time base all threads share.
 */
import type { Clock } from "../../../common/clock.ts";
import type { SharedArena } from "../../../common/shared_arena.ts";

const TOKENS = 0;
const LAST = 1;
const STATE = 2;
const SLOT_INTS = 4;

/** The token_bucket message, resolved (envoy.type.v3.TokenBucket). */
export interface TokenBucketSpec {
  /** Bucket size and initial fill. */
  readonly maxTokens: number;
  /** Tokens added per fill (Envoy's default is 1). */
  readonly tokensPerFill: number;
  /** Fill interval in ms (Envoy requires at least 50 ms). */
  readonly fillIntervalMs: number;
}

/** A cross-thread token bucket; cheap to build at config time, allocation-free per call. */
export class SharedTokenBucket {
  readonly #a: Int32Array;
  readonly #clock: Clock;
  readonly #max: number;
  readonly #perFill: number;
  readonly #interval: number;
  readonly #maxFills: number;
  readonly #arena: SharedArena;
  readonly #key: string;

  /**
   * Finds or creates the bucket slot `key` in `arena` (at config time). The key should name the config that
   * owns the bucket; the spec is appended so a changed bucket config starts a fresh, full bucket.
   */
  constructor(arena: SharedArena, key: string, spec: TokenBucketSpec, clock: Clock) {
    this.#max = spec.maxTokens;
    this.#perFill = spec.tokensPerFill;
    this.#interval = spec.fillIntervalMs;
    this.#maxFills = Math.ceil(spec.maxTokens / spec.tokensPerFill);
    this.#clock = clock;
    this.#arena = arena;
    this.#key = `tb/${key}/${spec.maxTokens}/${spec.tokensPerFill}/${spec.fillIntervalMs}`;
    const a = this.#a = arena.slot(this.#key, SLOT_INTS);
    if (Atomics.compareExchange(a, STATE, 0, 1) === 0) {
      Atomics.store(a, LAST, this.#index());
      Atomics.store(a, TOKENS, spec.maxTokens);
      Atomics.store(a, STATE, 2);
    } else {
      // another thread is initializing: it finishes within a few instructions
      while (Atomics.load(a, STATE) !== 2) { /* spin */ }
    }
  }

  /**
   * Gives the slot back when the config that owns the bucket is retired (LDS/RDS): a newer config with the
   * same bucket holds its own reference, so the bucket's state carries over; the last release frees it.
   */
  release(): void {
    this.#arena.release(this.#key);
  }

  /** Takes one token; true when one was available. */
  consume(): boolean {
    this.#refill();
    const a = this.#a;
    let t = Atomics.load(a, TOKENS);
    for (;;) {
      if (t <= 0) return false;
      const prev = Atomics.compareExchange(a, TOKENS, t, t - 1);
      if (prev === t) return true;
      t = prev;
    }
  }

  /** Tokens left now (after refill). */
  remaining(): number {
    this.#refill();
    return Atomics.load(this.#a, TOKENS);
  }

  /** Bucket size. */
  get maxTokens(): number {
    return this.#max;
  }

  /** Milliseconds until the next fill. */
  msUntilFill(): number {
    const now = this.#clock.now();
    return this.#interval - (now % this.#interval);
  }

  /** The current fill interval index, wrapped to int32 (differences stay right across the wrap). */
  #index(): number {
    return Math.floor(this.#clock.now() / this.#interval) | 0;
  }

  #refill(): void {
    const a = this.#a;
    const cur = this.#index();
    const last = Atomics.load(a, LAST);
    const elapsed = (cur - last) | 0;
    // elapsed <= 0: same interval, or the wall clock went back (wait for it to catch up)
    if (elapsed <= 0) return;
    if (Atomics.compareExchange(a, LAST, last, cur) !== last) return; // another thread refills
    const add = elapsed >= this.#maxFills ? this.#max : elapsed * this.#perFill;
    let t = Atomics.load(a, TOKENS);
    for (;;) {
      const next = t + add > this.#max ? this.#max : t + add;
      if (next <= t) return;
      const prev = Atomics.compareExchange(a, TOKENS, t, next);
      if (prev === t) return;
      t = prev;
    }
  }
}
