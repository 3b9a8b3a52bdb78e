import assert from "node:assert/strict";
import type { Cluster, Host } from "../upstream/types.ts";
import { clusterStatusOf, formatClustersText, healthFlagsString, mergeClusterStatuses } from "./clusters.ts";
import { redact } from "./config_dump.ts";

function host(address: string, port: number, healthy: boolean, rq: number): Host {
  return {
    address,
    port,
    addressString: `${address}:${port}`,
    hostname: address,
    weight: 1,
    healthy,
    activeRequests: 1,
    activeConnections: 2,
    stats: { cx_total: 4, cx_connect_fail: 1, rq_total: rq, rq_success: rq, rq_error: 0, rq_timeout: 0 },
  };
}

function cluster(hosts: Host[]): Cluster {
  return { name: "svc", hosts: () => hosts } as unknown as Cluster;
}

Deno.test("cluster status helpers", async (t) => {
  await t.step("clusterStatusOf maps hosts and health", () => {
    const s = clusterStatusOf(cluster([host("10.0.0.1", 80, true, 3), host("10.0.0.2", 80, false, 0)]));
    assert.equal(s.name, "svc");
    assert.deepEqual(s.hosts[0].stats, {
      cx_total: 4,
      cx_active: 2,
      cx_connect_fail: 1,
      rq_total: 3,
      rq_active: 1,
      rq_success: 3,
      rq_error: 0,
      rq_timeout: 0,
    });
    assert.equal(s.hosts[0].hostname, "");
    assert.deepEqual(s.hosts[1].healthFlags, ["failed_active_hc"]);
    const text = formatClustersText([s]);
    assert.ok(text.includes("svc::10.0.0.2:80::health_flags::/failed_active_hc\n"));
    assert.ok(text.includes("svc::10.0.0.1:80::rq_total::3\n"));
  });
  await t.step("mergeClusterStatuses sums workers", () => {
    const a = clusterStatusOf(cluster([host("10.0.0.1", 80, true, 3)]));
    const b = clusterStatusOf(cluster([host("10.0.0.1", 80, true, 5), host("10.0.0.3", 81, true, 1)]));
    const m = mergeClusterStatuses([[a], [b]]);
    assert.equal(m.length, 1);
    assert.equal(m[0].hosts.length, 2);
    assert.equal(m[0].hosts[0].stats.rq_total, 8);
    assert.equal(m[0].hosts[0].stats.cx_active, 4);
    assert.equal(a.hosts[0].stats.rq_total, 3, "inputs are not modified");
  });
  await t.step("health flag strings and redaction", () => {
    assert.equal(healthFlagsString([]), "healthy");
    assert.equal(
      healthFlagsString(["failed_eds_health", "pending_dynamic_removal"]),
      "/failed_eds_health/pending_dynamic_removal",
    );
    assert.deepEqual(
      redact({ a: 1, password: { inline_string: "x", filename: "/p" }, b: [{ private_key: "k" }] }),
      {
        a: 1,
        password: { inline_string: "[redacted]", filename: "[redacted]" },
        b: [{ private_key: "[redacted]" }],
      },
    );
  });
});
