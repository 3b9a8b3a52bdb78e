/** RANDOM: a uniformly random host (Envoy's random LB ignores weights). */
import type { Host, LbContext } from "../types.ts";
import type { LoadBalancer, Random } from "./lb.ts";

/** Builds a random LB over `hosts` (runs when membership or health changes). */
export function createRandomLb(hosts: readonly Host[], random: Random): LoadBalancer {
  return new RandomLb(hosts, random);
}

class RandomLb implements LoadBalancer {
  #hosts: readonly Host[];
  #random: Random;
  constructor(hosts: readonly Host[], random: Random) {
    this.#hosts = hosts;
    this.#random = random;
  }
  choose(_ctx: LbContext, _attempt: number): Host | null {
    const n = this.#hosts.length;
    return n === 0 ? null : this.#hosts[Math.floor(this.#random() * n)];
  }
}
