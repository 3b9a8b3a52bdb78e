import assert from "node:assert/strict";
import { createAdminApp } from "./app.ts";
import { startAdminServer } from "./server.ts";
import { fakeDeps } from "./test_deps.ts";
import type { AdminEndpoint } from "./types.ts";
import { RuntimeLoader } from "../runtime/loader.ts";
import { runtimeView } from "../runtime/admin.ts";
import { StatsStore } from "../stats/store.ts";

const post = { method: "POST" };

Deno.test("admin endpoints (in-process)", async (t) => {
  const extra: AdminEndpoint = {
    path: "/healthcheck/fail",
    method: "POST",
    help: "cause the server to fail health checks",
    handler: (c) => c.text("OK\n"),
  };
  const deps = fakeDeps([extra]);
  const app = createAdminApp(deps);

  await t.step("/help lists every endpoint, / too", async () => {
    const r = await app.request("/help");
    assert.equal(r.status, 200);
    const body = await r.text();
    assert.ok(body.startsWith("admin commands are:\n"));
    assert.ok(body.includes("  /stats: print server stats"));
    assert.ok(body.includes("  /quitquitquit (POST): exit the server\n"));
    assert.ok(body.includes("  /healthcheck/fail (POST): cause the server to fail health checks\n"));
    assert.equal(await (await app.request("/")).text(), body);
  });
  await t.step("/stats text, json, prometheus, filter, bad regex", async () => {
    const r = await app.request("/stats");
    assert.equal(r.headers.get("content-type"), "text/plain; charset=UTF-8");
    const body = await r.text();
    assert.ok(body.includes("cluster.backend.upstream_rq_total: 5\n"));
    assert.ok(body.includes("server.live: 1\n"));
    assert.match(body, /cluster\.backend\.upstream_rq_time: P0\(/);
    const j = await (await app.request("/stats?format=json&filter=server")).json();
    assert.deepEqual(j, { stats: [{ name: "server.live", value: 1 }] });
    const p = await app.request("/stats?format=prometheus");
    assert.ok((await p.text()).includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 5\n'));
    const bad = await app.request("/stats?filter=(");
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Invalid regex/);
    assert.equal((await app.request("/stats?format=xml")).status, 400);
  });
  await t.step("/stats/prometheus", async () => {
    const r = await app.request("/stats/prometheus?usedonly");
    assert.equal(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=UTF-8");
    const body = await r.text();
    assert.ok(body.includes("# TYPE envoy_cluster_upstream_rq_time histogram\n"));
    assert.ok(body.includes('envoy_cluster_upstream_rq_time_count{envoy_cluster_name="backend"} 1\n'));
    assert.equal((await app.request("/stats/prometheus?filter=[")).status, 400);
  });
  await t.step("/clusters text and json", async () => {
    const body = await (await app.request("/clusters")).text();
    const lines = body.split("\n");
    assert.equal(lines[0], "backend::default_priority::max_connections::1024");
    assert.ok(lines.includes("backend::default_priority::max_retries::3"));
    assert.ok(lines.includes("backend::added_via_api::false"));
    assert.ok(lines.includes("backend::127.0.0.1:8080::cx_total::3"));
    assert.ok(lines.includes("backend::127.0.0.1:8080::cx_active::1"));
    assert.ok(lines.includes("backend::127.0.0.1:8080::rq_success::4"));
    assert.ok(lines.includes("backend::127.0.0.1:8080::health_flags::healthy"));
    assert.ok(lines.includes("backend::127.0.0.1:8080::weight::1"));
    assert.ok(lines.includes("backend::[::1]:8081::health_flags::/failed_active_hc/failed_outlier_check"));
    assert.ok(lines.includes("backend::[::1]:8081::hostname::localhost"));
    assert.ok(lines.includes("backend::[::1]:8081::success_rate::-1"));
    const j = await (await app.request("/clusters?format=json")).json();
    const c = j.cluster_statuses[0];
    assert.equal(c.name, "backend");
    assert.equal(c.added_via_api, undefined);
    assert.deepEqual(c.circuit_breakers.thresholds[1].priority, "HIGH");
    const h0 = c.host_statuses[0];
    assert.deepEqual(h0.address, { socket_address: { address: "127.0.0.1", port_value: 8080 } });
    assert.deepEqual(h0.stats.find((s: { name: string }) => s.name === "cx_total"), {
      name: "cx_total",
      value: "3",
    });
    assert.deepEqual(h0.stats.find((s: { name: string }) => s.name === "cx_active"), {
      name: "cx_active",
      value: "1",
      type: "GAUGE",
    });
    assert.deepEqual(h0.health_status, { eds_health_status: "HEALTHY" });
    assert.deepEqual(c.host_statuses[1].health_status, {
      failed_active_health_check: true,
      failed_outlier_check: true,
      eds_health_status: "HEALTHY",
    });
  });
  await t.step("/config_dump", async () => {
    const r = await app.request("/config_dump");
    assert.equal(r.headers.get("content-type"), "application/json");
    const j = await r.json();
    const types = j.configs.map((c: Record<string, unknown>) => c["@type"]);
    assert.deepEqual(types, [
      "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
      "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
      "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
      "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
    ]);
    assert.equal(j.configs[0].last_updated, "2024-01-01T00:00:00.000Z");
    assert.equal(
      j.configs[1].static_clusters[0].cluster["@type"],
      "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    );
    assert.equal(j.configs[1].static_clusters[0].cluster.name, "backend");
    assert.equal(j.configs[2].static_listeners[0].listener.name, "l1");
    assert.equal(j.configs[3].static_route_configs[0].route_config.name, "local_route");
    const text = JSON.stringify(j);
    assert.ok(!text.includes("SECRET"));
    assert.ok(text.includes('"private_key":{"inline_string":"[redacted]"}'));
    // ?resource= lists that field's elements with their element type; ?mask= keeps the named fields
    const res = await (await app.request("/config_dump?resource=static_clusters")).json();
    assert.deepEqual(res.configs.map((c: Record<string, unknown>) => c["@type"]), [
      "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
    ]);
    assert.equal(res.configs[0].cluster.name, "backend");
    const masked = await (await app.request("/config_dump?resource=static_clusters&mask=cluster.name"))
      .json();
    assert.deepEqual(masked.configs[0], {
      "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
      cluster: { name: "backend" },
    });
    assert.equal((await app.request("/config_dump?resource=bogus")).status, 400);
    const eds = await (await app.request("/config_dump?include_eds")).json();
    assert.equal(eds.configs[4]["@type"], "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump");
  });
  await t.step("/listeners text and json", async () => {
    assert.equal(await (await app.request("/listeners")).text(), "l1::0.0.0.0:10000\nl6::[::]:10001\n");
    assert.deepEqual(await (await app.request("/listeners?format=json")).json(), {
      listener_statuses: [
        { name: "l1", local_address: { socket_address: { address: "0.0.0.0", port_value: 10000 } } },
        { name: "l6", local_address: { socket_address: { address: "::", port_value: 10001 } } },
      ],
    });
  });
  await t.step("/server_info and /ready", async () => {
    const j = await (await app.request("/server_info")).json();
    assert.equal(j.state, "LIVE");
    assert.equal(j.uptime_current_epoch, "12s");
    assert.equal(j.uptime_all_epochs, "30s");
    assert.deepEqual(j.node, { id: "n1", cluster: "c1" });
    let r = await app.request("/ready");
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "LIVE\n");
    deps.isReady = false;
    r = await app.request("/ready");
    assert.equal(r.status, 503);
    assert.equal(await r.text(), "PRE_INITIALIZING\n");
    deps.isReady = true;
  });
  await t.step("/runtime", async () => {
    assert.deepEqual(await (await app.request("/runtime")).json(), { entries: {}, layers: [] });
  });
  await t.step("mutating endpoints need POST", async () => {
    for (const path of ["/reset_counters", "/quitquitquit", "/healthcheck/fail", "/reopen_logs"]) {
      const r = await app.request(path);
      assert.equal(r.status, 405, path);
      assert.equal(r.headers.get("allow"), "POST");
      assert.match(await r.text(), /requires POST/);
    }
    assert.deepEqual(deps.calls, []);
    assert.equal((await app.request("/stats", { method: "DELETE" })).status, 405);
  });
  await t.step("/reset_counters, /reopen_logs, contributed endpoint, /quitquitquit", async () => {
    const r = await app.request("/reset_counters", post);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "OK\n");
    assert.ok(
      (await (await app.request("/stats")).text()).includes("cluster.backend.upstream_rq_total: 0\n"),
    );
    assert.equal((await app.request("/reopen_logs", post)).status, 200);
    assert.equal(await (await app.request("/healthcheck/fail", post)).text(), "OK\n");
    assert.equal(await (await app.request("/quitquitquit", post)).text(), "OK\n");
    await Promise.resolve();
    assert.deepEqual(deps.calls, ["reset", "reopen", "quit"]);
  });
  await t.step("/logging", async () => {
    assert.equal(await (await app.request("/logging")).text(), "active loggers:\n  default: info\n");
    const r = await app.request("/logging?level=debug", post);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "active loggers:\n  default: debug\n");
    assert.equal(deps.level, "debug");
    assert.equal((await app.request("/logging?level=debug")).status, 405);
    assert.equal((await app.request("/logging?level=loud", post)).status, 400);
    assert.equal((await app.request("/logging?upstream=debug", post)).status, 400);
    assert.equal(deps.level, "debug");
  });
  await t.step("unknown paths are 404 with the command list", async () => {
    const r = await app.request("/nope");
    assert.equal(r.status, 404);
    assert.match(await r.text(), /^invalid path\. admin commands are:/);
  });
  await t.step("duplicate paths are rejected", () => {
    assert.throws(
      () =>
        createAdminApp(fakeDeps([{ path: "/stats", method: "GET", help: "x", handler: (c) => c.text("") }])),
      /Admin endpoint \/stats registered twice/,
    );
  });
  await t.step("a failing handler is a 500", async () => {
    const d = fakeDeps();
    d.clusters = () => Promise.reject(new Error("Boom"));
    const r = await createAdminApp(d).request("/clusters");
    assert.equal(r.status, 500);
    assert.match(await r.text(), /Boom/);
  });
});

