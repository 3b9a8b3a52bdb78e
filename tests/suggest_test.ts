/**
 * Admin /debug/suggest on a server with two workers: honest about too few samples before traffic, then
 * timeouts, retry budgets and circuit breakers from the merged latency, error and concurrency stats, with the
 * evidence, per cluster and per route.
 */
import assert from "node:assert/strict";
import { ADMIN, freePort, startServer } from "./health_helpers.ts";
import { anyHost, bootstrapYaml, httpListener, startOrigin, staticCluster } from "./helpers.ts";

type Obj = Record<string, unknown>;

Deno.test("/debug/suggest proposes settings from observed traffic, per cluster and route", async () => {
  let n = 0;
  await using origin = startOrigin("slowish", async () => {
    const i = ++n;
    await new Promise((r) => setTimeout(r, 5));
    return new Response("ok", { status: i % 20 === 0 ? 503 : 200 });
  });
  const port = freePort();
  const l = httpListener({
    name: "edge",
    virtualHosts: [anyHost([
      { name: "api", match: { prefix: "/api" }, route: { cluster: "api", timeout: "3s" } },
      { name: "idle", match: { prefix: "/" }, route: { cluster: "idle" } },
    ])],
  });
  (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  const yaml = bootstrapYaml(
    [l],
    [staticCluster("api", [origin.port]), staticCluster("idle", [origin.port])],
    {
      admin: ADMIN,
    },
  );
  await using s = await startServer(yaml, 2);
  const ask = async () => JSON.parse(await s.admin("/debug/suggest"));

  const before = await ask();
  const api0 = before.clusters.find((c: Obj) => c.name === "api");
  assert.equal(api0.suggestions.timeout.value_ms, null);
  assert.equal(api0.suggestions.timeout.confidence, "none");
  assert.match(api0.suggestions.timeout.basis, /too few samples: 0 upstream requests timed \(need 100\)/);
  assert.equal(api0.suggestions.circuit_breakers.max_requests, null);

  // 300 requests, 10 at a time
  const codes = new Map<number, number>();
  for (let i = 0; i < 30; i++) {
    await Promise.all(Array.from({ length: 10 }, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/api/x`);
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
      await r.arrayBuffer();
    }));
  }
  const after = await ask();
  const api = after.clusters.find((c: Obj) => c.name === "api");
  assert.deepEqual([...codes].sort(), [[200, 285], [503, 15]]);
  assert.equal(api.evidence.requests, 300);
  assert.equal(api.evidence.latency.count, 300);
  assert.ok(api.evidence.latency.p99_ms >= 5, JSON.stringify(api.evidence.latency));
  assert.equal(api.evidence.errors["5xx"], 15);
  assert.equal(api.evidence.errors.retryable_percent, 5);
  const t = api.suggestions.timeout;
  assert.equal(t.confidence, "low"); // p99.9 needs 1000 samples
  assert.ok(t.value_ms >= 10 && t.value_ms < 3000, JSON.stringify(t));
  assert.equal(api.suggestions.retry_budget.budget_percent, 10);
  assert.ok(api.suggestions.circuit_breakers.max_requests >= 16);
  assert.equal(api.suggestions.circuit_breakers.current.maxRequests, 1024);
  // the idle cluster is still honest about its samples
  const idle = after.clusters.find((c: Obj) => c.name === "idle");
  assert.equal(idle.suggestions.timeout.value_ms, null);
  // routes: the api route gets its cluster's proposal next to its configured timeout
  const route = after.routes.find((r: Obj) => r.route === "api");
  assert.deepEqual(route.clusters, ["api"]);
  assert.equal(route.current_timeout_ms, 3000);
  assert.equal(route.suggested_timeout_ms, t.value_ms);
  assert.equal(after.routes.find((r: Obj) => r.route === "idle").suggested_timeout_ms, null);
});
