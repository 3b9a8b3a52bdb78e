/** The fault filter end to end: config aborts by percentage, header-driven delays and aborts, max_active_faults. */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

const FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};
const PCT100 = { numerator: 100, denominator: "HUNDRED" };

function perRoute(fault: Obj): Obj {
  return { "envoy.filters.http.fault": { "@type": FAULT_TYPE, ...fault } };
}

/** One curl: status, seconds taken, parsed response. */
async function get(
  url: string,
  headers: string[] = [],
): Promise<{ status: number; secs: number; body: string; h: Map<string, string> }> {
  const args = ["-i", "-w", "\n%{time_total}", ...headers.flatMap((h) => ["-H", h]), url];
  const r = await curl(args);
  assert.equal(r.code, 0, r.stderr);
  const cut = r.stdout.lastIndexOf("\n");
  const res = parseResponse(r.stdout.slice(0, cut));
  return { status: res.status, secs: Number(r.stdout.slice(cut + 1)), body: res.body, h: res.headers };
}

Deno.test("http fault filter", async (t) => {
  await using origin = startOrigin("web");
  const route = (prefix: string, extra: Obj = {}) => ({
    match: { prefix },
    route: { cluster: "web" },
    ...extra,
  });
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      statPrefix: "ingress",
      virtualHosts: [anyHost([
        route("/abort100", {
          typed_per_filter_config: perRoute({ abort: { http_status: 503, percentage: PCT100 } }),
        }),
        route("/abortquiet", {
          typed_per_filter_config: perRoute({
            abort: { http_status: 503, percentage: PCT100 },
            disable_downstream_cluster_stats: true,
          }),
        }),
        route("/abort0", {
          typed_per_filter_config: perRoute({ abort: { http_status: 503, percentage: { numerator: 0 } } }),
        }),
        route("/slow", {
          typed_per_filter_config: perRoute({
            delay: { fixed_delay: "0.4s", percentage: PCT100 },
            max_active_faults: 1,
          }),
        }),
        route("/matched", {
          typed_per_filter_config: perRoute({
            abort: { http_status: 429, percentage: PCT100 },
            headers: [{ name: "x-fault", exact_match: "yes" }],
            upstream_cluster: "web",
          }),
        }),
        route("/"),
      ])],
      hcm: {
        // x-envoy-* request headers are honoured from internal callers only (loopback is internal)
        use_remote_address: true,
        http_filters: [{
          name: "envoy.filters.http.fault",
          typed_config: {
            "@type": FAULT_TYPE,
            delay: { header_delay: {}, percentage: PCT100 },
            abort: { header_abort: {}, percentage: PCT100 },
          },
        }, ROUTER],
      },
    })],
    [staticCluster("web", [origin.port])],
  ));

  await t.step("abort percentage 100: every request gets the configured status, flag FI", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(proxy.url("/abort100"));
      assert.equal(r.status, 503);
      assert.equal(r.body, "fault filter abort");
    }
    assert.equal(origin.requests.length, 0);
    assert.equal(proxy.stat("http.ingress.fault.aborts_injected"), 3);
    const log = await proxy.log(3);
    assert.equal(log[0].flags, "FI");
    assert.equal(log[0].details, "fault_filter_abort");
  });

  await t.step("abort percentage 0: nothing is aborted", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(proxy.url("/abort0"))).status, 200);
    assert.equal(origin.requests.length, 3);
    assert.equal(proxy.stat("http.ingress.fault.aborts_injected"), 3);
  });

  await t.step("header-driven delay: x-envoy-fault-delay-request holds the request, flag DI", async () => {
    const fast = await get(proxy.url("/plain"));
    assert.equal(fast.status, 200);
    const slow = await get(proxy.url("/plain"), ["x-envoy-fault-delay-request: 300"]);
    assert.equal(slow.status, 200);
    assert.ok(slow.secs >= 0.28, `delay too short: ${slow.secs}`);
    assert.ok(fast.secs < 0.2, `no-fault request slow: ${fast.secs}`);
    assert.equal(proxy.stat("http.ingress.fault.delays_injected"), 1);
    const log = await proxy.log(8);
    assert.equal(log[7].flags, "DI");
    const capped = await get(proxy.url("/plain"), [
      "x-envoy-fault-delay-request: 300",
      "x-envoy-fault-delay-request-percentage: 0",
    ]);
    assert.ok(capped.secs < 0.2, `0 % header delay still delayed: ${capped.secs}`);
  });

  await t.step("header-driven abort: HTTP status, percentage header, gRPC status", async () => {
    const r = await get(proxy.url("/plain"), ["x-envoy-fault-abort-request: 418"]);
    assert.equal(r.status, 418);
    const none = await get(proxy.url("/plain"), [
      "x-envoy-fault-abort-request: 418",
      "x-envoy-fault-abort-request-percentage: 0",
    ]);
    assert.equal(none.status, 200);
    const bad = await get(proxy.url("/plain"), ["x-envoy-fault-abort-request: 99"]);
    assert.equal(bad.status, 200);
    const grpc = await get(proxy.url("/plain"), ["x-envoy-fault-abort-grpc-request: 14"]);
    assert.equal(grpc.status, 200);
    assert.equal(grpc.h.get("grpc-status"), "14");
    assert.equal(grpc.h.get("content-type"), "application/grpc");
    const both = await get(proxy.url("/plain"), [
      "x-envoy-fault-delay-request: 200",
      "x-envoy-fault-abort-request: 503",
    ]);
    assert.equal(both.status, 503);
    assert.ok(both.secs >= 0.18, `abort came before the delay: ${both.secs}`);
    const log = await proxy.log(14);
    assert.equal(log[13].flags, "DI,FI");
  });

  await t.step("headers and upstream_cluster matchers select the faulted requests", async () => {
    assert.equal((await get(proxy.url("/matched"))).status, 200);
    assert.equal((await get(proxy.url("/matched"), ["x-fault: yes"])).status, 429);
  });

  await t.step(
    "max_active_faults 1: a second concurrent request is not delayed (faults_overflow)",
    async () => {
      const [a, b] = await Promise.all([get(proxy.url("/slow")), get(proxy.url("/slow"))]);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      const secs = [a.secs, b.secs].sort();
      assert.ok(secs[0] < 0.3, `both delayed: ${secs}`);
      assert.ok(secs[1] >= 0.38, `none delayed: ${secs}`);
      assert.equal(proxy.stat("http.ingress.fault.faults_overflow"), 1);
      assert.equal(proxy.stat("http.ingress.fault.active_faults"), 0);
      // once the fault ended, the next one is delayed again
      assert.ok((await get(proxy.url("/slow"))).secs >= 0.38);
    },
  );

  await t.step(
    "x-envoy-downstream-service-cluster: also counted under fault.<cluster>. unless disabled",
    async () => {
      const from = "x-envoy-downstream-service-cluster: frontend";
      assert.equal((await get(proxy.url("/abort100"), [from])).status, 503);
      assert.equal((await get(proxy.url("/slow"), [from])).status, 200);
      assert.equal(proxy.stat("http.ingress.fault.frontend.aborts_injected"), 1);
      assert.equal(proxy.stat("http.ingress.fault.frontend.delays_injected"), 1);
      // disable_downstream_cluster_stats: only the filter's own counters move
      const before = proxy.stat("http.ingress.fault.aborts_injected");
      assert.equal((await get(proxy.url("/abortquiet"), [from])).status, 503);
      assert.equal(proxy.stat("http.ingress.fault.aborts_injected"), before + 1);
      assert.equal(proxy.stat("http.ingress.fault.frontend.aborts_injected"), 1);
    },
  );
});

Deno.test("fault config errors name the field", async () => {
  const yaml = bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{
        match: { prefix: "/" },
        route: { cluster: "web" },
        typed_per_filter_config: perRoute({ abort: { http_status: 700 } }),
      }])],
    })],
    [staticCluster("web", [1])],
  );
  await assert.rejects(
    startProxy(yaml),
    /typed_per_filter_config.*envoy\.filters\.http\.fault.*abort.*http_status/s,
  );
  const unknown = bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{
        match: { prefix: "/" },
        route: { cluster: "web" },
        typed_per_filter_config: { "x": { "@type": "type.googleapis.com/unknown.Thing" } },
      }])],
    })],
    [staticCluster("web", [1])],
  );
  await assert.rejects(startProxy(unknown), /Unknown or unsupported per-route HTTP filter config/);
  const optional = bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{
        match: { prefix: "/" },
        route: { cluster: "web" },
        typed_per_filter_config: {
          "x": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            is_optional: true,
            config: { "@type": "type.googleapis.com/unknown.Thing" },
          },
        },
      }])],
    })],
    [staticCluster("web", [1])],
  );
  const p = await startProxy(optional);
  await p.close();
});
