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

/** The rendezvous score of `node` for `key` (a 64-bit hash; higher ranks first). */
export function rendezvousScore(key: string, node: string): bigint {
  return xxhash64String(`${key}\n${node}`);
}

/**
 * Runs on every assignment: the `min(k, nodes.length)` nodes that check `key`, highest score first. Ties (no
 * two distinct inputs should hash alike) fall back to the node id, so the answer never depends on the order of
 * `nodes`.
 */
export function checkersOf(key: string, nodes: readonly string[], k: number): string[] {
  const want = Math.min(Math.max(0, Math.floor(k)), nodes.length);
  if (want === 0) return [];
  const scored = nodes.map((n) => ({ n, s: rendezvousScore(key, n) }));
  scored.sort((a, b) => (a.s === b.s ? (a.n < b.n ? -1 : a.n > b.n ? 1 : 0) : a.s > b.s ? -1 : 1));
  return scored.slice(0, want).map((x) => x.n);
}

/** Runs on every assignment: the checkers of each key (keys in input order). */
export function assignCheckers(
  keys: readonly string[],
  nodes: readonly string[],
  k: number,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const key of keys) if (!out.has(key)) out.set(key, checkersOf(key, nodes, k));
  return out;
}
