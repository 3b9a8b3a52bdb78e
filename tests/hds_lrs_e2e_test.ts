/**
 * HDS and LRS end to end: the control plane's HdsServer and LrsServer on a real gRPC port, nuncio proxies
 * (main.ts subprocesses) with `hds_config` / `cluster_manager.load_stats_config` pointing at it, and real HTTP
 * origins (Deno.serve):
 * - HDS: three proxies, k=2: every origin is checked by two of them with nuncio's HTTP checker; an origin whose
 *   health path answers 503 becomes UNHEALTHY (listeners told) and HEALTHY again when it recovers; a proxy
 *   that stops hands its share to the other two, which then judge alone.
 * - LRS: 10 requests through a proxy (two workers), 3 of them answered 503, add up to 10 issued, 7 successful
 *   and 3 errors at the control plane.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { HdsServer, type HdsTarget } from "../src/control_plane/hds.ts";
import { LrsServer } from "../src/control_plane/lrs.ts";
import { GrpcServer } from "../src/grpc/server.ts";
import { StatsStore } from "../src/stats/store.ts";
import { refusedPort } from "./helpers.ts";
import { waitFor } from "./health_helpers.ts";
import { launchNuncio, type Nuncio, startNuncio, staticCluster } from "./xds_e2e_helpers.ts";

type Obj = Record<string, unknown>;

const GRPC_SOURCE = {
  api_type: "GRPC",
  transport_api_version: "V3",
  grpc_services: [{ envoy_grpc: { cluster_name: "cp" } }],
};

/** An origin whose /healthcheck answers 503 while `failing`, and whose /fail always answers 503. */
function origin(name: string) {
  const state = { failing: false, requests: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthcheck") {
      return new Response(state.failing ? "down" : "up", { status: state.failing ? 503 : 200 });
    }
    state.requests++;
    return new Response(`hello from ${name}`, { status: path === "/fail" ? 503 : 200 });
  });
  return { state, port: server.addr.port, close: () => server.shutdown() };
}

function proxyBootstrap(id: string, adminPort: number, cpPort: number, extra: Obj): string {
  return stringify({
    node: { id, cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    static_resources: {
      clusters: [staticCluster("cp", cpPort, true)],
      ...(extra.static_resources as Obj ?? {}),
    },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== "static_resources")),
  });
}

Deno.test("HDS: three proxies share the checks (k=2); 503s make an origin UNHEALTHY; a proxy leaving hands its share on", async () => {
  const origins = ["a", "b", "c"].map(origin);
  const targets: HdsTarget[] = [{
    service: "web",
    endpoints: origins.map((o) => ({ address: "127.0.0.1", port: o.port })),
    healthCheck: {
      timeout: "1s",
      interval: "0.1s",
      unhealthy_threshold: 1,
      healthy_threshold: 1,
      http_health_check: { path: "/healthcheck" },
    },
  }];
  const stats = new StatsStore();
  const hds = new HdsServer({ targets: () => targets, checkersPerEndpoint: 2, intervalMs: 100, stats });
  const changed: string[] = [];
  hds.healthListeners.add((s) => changed.push(...s));
  const grpc = new GrpcServer();
  hds.registerOn(grpc);
  const cpPort = grpc.listen({ port: 0 }).port;
  const proxies: Nuncio[] = [];
  const verdicts = () => origins.map((o) => hds.health("web", "127.0.0.1", o.port));
  try {
    proxies.push(
      ...await Promise.all(["p1", "p2", "p3"].map((id, i) => {
        const admin = refusedPort();
        return startNuncio(
          proxyBootstrap(id, admin, cpPort, { hds_config: GRPC_SOURCE }),
          admin,
          i === 2 ? 2 : 1,
        );
      })),
    );
    await waitFor("three HDS proxies", () => hds.proxies.length === 3, 10_000);
    for (const o of origins) assert.equal(hds.checkers("web", "127.0.0.1", o.port).length, 2);
    const status = hds.status() as { proxies: { node: string; endpoints: number }[] };
    assert.equal(status.proxies.reduce((n, p) => n + p.endpoints, 0), 6);
    await waitFor("all HEALTHY", () => verdicts().every((v) => v === "HEALTHY"), 10_000);
    assert.ok(changed.includes("web"));

    // origin a fails its health checks, then recovers
    changed.length = 0;
    origins[0].state.failing = true;
    await waitFor("a UNHEALTHY", () => verdicts()[0] === "UNHEALTHY", 10_000);
    assert.deepEqual(verdicts().slice(1), ["HEALTHY", "HEALTHY"]);
    assert.deepEqual([...new Set(changed)], ["web"]);
    origins[0].state.failing = false;
    await waitFor("a HEALTHY again", () => verdicts()[0] === "HEALTHY", 10_000);

    // the proxy with the largest share stops (rendezvous may give one proxy none of three origins): every origin
    // is then checked by the other two, which report on what it had
    const ids = ["p1", "p2", "p3"];
    const shareOf = (id: string) =>
      origins.filter((o) => hds.checkers("web", "127.0.0.1", o.port).includes(id));
    const leaving = ids.reduce((a, b) => (shareOf(b).length > shareOf(a).length ? b : a));
    const staying = ids.filter((id) => id !== leaving);
    const share = shareOf(leaving);
    assert.ok(share.length > 0);
    await proxies[ids.indexOf(leaving)].stop();
    await waitFor(`${leaving} gone`, () => !hds.proxies.includes(leaving), 10_000);
    for (const o of origins) assert.deepEqual(hds.checkers("web", "127.0.0.1", o.port).sort(), staying);
    for (const o of share) o.state.failing = true;
    await waitFor(
      `${leaving}'s former share judged UNHEALTHY by ${staying.join(" and ")}`,
      () => share.every((o) => hds.health("web", "127.0.0.1", o.port) === "UNHEALTHY"),
      10_000,
    );
    const rest = origins.filter((o) => !share.includes(o));
    for (const o of rest) assert.equal(hds.health("web", "127.0.0.1", o.port), "HEALTHY");
    assert.ok(stats.counter("hds.reports").value > 0);
    for (const id of staying) {
      assert.ok((await proxies[ids.indexOf(id)].stat("hds_delegate.responses")) > 0);
    }
  } finally {
    for (const p of proxies) await p.stop().catch(() => {});
    hds.close();
    await grpc.close();
    await Promise.all(origins.map((o) => o.close()));
  }
});

