/** Route timeouts end to end: global, per-try (with retries), idle, expected-timeout header, overrides. */
import assert from "node:assert/strict";
import { request, scriptedOrigin } from "./fault_peers.ts";
import { anyHost, bootstrapYaml, httpListener, startProxy, staticCluster } from "./helpers.ts";

type Obj = Record<string, unknown>;

function proxyFor(port: number, route: Obj, router: Obj = {}) {
  return startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web", ...route } }])],
      hcm: {
        http_filters: [{
          name: "envoy.filters.http.router",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            ...router,
          },
        }],
      },
    })],
    [staticCluster("web", [port])],
  ));
}

const fastBackOff = { base_interval: "0.001s", max_interval: "0.002s" };
const internal = { "x-forwarded-for": "10.1.2.3" };

Deno.test("timeouts", async (t) => {
  await t.step("the route timeout answers 504 UT", async () => {
    await using origin = scriptedOrigin([{ stall: true }]);
    await using proxy = await proxyFor(origin.port, { timeout: "0.3s" });
    const start = performance.now();
    const r = await request(proxy.port(), "/");
    const took = performance.now() - start;
    assert.equal(r.status, 504);
    assert.equal(r.body, "upstream request timeout");
    assert.ok(took >= 280 && took < 2000, `took ${took}ms`);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "UT");
    assert.equal(log.details, "upstream_response_timeout");
    assert.equal(proxy.stat("cluster.web.upstream_rq_timeout"), 1);
    assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], "300");
  });

  await t.step(
    "per_try_timeout: a stalled try is retried, x-envoy-expected-rq-timeout-ms is the per-try value",
    async () => {
      await using origin = scriptedOrigin([{ stall: true }, { status: 200, body: "second" }]);
      await using proxy = await proxyFor(origin.port, {
        timeout: "5s",
        retry_policy: { retry_on: "5xx", per_try_timeout: "0.2s", retry_back_off: fastBackOff },
      });
      const r = await request(proxy.port(), "/");
      assert.equal(r.status, 200);
      assert.equal(r.body, "second");
      assert.equal(origin.requests.length, 2);
      assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], "200");
      assert.equal(proxy.stat("cluster.web.upstream_rq_per_try_timeout"), 1);
      assert.equal(proxy.stat("cluster.web.upstream_rq_retry"), 1);
    },
  );

  await t.step("per-try timeouts until the limit: 504 UT,URX", async () => {
    await using origin = scriptedOrigin([{ stall: true }]);
    await using proxy = await proxyFor(origin.port, {
      timeout: "5s",
      retry_policy: {
        retry_on: "gateway-error",
        num_retries: 1,
        per_try_timeout: "0.1s",
        retry_back_off: fastBackOff,
      },
    });
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 504);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "UT,URX");
    assert.equal(origin.requests.length, 2);
    assert.equal(proxy.stat("cluster.web.upstream_rq_per_try_timeout"), 2);
  });

  await t.step("the global timeout covers retries", async () => {
    await using origin = scriptedOrigin([{ status: 503, delayMs: 150 }]);
    await using proxy = await proxyFor(origin.port, {
      timeout: "0.4s",
      retry_policy: { retry_on: "5xx", num_retries: 10, retry_back_off: fastBackOff },
    });
    const start = performance.now();
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 504);
    assert.ok(performance.now() - start < 1500);
    assert.ok(origin.requests.length >= 2 && origin.requests.length <= 4, `${origin.requests.length} tries`);
  });

  await t.step("suppress_envoy_headers drops x-envoy-expected-rq-timeout-ms", async () => {
    await using origin = scriptedOrigin([{ status: 200 }]);
    await using proxy = await proxyFor(origin.port, {}, { suppress_envoy_headers: true });
    assert.equal((await request(proxy.port(), "/")).status, 200);
    assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], undefined);
  });

  await t.step("route idle_timeout: 408 SI when nothing moves", async () => {
    await using origin = scriptedOrigin([{ stall: true }]);
    await using proxy = await proxyFor(origin.port, { timeout: "5s", idle_timeout: "0.2s" });
    const r = await request(proxy.port(), "/");
    assert.equal(r.status, 408);
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "SI");
  });

  await t.step("x-envoy-upstream-rq-timeout-ms from an internal caller", async () => {
    await using origin = scriptedOrigin([{ status: 200, delayMs: 400 }]);
    await using proxy = await proxyFor(origin.port, { timeout: "5s" });
    const r = await request(proxy.port(), "/", {
      headers: { ...internal, "x-envoy-upstream-rq-timeout-ms": "150" },
    });
    assert.equal(r.status, 504);
    assert.equal(origin.requests[0].headers["x-envoy-upstream-rq-timeout-ms"], undefined);
    assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], "150");
  });

  await t.step("x-envoy-upstream-rq-per-try-timeout-ms from an internal caller", async () => {
    await using origin = scriptedOrigin([{ status: 200, delayMs: 400 }]);
    await using proxy = await proxyFor(origin.port, { timeout: "5s" });
    const r = await request(proxy.port(), "/", {
      headers: { ...internal, "x-envoy-upstream-rq-per-try-timeout-ms": "100" },
    });
    assert.equal(r.status, 504);
    assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], "100");
  });

  await t.step("the same header from an external client is ignored", async () => {
    await using origin = scriptedOrigin([{ status: 200, delayMs: 300 }]);
    await using proxy = await proxyFor(origin.port, { timeout: "5s" });
    const r = await request(proxy.port(), "/", { headers: { "x-envoy-upstream-rq-timeout-ms": "100" } });
    assert.equal(r.status, 200);
    assert.equal(origin.requests[0].headers["x-envoy-expected-rq-timeout-ms"], "5000");
  });

  await t.step("respect_expected_rq_timeout uses the caller's expected timeout", async () => {
    await using origin = scriptedOrigin([{ status: 200, delayMs: 400 }]);
    await using proxy = await proxyFor(origin.port, { timeout: "5s" }, { respect_expected_rq_timeout: true });
    const r = await request(proxy.port(), "/", {
      headers: { ...internal, "x-envoy-expected-rq-timeout-ms": "120" },
    });
    assert.equal(r.status, 504);
  });
});
