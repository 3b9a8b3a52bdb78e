/** Jittered exponential back-off for reconnecting to a management server (Envoy's JitteredExponentialBackOff). */
import type { RandomSource } from "./types.ts";

/** Envoy's xDS retry defaults: 500 ms base, 30 s cap. */
export const XDS_BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

/** Full-jitter exponential back-off: the n-th delay is uniform in [0, min(base * 2^n, max)). */
export class JitteredBackoff {
  #attempt = 0;
  constructor(
    readonly baseMs: number = XDS_BACKOFF.baseMs,
    readonly maxMs: number = XDS_BACKOFF.maxMs,
    readonly random: RandomSource = Math.random,
  ) {}

  /** The delay before the next retry (ms), growing with each call until `reset`. */
  next(): number {
    const ceiling = Math.min(this.baseMs * 2 ** Math.min(this.#attempt, 30), this.maxMs);
    this.#attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** Called after a success: the next failure starts again from `baseMs`. */
  reset(): void {
    this.#attempt = 0;
  }
}