Deno.test("admin server on a real socket", async () => {
  const server = startAdminServer(createAdminApp(fakeDeps()), { hostname: "127.0.0.1", port: 0 });
  try {
    assert.ok(server.port > 0);
    const r = await fetch(`http://127.0.0.1:${server.port}/ready`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "LIVE\n");
    const s = await fetch(`http://127.0.0.1:${server.port}/stats/prometheus`);
    assert.match(await s.text(), /# TYPE envoy_cluster_upstream_rq_total counter/);
    const q = await fetch(`http://127.0.0.1:${server.port}/quitquitquit`);
    assert.equal(q.status, 405);
    await q.body?.cancel();
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/ready`));
});

Deno.test("admin: /logging per logger, as Envoy's", async () => {
  const deps = fakeDeps();
  const levels: Record<string, string> = { http: "info", router: "info", upstream: "info" };
  deps.loggers = () => ({ ...levels });
  deps.setLoggerLevels = (l: Record<string, string>) => {
    for (const [k, v] of Object.entries(l)) {
      if (!(k in levels)) throw new Error(`Invalid component specified "${k}"`);
      levels[k] = v;
    }
  };
  const app = createAdminApp(deps);
  const post = { method: "POST" };
  assert.equal(
    await (await app.request("/logging")).text(),
    "active loggers:\n  http: info\n  router: info\n  upstream: info\n",
  );
  assert.equal((await app.request("/logging?router=debug", post)).status, 200);
  assert.equal(levels.router, "debug");
  const r = await app.request("/logging?paths=http:trace,upstream:warn", post);
  assert.equal(await r.text(), "active loggers:\n  http: trace\n  router: debug\n  upstream: warn\n");
  assert.equal((await app.request("/logging?bogus=debug", post)).status, 400);
  assert.equal((await app.request("/logging?paths=http", post)).status, 400);
  assert.equal((await app.request("/logging?router=debug&http=info", post)).status, 400);
});

Deno.test("admin: /runtime and /runtime_modify, as Envoy's", async () => {
  const stats = new StatsStore();
  const loader = new RuntimeLoader({
    layers: [
      { name: "base", static_layer: { a: { b: 5 }, c: "x" } },
      { name: "admin", admin_layer: {} },
    ],
  }, { serviceCluster: "", stats, publish: () => Promise.resolve() });
  await loader.start();
  const deps = fakeDeps();
  deps.runtime = { view: () => runtimeView(loader.snapshot), modify: (p) => loader.mergeValues(p) };
  const app = createAdminApp(deps);
  const post = { method: "POST" };
  assert.deepEqual(await (await app.request("/runtime")).json(), {
    entries: {
      "a.b": { final_value: "5", layer_values: ["5", ""] },
      c: { final_value: "x", layer_values: ["x", ""] },
    },
    layers: ["base", "admin"],
  });
  assert.equal((await app.request("/runtime_modify?a.b=7")).status, 405);
  const ok = await app.request("/runtime_modify?a.b=7&d=on&a.b=8", post);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "OK\n");
  const v = await (await app.request("/runtime")).json();
  assert.deepEqual(v.entries["a.b"], { final_value: "7", layer_values: ["5", "7"] });
  assert.deepEqual(v.entries.d, { final_value: "on", layer_values: ["", "on"] });
  assert.equal(stats.gauge("runtime.admin_overrides_active").value, 1);
  // form body, and an empty value removes the override
  const form = await app.request("/runtime_modify", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "a.b=&d=",
  });
  assert.equal(form.status, 200);
  assert.deepEqual((await (await app.request("/runtime")).json()).entries["a.b"], {
    final_value: "5",
    layer_values: ["5", ""],
  });
  assert.equal(stats.gauge("runtime.admin_overrides_active").value, 0);
  const usage = await app.request("/runtime_modify", post);
  assert.equal(usage.status, 400);
  assert.match(await usage.text(), /^usage: \/runtime_modify\?key1=value1/);
  loader.close();

  // without an admin layer: 503, as Envoy
  const none = new RuntimeLoader(undefined, { serviceCluster: "", stats, publish: () => Promise.resolve() });
  await none.start();
  deps.runtime = { view: () => runtimeView(none.snapshot), modify: (p) => none.mergeValues(p) };
  const app2 = createAdminApp(deps);
  const r = await app2.request("/runtime_modify?x=1", post);
  assert.equal(r.status, 503);
  assert.equal(await r.text(), "No admin layer specified");
  assert.deepEqual(await (await app2.request("/runtime")).json(), { entries: {}, layers: [] });
  none.close();
});
