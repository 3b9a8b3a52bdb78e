/**
 * RING_HASH (ketama-style consistent hashing, as Envoy): each host gets ring entries in proportion to its
 * weight, entry i of a host hashing xxHash64("<address:port>_<i>"); a request hash maps to the first
 * entry at or after it (wrapping). Requests without a hash get a random host.
 */
import type { Host, LbContext } from "../types.ts";
import type { LoadBalancer, Random } from "./lb.ts";
import { xxhash64Parts, xxhashResult } from "../../common/xxhash64.ts";

/** Ring size bounds (ring_hash_lb_config). */
export interface RingHashOptions {
  /** Default 1024. */
  minimumRingSize?: number;
  /** Default 8M. */
  maximumRingSize?: number;
}

const encoder = new TextEncoder();

/** A built ring: parallel arrays sorted by (hi, lo) hash. */
export class RingHashLb implements LoadBalancer {
  readonly #hosts: readonly Host[];
  readonly #random: Random;
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  readonly #idx: Uint32Array;

  /** Builds the ring (runs when membership or health changes; cost grows with the ring size). */
  constructor(hosts: readonly Host[], random: Random, opts: RingHashOptions = {}) {
    this.#hosts = hosts;
    this.#random = random;
    const minSize = opts.minimumRingSize ?? 1024;
    const maxSize = opts.maximumRingSize ?? 8_388_608;
    let total = 0;
    for (const h of hosts) total += h.weight;
    let minNorm = 1;
    for (const h of hosts) minNorm = Math.min(minNorm, h.weight / total);
    // Scale so the lightest host gets at least one entry and the ring reaches minSize, capped at maxSize.
    const scale = hosts.length === 0 ? 0 : Math.min(Math.ceil(minNorm * minSize) / minNorm, maxSize);
    const size = hosts.length === 0 ? 0 : Math.ceil(scale - 1e-9);
    const hi = new Uint32Array(size);
    const lo = new Uint32Array(size);
    const idx = new Uint32Array(size);
    let target = 0;
    let n = 0;
    for (let h = 0; h < hosts.length; h++) {
      target += scale * (hosts[h].weight / total);
      const prefix = hosts[h].addressString + "_";
      for (let i = 0; n < target - 1e-9 && n < size; i++, n++) {
        xxhash64Parts(encoder.encode(prefix + i));
        hi[n] = xxhashResult.hi;
        lo[n] = xxhashResult.lo;
        idx[n] = h;
      }
    }
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || idx[a] - idx[b]);
    this.#hi = new Uint32Array(n);
    this.#lo = new Uint32Array(n);
    this.#idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const o = order[i];
      this.#hi[i] = hi[o];
      this.#lo[i] = lo[o];
      this.#idx[i] = idx[o];
    }
  }

  /** Number of ring entries. */
  get size(): number {
    return this.#hi.length;
  }

  /** Entries per host (for tests and /clusters). */
  entriesPerHost(): number[] {
    const out = new Array<number>(this.#hosts.length).fill(0);
    for (const i of this.#idx) out[i]++;
    return out;
  }

  choose(ctx: LbContext, attempt: number): Host | null {
    const n = this.#hi.length;
    if (n === 0) return null;
    const hash = ctx.hash;
    if (hash === undefined) return this.#hosts[Math.floor(this.#random() * this.#hosts.length)];
    const qh = Number(BigInt.asUintN(64, hash) >> 32n);
    const ql = Number(BigInt.asUintN(32, hash));
    // Lower bound: first entry with (hi, lo) >= (qh, ql).
    let a = 0;
    let b = n;
    const his = this.#hi;
    const los = this.#lo;
    while (a < b) {
      const m = (a + b) >>> 1;
      const h = his[m];
      if (h < qh || (h === qh && los[m] < ql)) a = m + 1;
      else b = m;
    }
    return this.#hosts[this.#idx[(a + attempt) % n]];
  }
}
