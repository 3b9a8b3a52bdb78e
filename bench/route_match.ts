/**
 * Route matching benchmark: a 10,000-route table (exact paths, prefixes, regexes, header matchers),
 * requests hitting the first, the middle and the last route and no route; the indexed match() is
 * compared with a linear scan over the same compiled routes.
 *
 *   deno run -A bench/route_match.ts
 */
import { HeaderMap } from "../src/http/headers.ts";
import { routeConfigurationSchema } from "../src/http/routing/config.ts";
import { compileRouteTable } from "../src/http/routing/table.ts";
import type { RouteEntry, RouteRequest } from "../src/http/routing/types.ts";

const N = 10_000;

function buildRoutes(): unknown[] {
  const routes: unknown[] = [];
  for (let i = 0; i < N; i++) {
    const k = i % 10;
    let match: Record<string, unknown>;
    if (i % 500 === 250) match = { safe_regex: { regex: `/re${i}/[0-9]+/items` } };
    else if (k < 5) match = { path: `/svc${i}/resource/item` };
    else if (k < 8) match = { prefix: `/p${i}/` };
    else match = { prefix: `/h${i}/`, headers: [{ name: "x-version", exact_match: "v2" }] };
    routes.push({ name: `r${i}`, match, route: { cluster: `c${i % 50}` } });
  }
  return routes;
}

function request(path: string, headers: [string, string][] = []): RouteRequest {
  return { method: "GET", path, authority: "bench.local", scheme: "http", headers: HeaderMap.from(headers) };
}

const t0 = performance.now();
const config = routeConfigurationSchema.parse({
  name: "bench",
  virtual_hosts: [{ name: "vh", domains: ["*"], routes: buildRoutes() }],
});
const t1 = performance.now();
const table = compileRouteTable(config);
const t2 = performance.now();

const cases: [string, RouteRequest, string | null][] = [
  ["first route", request("/svc0/resource/item?x=1"), "r0"],
  ["middle route (prefix)", request("/p5005/a/b?q=1"), "r5005"],
  ["middle route (regex)", request("/re5250/123/items"), "r5250"],
  ["last route (header)", request("/h9999/x", [["x-version", "v2"], ["accept", "*/*"]]), "r9999"],
  ["no route", request("/nothing/here?x=1", [["x-version", "v2"]]), null],
];

function bench(fn: (r: RouteRequest) => RouteEntry | null, r: RouteRequest, minMs: number): number {
  let iters = 1000;
  for (;;) {
    const s = performance.now();
    for (let i = 0; i < iters; i++) fn(r);
    const el = performance.now() - s;
    if (el >= minMs) return (el * 1e6) / iters;
    iters *= el < minMs / 10 ? 10 : 2;
  }
}

console.log(`routes: ${N}; parse ${(t1 - t0).toFixed(0)} ms, compile ${(t2 - t1).toFixed(0)} ms`);
console.log("case                        indexed ns/match  linear ns/match  speed-up  matches/s (indexed)");
const indexed = (r: RouteRequest) => table.match(r);
const linear = (r: RouteRequest) => table.matchLinear(r);
for (const [label, r, expect] of cases) {
  const got = table.match(r)?.name ?? null;
  const lin = table.matchLinear(r)?.name ?? null;
  if (got !== expect || lin !== expect) throw new Error(`${label}: expected ${expect}, got ${got} / ${lin}`);
  bench(indexed, r, 50); // warm-up
  const a = bench(indexed, r, 300);
  const b = bench(linear, r, 300);
  console.log(
    `${label.padEnd(28)}${a.toFixed(0).padStart(16)}${b.toFixed(0).padStart(17)}${
      (b / a).toFixed(1).padStart(9)
    }x` +
      `${Math.round(1e9 / a).toLocaleString("en-US").padStart(21)}`,
  );
}
