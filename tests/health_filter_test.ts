/** envoy.filters.http.health_check end to end, flipped by admin POST /healthcheck/fail and /healthcheck/ok. */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, startOrigin, staticCluster } from "./helpers.ts";
import { ADMIN, get, startServer } from "./health_helpers.ts";

function hcFilter(passThrough: boolean) {
  return {
    name: "envoy.filters.http.health_check",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
      pass_through_mode: passThrough,
      headers: [{ name: ":path", string_match: { exact: "/healthz" } }],
    },
  };
}

function listener(name: string, passThrough: boolean) {
  const l = httpListener({
    name,
    statPrefix: name,
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "svc" } }])],
  }) as { filter_chains: { filters: { typed_config: { http_filters: unknown[] } }[] }[] };
  const hcm = l.filter_chains[0].filters[0].typed_config;
  hcm.http_filters = [hcFilter(passThrough), ...hcm.http_filters];
  return l;
}

Deno.test("health_check filter answers health checks and fails them after /healthcheck/fail", async () => {
  await using origin = startOrigin("svc");
  await using s = await startServer(bootstrapYaml(
    [listener("local", false), listener("pass", true)],
    [staticCluster("svc", [origin.port])],
    { admin: ADMIN, node: { id: "n1", cluster: "edge" } },
  ));
  const [local, pass] = s.server.listeners().map((l) => l.port);
  const ok = await get(`http://127.0.0.1:${local}/healthz`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("x-envoy-upstream-healthchecked-cluster"), "edge");
  assert.equal(origin.requests.length, 0, "answered by the filter");
  const through = await get(`http://127.0.0.1:${pass}/healthz`);
  assert.equal(through.status, 200);
  assert.equal(through.body, "hello from svc");
  const checks = () => origin.requests.filter((r) => r.path === "/healthz").length;
  assert.equal(checks(), 1, "pass-through reaches the service");
  const normal = await get(`http://127.0.0.1:${local}/other`);
  assert.equal(normal.headers.get("x-envoy-immediate-health-check-fail"), null);

  assert.equal(await s.admin("/healthcheck/fail", "POST"), "OK\n");
  assert.equal((await get(`http://127.0.0.1:${local}/healthz`)).status, 503);
  assert.equal((await get(`http://127.0.0.1:${pass}/healthz`)).status, 503);
  assert.equal(checks(), 1, "a failing pass-through check does not reach the service");
  const other = await get(`http://127.0.0.1:${local}/other`);
  assert.equal(other.status, 200);
  assert.equal(other.headers.get("x-envoy-immediate-health-check-fail"), "true");
  const getFail = await fetch(`http://127.0.0.1:${s.port}/healthz`).then((r) => r.text());
  assert.equal(getFail, "");

  assert.equal(await s.admin("/healthcheck/ok", "POST"), "OK\n");
  assert.equal((await get(`http://127.0.0.1:${local}/healthz`)).status, 200);
  assert.equal(
    (await get(`http://127.0.0.1:${local}/other`)).headers.get("x-envoy-immediate-health-check-fail"),
    null,
  );
  assert.match(await s.admin("/healthcheck/fail"), /requires POST/);
});

Deno.test("another nuncio health checking through the filter drops the draining proxy at once", async () => {
  await using origin = startOrigin("svc");
  await using inner = await startServer(bootstrapYaml(
    [listener("inner", false)],
    [staticCluster("svc", [origin.port])],
    { admin: ADMIN, node: { id: "inner", cluster: "inner" } },
  ));
  await using outer = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "inner" } }])] })],
    [staticCluster("inner", [inner.port], {
      // no panic routing to all hosts when none is healthy
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
      health_checks: [{
        timeout: "0.5s",
        interval: "0.05s",
        no_traffic_interval: "0.05s",
        unhealthy_threshold: 3,
        healthy_threshold: 1,
        http_health_check: { path: "/healthz" },
      }],
    })],
    { admin: ADMIN },
  ));
  const host = `127.0.0.1:${inner.port}`;
  const flags = async () =>
    (await outer.admin("/clusters")).split("\n").find((l) => l.startsWith(`inner::${host}::health_flags::`));
  assert.match((await flags())!, /::healthy$/);
  await inner.admin("/healthcheck/fail", "POST");
  const deadline = Date.now() + 3000;
  while (!/failed_active_hc/.test((await flags()) ?? "") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // The 503 is an active failure: unhealthy on the first one, not after unhealthy_threshold.
  assert.match((await flags())!, /\/failed_active_hc$/);
  assert.equal((await get(`http://127.0.0.1:${outer.port}/`)).status, 503);
});
