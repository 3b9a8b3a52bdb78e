/** The load-balancer interface shared by every LB policy. */
import type { Host, LbContext } from "../types.ts";

/**
 * A load balancer built once over a fixed host list (the cluster rebuilds it when membership or health
 * changes). `choose` runs per request.
 */
export interface LoadBalancer {
  /** Picks a host; `attempt` > 0 asks for another pick after one was rejected (retry/avoid). Null when empty. */
  choose(ctx: LbContext, attempt: number): Host | null;
}

/** A source of uniform numbers in [0, 1) (Math.random by default; seeded in tests). */
export type Random = () => number;

/** A deterministic PRNG (mulberry32) for tests and reproducible picks. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
