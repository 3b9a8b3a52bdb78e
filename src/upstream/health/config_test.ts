import assert from "node:assert/strict";
import { clusterSchema } from "../config.ts";
import { healthCheckSchema } from "./config.ts";
import { payloadMatches } from "./tcp_probe.ts";

const base = { timeout: "1s", interval: "5s", unhealthy_threshold: 2, healthy_threshold: 1 };

Deno.test("health check config", async (t) => {
  await t.step("defaults and payloads", () => {
    const c = healthCheckSchema.parse({
      ...base,
      tcp_health_check: { send: { text: "0a0B" }, receive: [{ binary: btoa("ok") }] },
    });
    assert.equal(c.no_traffic_interval, 60_000);
    assert.equal(c.reuse_connection, true);
    assert.deepEqual([...c.tcp_health_check!.send!], [10, 11]);
    assert.deepEqual([...c.tcp_health_check!.receive[0]], [111, 107]);
  });

  await t.step("grpc_health_check defaults", () => {
    const c = healthCheckSchema.parse({ ...base, grpc_health_check: {} });
    assert.deepEqual(c.grpc_health_check, { service_name: "", authority: "", initial_metadata: [] });
  });

  await t.step("errors name the field", () => {
    const msg = (v: unknown) =>
      healthCheckSchema.safeParse(v).error?.issues.map((i) => i.path.join(".") + ": " + i.message);
    assert.match(msg({ ...base, grpc_health_check: { service: "x" } })!.join(), /grpc_health_check/);
    assert.match(
      msg({ ...base })!.join(),
      /Exactly one of http_health_check, tcp_health_check, grpc_health_check/,
    );
    assert.match(
      msg({ ...base, grpc_health_check: {}, tcp_health_check: {} })!.join(),
      /Exactly one of/,
    );
    assert.match(msg({ ...base, tcp_health_check: { send: { text: "abc" } } })!.join(), /hex/);
    assert.match(
      msg({ ...base, http_health_check: { path: "/", codec_client_type: "HTTP2" } })!.join(),
      /only HTTP1/,
    );
    assert.match(msg({ interval: "1s", tcp_health_check: {} })!.join(), /timeout/);
  });

  await t.step("a cluster takes one health check, outlier_detection with Envoy's defaults", () => {
    const c = clusterSchema.parse({
      name: "c",
      health_checks: [{ ...base, http_health_check: { path: "/h" } }],
      outlier_detection: {},
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
    });
    assert.deepEqual(c.health_checks![0].http_health_check!.path, "/h");
    const od = c.outlier_detection!;
    assert.equal(od.consecutive_5xx, 5);
    assert.equal(od.interval, 10_000);
    assert.equal(od.base_ejection_time, 30_000);
    assert.equal(od.max_ejection_time, 300_000);
    assert.equal(od.max_ejection_percent, 10);
    assert.equal(od.enforcing_consecutive_gateway_failure, 0);
    assert.equal(od.success_rate_stdev_factor, 1900);
    const two = clusterSchema.safeParse({
      name: "c",
      health_checks: [{ ...base, tcp_health_check: {} }, { ...base, tcp_health_check: {} }],
    });
    assert.match(two.error!.issues[0].message, /Only one health check/);
  });

  await t.step("TCP receive blocks match in order anywhere in the buffer", () => {
    const e = new TextEncoder();
    const data = e.encode("xxhello..world");
    assert.ok(payloadMatches([e.encode("hello"), e.encode("world")], data, data.length));
    assert.ok(!payloadMatches([e.encode("world"), e.encode("hello")], data, data.length));
    assert.ok(!payloadMatches([e.encode("world")], data, 10));
  });
});

Deno.test("health check method: case-insensitive, METHOD_UNSPECIFIED is GET (as Envoy)", () => {
  const method = (m: string) =>
    (healthCheckSchema.parse({ ...base, http_health_check: { path: "/h", method: m } }) as {
      http_health_check?: { method: string };
    }).http_health_check?.method;
  assert.equal(method("head"), "HEAD");
  assert.equal(method("METHOD_UNSPECIFIED"), "GET");
  assert.throws(() => method("FETCH"), /method must be one of/);
});
