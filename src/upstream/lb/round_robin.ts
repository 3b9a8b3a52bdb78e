/**
 * ROUND_ROBIN: plain rotation when all weights are equal, otherwise an earliest-deadline-first schedule
 * (as Envoy) with exact rational deadlines, so over every cycle of sum(weights) picks each host is chosen
 * exactly `weight` times, smoothly interleaved.
 */
import type { Host, LbContext } from "../types.ts";
import { IndexHeap } from "./index_heap.ts";
import type { LoadBalancer } from "./lb.ts";

const MAX_WEIGHT = 1 << 26; // keeps k * w products exact in doubles

/** Builds a round-robin LB over `hosts` (runs when membership or health changes). */
export function createRoundRobinLb(hosts: readonly Host[]): LoadBalancer {
  const n = hosts.length;
  if (n === 0) return { choose: () => null };
  const w0 = hosts[0].weight;
  if (hosts.every((h) => h.weight === w0)) return new RotationLb(hosts);
  return new EdfRoundRobinLb(hosts);
}

class RotationLb implements LoadBalancer {
  #hosts: readonly Host[];
  #next = 0;
  constructor(hosts: readonly Host[]) {
    this.#hosts = hosts;
  }
  choose(_ctx: LbContext, _attempt: number): Host {
    const h = this.#hosts[this.#next];
    if (++this.#next === this.#hosts.length) this.#next = 0;
    return h;
  }
}

class EdfRoundRobinLb extends IndexHeap implements LoadBalancer {
  #hosts: readonly Host[];
  #w: Float64Array;
  /** Next pick number per host: host i's next deadline is k[i] / w[i]. */
  #k: Float64Array;
  #cycle: number;
  #picks = 0;

  constructor(hosts: readonly Host[]) {
    super(hosts.length);
    this.#hosts = hosts;
    const n = hosts.length;
    let max = 0;
    for (const h of hosts) max = Math.max(max, h.weight);
    const scale = max > MAX_WEIGHT ? MAX_WEIGHT / max : 1;
    const w = hosts.map((h) => Math.max(1, Math.round(h.weight * scale)));
    const g = w.reduce(gcd);
    this.#w = new Float64Array(w.map((x) => x / g));
    this.#cycle = this.#w.reduce((a, b) => a + b, 0);
    this.#k = new Float64Array(n);
    this.#reset();
  }

  #reset(): void {
    this.#k.fill(1);
    this.heapify();
    this.#picks = 0;
  }

  /** True when host a's deadline comes before host b's. */
  protected before(a: number, b: number): boolean {
    const l = this.#k[a] * this.#w[b];
    const r = this.#k[b] * this.#w[a];
    return l < r || (l === r && a < b);
  }

  choose(_ctx: LbContext, _attempt: number): Host {
    const i = this.heap[0];
    this.#k[i]++;
    this.siftDown(0);
    if (++this.#picks === this.#cycle) this.#reset();
    return this.#hosts[i];
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
