/**
 * MAGLEV (Eisenbud et al., as Envoy): a lookup table of prime size filled by each host's permutation
 * (offset = xxHash64(address, 0) % M, skip = xxHash64(address, 1) % (M - 1) + 1), hosts taking turns in
 * proportion to their weights. A request hash maps to table[hash % M]; no hash gives a random host.
 */
import type { Host, LbContext } from "../types.ts";
import type { LoadBalancer, Random } from "./lb.ts";
import { xxhash64String } from "../../common/xxhash64.ts";

/** Builds a Maglev LB; `tableSize` must be prime (the config schema checks it). */
export class MaglevLb implements LoadBalancer {
  readonly #hosts: readonly Host[];
  readonly #random: Random;
  readonly #table: Int32Array;
  readonly #size: bigint;

  /** Fills the table (runs when membership or health changes; O(tableSize)). */
  constructor(hosts: readonly Host[], random: Random, tableSize = 65537) {
    this.#hosts = hosts;
    this.#random = random;
    this.#size = BigInt(tableSize);
    const m = tableSize;
    const table = new Int32Array(hosts.length === 0 ? 0 : m).fill(-1);
    this.#table = table;
    if (hosts.length === 0) return;
    const bigM = BigInt(m);
    const pos = new Float64Array(hosts.length);
    const skip = new Float64Array(hosts.length);
    const target = new Float64Array(hosts.length);
    let maxW = 0;
    for (let i = 0; i < hosts.length; i++) {
      const key = hosts[i].addressString;
      pos[i] = Number(xxhash64String(key, 0n) % bigM);
      skip[i] = Number(xxhash64String(key, 1n) % (bigM - 1n)) + 1;
      maxW = Math.max(maxW, hosts[i].weight);
    }
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < hosts.length && filled < m; i++) {
        // A host of weight w takes a slot on w of every maxW iterations.
        if (iteration * hosts[i].weight < target[i]) continue;
        target[i] += maxW;
        let c = pos[i];
        while (table[c] !== -1) c = (c + skip[i]) % m;
        table[c] = i;
        pos[i] = (c + skip[i]) % m;
        filled++;
      }
    }
  }

  /** Slots per host (for tests). */
  slotsPerHost(): number[] {
    const out = new Array<number>(this.#hosts.length).fill(0);
    for (const i of this.#table) out[i]++;
    return out;
  }

  /** The host index in each slot (for tests). */
  table(): Int32Array {
    return this.#table;
  }

  choose(ctx: LbContext, attempt: number): Host | null {
    const n = this.#table.length;
    if (n === 0) return null;
    const hash = ctx.hash;
    if (hash === undefined) return this.#hosts[Math.floor(this.#random() * this.#hosts.length)];
    const slot = (Number(BigInt.asUintN(64, hash) % this.#size) + attempt) % n;
    return this.#hosts[this.#table[slot]];
  }
}
