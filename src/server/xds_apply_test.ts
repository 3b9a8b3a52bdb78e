import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { parseResource, parseUpdate } from "./xds_apply.ts";

Deno.test("xds resources are parsed with the bootstrap's schemas; NACK messages read like --mode validate", () => {
  const ok = parseResource("cluster", "web", { name: "web", type: "STATIC", connect_timeout: "1s" });
  assert.equal(ok.ok, true);
  const bad = parseResource("cluster", "web", { name: "web", lb_policy: "BOGUS", color: "red" });
  assert.equal(bad.ok, false);
  const msg = bad.ok ? "" : bad.message;
  assert.match(msg, /^Cluster "web": /);
  assert.match(msg, /lb_policy: /);
  assert.match(msg, /color: Unknown field/);
  const missing = parseResource("endpoint", "web", { endpoints: [] });
  assert.equal(
    missing.ok ? "" : missing.message,
    'ClusterLoadAssignment "web": cluster_name: Missing required field',
  );
  // the name a response files a resource under must be the resource's own
  const renamed = parseResource("route", "a", { name: "b", virtual_hosts: [] });
  assert.equal(renamed.ok ? "" : renamed.message, 'RouteConfiguration "a": its name is "b"');
  // one bad resource rejects the whole update
  const u = parseUpdate("cluster", "v2", [["web", { name: "web" }], ["x", { name: "x", type: "NOPE" }]], []);
  assert.equal(typeof u, "string");
  assert.match(u as string, /^Cluster "x": type: /);
});
