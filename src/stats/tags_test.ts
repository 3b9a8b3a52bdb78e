import assert from "node:assert/strict";
import { extractTags } from "./tags.ts";

Deno.test("extractTags", async (t) => {
  await t.step("cluster name and response code", () => {
    const r = extractTags("cluster.foo.upstream_rq_200");
    assert.equal(r.name, "cluster.upstream_rq");
    assert.deepEqual(r.tags, [
      { name: "envoy.response_code", value: "200" },
      { name: "envoy.cluster_name", value: "foo" },
    ]);
  });
  await t.step("response code class", () => {
    const r = extractTags("cluster.foo.upstream_rq_5xx");
    assert.equal(r.name, "cluster.upstream_rq_xx");
    assert.deepEqual(r.tags, [
      { name: "envoy.response_code_class", value: "5" },
      { name: "envoy.cluster_name", value: "foo" },
    ]);
  });
  await t.step("cluster name stops at the first dot", () => {
    const r = extractTags("cluster.a.b.membership_total");
    assert.equal(r.name, "cluster.b.membership_total");
    assert.deepEqual(r.tags, [{ name: "envoy.cluster_name", value: "a" }]);
  });
  await t.step("http prefix", () => {
    const r = extractTags("http.ingress_http.downstream_rq_total");
    assert.equal(r.name, "http.downstream_rq_total");
    assert.deepEqual(r.tags, [{ name: "envoy.http_conn_manager_prefix", value: "ingress_http" }]);
  });
  await t.step("listener address", () => {
    const r = extractTags("listener.0.0.0.0_10000.downstream_cx_total");
    assert.equal(r.name, "listener.downstream_cx_total");
    assert.deepEqual(r.tags, [{ name: "envoy.listener_address", value: "0.0.0.0_10000" }]);
  });
  await t.step("tcp and mongo prefixes", () => {
    assert.deepEqual(extractTags("tcp.edge.downstream_cx_total"), {
      name: "tcp.downstream_cx_total",
      tags: [{ name: "envoy.tcp_prefix", value: "edge" }],
    });
    assert.deepEqual(extractTags("mongo.m.cmd.find.total"), {
      name: "mongo.cmd.total",
      tags: [{ name: "envoy.mongo_cmd", value: "find" }, { name: "envoy.mongo_prefix", value: "m" }],
    });
  });
  await t.step("untagged name stays", () => {
    assert.deepEqual(extractTags("server.uptime"), { name: "server.uptime", tags: [] });
  });
});
