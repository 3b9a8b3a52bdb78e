/** With --concurrency 2 the main thread decides health once and both workers follow it. */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, startOrigin, staticCluster } from "./helpers.ts";
import { ADMIN, freePort, get, healthFlagsOf, startServer, waitFor } from "./health_helpers.ts";

Deno.test("concurrency 2: one health decision seen by every worker; membership gauges not summed", async () => {
  const failing = { on: false };
  await using a = startOrigin(
    "a",
    (_req, seen) =>
      seen.path === "/healthz"
        ? new Response("", { status: failing.on ? 503 : 200 })
        : new Response("a", { headers: { "x-origin": "a" } }),
  );
  await using b = startOrigin("b");
  await using c = startOrigin("c", () => new Response("boom", { status: 500, headers: { "x-origin": "c" } }));
  await using d = startOrigin("d");
  const port = freePort();
  const l = httpListener({
    virtualHosts: [anyHost([
      { match: { prefix: "/od" }, route: { cluster: "od" } },
      { match: { prefix: "/" }, route: { cluster: "svc" } },
    ])],
  }) as { address: { socket_address: { port_value: number } } };
  l.address.socket_address.port_value = port;
  await using s = await startServer(
    bootstrapYaml([l], [
      staticCluster("svc", [a.port, b.port], {
        health_checks: [{
          timeout: "0.5s",
          interval: "0.05s",
          no_traffic_interval: "0.05s",
          unhealthy_threshold: 1,
          healthy_threshold: 1,
          http_health_check: { path: "/healthz" },
        }],
      }),
      staticCluster("od", [c.port, d.port], {
        outlier_detection: { consecutive_5xx: 4, interval: "10s", max_ejection_percent: 50 },
      }),
    ], { admin: ADMIN }),
    2,
  );
  const stats0 = await s.admin("/stats");
  assert.match(stats0, /cluster\.svc\.membership_total: 2\n/);
  assert.match(stats0, /cluster\.svc\.membership_healthy: 2\n/);
  assert.match(stats0, /cluster\.od\.membership_total: 2\n/);

  failing.on = true;
  await waitFor(
    "a failing",
    async () =>
      healthFlagsOf(await s.admin("/clusters"), "svc", `127.0.0.1:${a.port}`) === "/failed_active_hc",
  );
  for (let i = 0; i < 10; i++) assert.equal((await get(`http://127.0.0.1:${port}/x`)).origin, "b");
  assert.match(await s.admin("/stats"), /cluster\.svc\.membership_healthy: 1\n/);

  // Outlier detection: failures counted across workers into one ejection.
  let errors = 0;
  for (let i = 0; i < 12; i++) if ((await get(`http://127.0.0.1:${port}/od`)).status === 500) errors++;
  assert.equal(errors, 4, "the fourth consecutive 5xx, from whichever worker, ejects c");
  assert.equal(
    healthFlagsOf(await s.admin("/clusters"), "od", `127.0.0.1:${c.port}`),
    "/failed_outlier_check",
  );
  const stats = await s.admin("/stats");
  assert.match(stats, /cluster\.od\.outlier_detection\.ejections_enforced_total: 1\n/);
  assert.match(stats, /cluster\.od\.outlier_detection\.ejections_active: 1\n/);
  assert.match(stats, /cluster\.od\.membership_healthy: 1\n/);
  assert.match(stats, /cluster\.od\.upstream_rq_500: 4\n/);
  assert.match(stats, /server\.concurrency: 2\n/);

  failing.on = false;
  await waitFor(
    "a back",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", `127.0.0.1:${a.port}`) === "healthy",
  );
  const seen = new Set<string | null>();
  for (let i = 0; i < 10; i++) seen.add((await get(`http://127.0.0.1:${port}/x`)).origin);
  assert.deepEqual([...seen].sort(), ["a", "b"]);
});
