/**
 * Which proxies health check which endpoint (HDS): rendezvous (highest random weight) hashing of the endpoint's
 * key with each connected proxy's node id. Every endpoint gets the `k` proxies with the highest scores, so the
 * work spreads evenly (each proxy is equally likely to rank high for any endpoint) and moves little when
 * proxies come and go: a proxy leaving hands each of its endpoints to the next proxy in that endpoint's
 * ranking, and a proxy joining takes only the endpoints it now ranks in the top `k` for.
 */
import { xxhash64String } from "../common/xxhash64.ts";

/** The key an endpoint of a service is assigned and reported by: "service|address:port". */
export function endpointKey(service: string, address: string, port: number): string {
  return `${service}|${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** Two 32-bit seeds of a string (its xxhash64), computed once per endpoint and once per proxy. */
function seeds(s: string): [number, number] {
  const h = xxhash64String(s);
  return [Number(h >> 32n) | 0, Number(h & 0xffffffffn) | 0];
}

/** murmur3's 32-bit finalizer: every input bit flips each output bit with probability ~1/2. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 53-bit rendezvous score of a proxy (seeds `n`) for an endpoint (seeds `k`); higher ranks first. */
function score(k: [number, number], n: [number, number]): number {
  const hi = fmix32(k[0] ^ fmix32((n[0] + k[1]) | 0));
  const lo = fmix32(k[1] ^ fmix32((n[1] + k[0]) | 0));
  return hi * 2 ** 21 + (lo >>> 11);
}

/** The rendezvous score of `node` for `key` (higher ranks first). */
export function rendezvousScore(key: string, node: string): number {
  return score(seeds(key), seeds(node));
}

/** The `want` best of `nodes` for key seeds `k`, best first (ties: the smaller node id). */
function best(
  k: [number, number],
  nodes: readonly { id: string; seeds: [number, number] }[],
  want: number,
): string[] {
  const top: { id: string; s: number }[] = [];
  for (const n of nodes) {
    const s = score(k, n.seeds);
    if (top.length === want) {
      const last = top[want - 1];
      if (s < last.s || (s === last.s && n.id > last.id)) continue;
      top.pop();
    }
    let i = top.length;
    while (i > 0 && (top[i - 1].s < s || (top[i - 1].s === s && top[i - 1].id > n.id))) i--;
    top.splice(i, 0, { id: n.id, s });
  }
  return top.map((x) => x.id);
}

/**
 * Runs on every assignment: the `min(k, nodes.length)` nodes that check `key`, highest score first. Ties (no
 * two distinct inputs should score alike) fall back to the node id, so the answer never depends on the order of
 * `nodes`.
 */
export function checkersOf(key: string, nodes: readonly string[], k: number): string[] {
  return assignCheckers([key], nodes, k).get(key)!;
}

/** Runs on every assignment: the checkers of each key (keys in input order). */
export function assignCheckers(
  keys: readonly string[],
  nodes: readonly string[],
  k: number,
): Map<string, string[]> {
  const want = Math.min(Math.max(0, Math.floor(k)), nodes.length);
  const seeded = nodes.map((id) => ({ id, seeds: seeds(id) }));
  const out = new Map<string, string[]>();
  for (const key of keys) {
    if (!out.has(key)) out.set(key, want === 0 ? [] : best(seeds(key), seeded, want));
  }
  return out;
}
