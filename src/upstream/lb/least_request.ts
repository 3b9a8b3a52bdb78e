/**
 * LEAST_REQUEST as in Envoy: with equal weights, pick `choiceCount` random hosts and take the one with
 * the fewest active requests (P2C); with unequal weights, an earliest-deadline-first schedule where a
 * host's weight is `weight / (activeRequests + 1) ^ activeRequestBias`, computed each time it is
 * rescheduled.
 */
import type { Host, LbContext } from "../types.ts";
import { IndexHeap } from "./index_heap.ts";
import type { LoadBalancer, Random } from "./lb.ts";

/** Options of the least-request LB (least_request_lb_config). */
export interface LeastRequestOptions {
  /** Hosts sampled per pick when weights are equal (default 2). */
  choiceCount?: number;
  /** Exponent applied to active requests when weights differ (default 1). */
  activeRequestBias?: number;
}

/** Builds a least-request LB over `hosts` (runs when membership or health changes). */
export function createLeastRequestLb(
  hosts: readonly Host[],
  random: Random,
  opts: LeastRequestOptions = {},
): LoadBalancer {
  if (hosts.length === 0) return { choose: () => null };
  const w0 = hosts[0].weight;
  if (hosts.every((h) => h.weight === w0)) return new P2cLb(hosts, random, opts.choiceCount ?? 2);
  return new WeightedLeastRequestLb(hosts, opts.activeRequestBias ?? 1);
}

class P2cLb implements LoadBalancer {
  #hosts: readonly Host[];
  #random: Random;
  #choices: number;
  constructor(hosts: readonly Host[], random: Random, choices: number) {
    this.#hosts = hosts;
    this.#random = random;
    this.#choices = choices;
  }
  choose(_ctx: LbContext, _attempt: number): Host {
    const hosts = this.#hosts;
    const n = hosts.length;
    let best = hosts[Math.floor(this.#random() * n)];
    if (n === 1) return best;
    for (let c = 1; c < this.#choices; c++) {
      const h = hosts[Math.floor(this.#random() * n)];
      if (h.activeRequests < best.activeRequests) best = h;
    }
    return best;
  }
}

class WeightedLeastRequestLb extends IndexHeap implements LoadBalancer {
  #hosts: readonly Host[];
  #bias: number;
  #deadline: Float64Array;

  constructor(hosts: readonly Host[], bias: number) {
    super(hosts.length);
    this.#hosts = hosts;
    this.#bias = bias;
    const n = hosts.length;
    this.#deadline = new Float64Array(n);
    for (let i = 0; i < n; i++) this.#deadline[i] = 1 / this.#effectiveWeight(hosts[i]);
    this.heapify();
  }

  #effectiveWeight(h: Host): number {
    const a = h.activeRequests + 1;
    return h.weight / (this.#bias === 1 ? a : this.#bias === 0 ? 1 : Math.pow(a, this.#bias));
  }

  protected before(a: number, b: number): boolean {
    const da = this.#deadline[a];
    const db = this.#deadline[b];
    return da < db || (da === db && a < b);
  }

  choose(_ctx: LbContext, _attempt: number): Host {
    const i = this.heap[0];
    const h = this.#hosts[i];
    // The request about to start counts: reschedule with the load it will add.
    this.#deadline[i] += (h.activeRequests + 2) ** this.#bias / h.weight;
    this.siftDown(0);
    return h;
  }
}