Deno.test("LRS: 10 requests through the proxy, 3 answered 503: 10 issued, 7 successful, 3 errors", async () => {
  const web = origin("web");
  const stats = new StatsStore();
  const lrs = new LrsServer({ intervalMs: 100, stats });
  const grpc = new GrpcServer();
  lrs.registerOn(grpc);
  const cpPort = grpc.listen({ port: 0 }).port;
  const admin = refusedPort();
  const port = refusedPort();
  const listener = {
    name: "ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: "ingress",
          route_config: {
            virtual_hosts: [{
              name: "any",
              domains: ["*"],
              routes: [{ match: { prefix: "/" }, route: { cluster: "web" } }],
            }],
          },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
        },
      }],
    }],
  };
  const bootstrap = proxyBootstrap("lrs-proxy", admin, cpPort, {
    static_resources: {
      listeners: [listener],
      clusters: [staticCluster("cp", cpPort, true), {
        name: "web",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
          cluster_name: "web",
          endpoints: [{
            locality: { zone: "z1" },
            lb_endpoints: [{
              endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: web.port } } },
            }],
          }],
        },
      }],
    },
    cluster_manager: { load_stats_config: GRPC_SOURCE },
  });
  let proxy: Nuncio | undefined;
  try {
    proxy = await launchNuncio(bootstrap, admin, 2);
    // counting starts with the first LoadStatsResponse: wait for the proxy's first (empty) report of "web"
    await waitFor("the first report of web", () => lrs.loads().nodes[0]?.clusters.web !== undefined, 15_000);
    for (let i = 0; i < 10; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/${i % 3 === 0 && i > 0 ? "fail" : "ok"}`);
      await r.body?.cancel();
      assert.equal(r.status, i % 3 === 0 && i > 0 ? 503 : 200);
    }
    assert.equal(web.state.requests, 10);
    const totals = () => lrs.loads().nodes[0].clusters.web.totals;
    let locality: unknown;
    await waitFor("10 issued and settled", () => {
      const last = lrs.loads().nodes[0].clusters.web.last;
      if (last.localities.length > 0) locality = last.localities[0].locality;
      const t = totals();
      return t.total_issued_requests === 10 && t.total_successful_requests + t.total_error_requests === 10;
    }, 10_000);
    assert.deepEqual(totals(), {
      total_successful_requests: 7,
      total_error_requests: 3,
      total_issued_requests: 10,
      total_dropped_requests: 0,
      reports: totals().reports,
    });
    // the cluster's hosts share one locality: the report names it
    assert.deepEqual(locality, { zone: "z1" });
    const l = lrs.loads();
    assert.deepEqual([l.nodes[0].id, l.nodes[0].cluster], ["lrs-proxy", "edge"]);
    assert.equal(l.clusters.web.totals.total_issued_requests, 10);
    assert.ok((await proxy.stat("load_reporter.responses")) >= 2);
  } finally {
    await proxy?.stop().catch(() => {});
    lrs.close();
    await grpc.close();
    await web.close();
  }
});
