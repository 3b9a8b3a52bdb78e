/** Outlier detection end to end: consecutive 5xx ejection, /clusters flags, un-ejection after the base time. */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, startOrigin, staticCluster } from "./helpers.ts";
import { ADMIN, get, healthFlagsOf, startServer, waitFor } from "./health_helpers.ts";

Deno.test("consecutive_5xx ejects a failing host and un-ejects it after base_ejection_time", async () => {
  const bad = { on: true };
  await using a = startOrigin(
    "a",
    () =>
      bad.on
        ? new Response("boom", { status: 500, headers: { "x-origin": "a" } })
        : new Response("fine", { headers: { "x-origin": "a" } }),
  );
  await using b = startOrigin("b");
  await using s = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "svc" } }])] })],
    [staticCluster("svc", [a.port, b.port], {
      outlier_detection: {
        consecutive_5xx: 3,
        interval: "0.1s",
        base_ejection_time: "0.4s",
        max_ejection_percent: 50,
      },
    })],
    { admin: ADMIN },
  ));
  const url = `http://127.0.0.1:${s.port}/`;
  const hostA = `127.0.0.1:${a.port}`;
  let fromA = 0;
  for (let i = 0; i < 6; i++) if ((await get(url)).status === 500) fromA++;
  assert.equal(fromA, 3, "round robin: every other request hits a until it is ejected");
  const clusters = await s.admin("/clusters");
  assert.equal(healthFlagsOf(clusters, "svc", hostA), "/failed_outlier_check");
  for (let i = 0; i < 6; i++) assert.equal((await get(url)).status, 200);
  const stats = await s.admin("/stats");
  assert.match(stats, /cluster\.svc\.outlier_detection\.ejections_active: 1\n/);
  assert.match(stats, /cluster\.svc\.outlier_detection\.ejections_enforced_total: 1\n/);
  assert.match(stats, /cluster\.svc\.outlier_detection\.ejections_enforced_consecutive_5xx: 1\n/);
  assert.match(stats, /cluster\.svc\.membership_healthy: 1\n/);

  bad.on = false;
  await waitFor(
    "a un-ejected",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", hostA) === "healthy",
  );
  const seen = new Set<string | null>();
  for (let i = 0; i < 4; i++) seen.add((await get(url)).origin);
  assert.deepEqual([...seen].sort(), ["a", "b"]);
  assert.match(await s.admin("/stats"), /cluster\.svc\.outlier_detection\.ejections_active: 0\n/);
});
