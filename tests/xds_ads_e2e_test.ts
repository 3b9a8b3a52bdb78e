/**
 * nuncio driven over gRPC by a management server that is not nuncio's code (tests/xds_grpc_server.ts: grpc-js
 * with Envoy's own discovery protos), answering as a state-of-the-world (or delta) control plane does
 * (tests/xds_grpc_driver.ts), end to end through main.ts:
 * - ADS from a tiny bootstrap (--concurrency 1 and 2): CDS (an EDS cluster), EDS, LDS (a listener whose routes
 *   come from RDS) and RDS on one stream in Envoy's order; endpoint, route and listener changes under load with
 *   zero failed requests; an invalid update NACKed with the field and the last good version while traffic
 *   continues; the server killed (traffic continues) and back on the same port (the new stream resends every
 *   type in order with the versions held, and a new version applies).
 * - Plain per-type gRPC (GRPC for LDS, RDS, CDS, EDS; and DELTA_GRPC for CDS and EDS): the same changes, plus a
 *   cluster replaced under load, a NACK, and a restart of the server.
 * - DELTA_GRPC ADS with two listeners whose HCMs name different RDS route configs (two RDS watches on one
 *   delta stream): both serve their own routes, and a change of one route config reaches only its listener.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { refusedPort, startOrigin } from "./helpers.ts";
import { waitFor } from "./health_helpers.ts";
import { AutoXdsServer, type Json, waitFor as until } from "./xds_grpc_driver.ts";
import {
  edsCluster,
  endpoints,
  getOnce,
  loadLoop,
  rdsListener,
  routes,
  startNuncio,
  staticCluster,
  TYPES,
} from "./xds_e2e_helpers.ts";

const { listener: LDS, route: RDS, cluster: CDS, endpoint: EDS } = TYPES;
const ADS = { ads: {}, resource_api_version: "V3" };
const ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

function grpcSource(apiType: "GRPC" | "DELTA_GRPC") {
  return {
    resource_api_version: "V3",
    api_config_source: {
      api_type: apiType,
      transport_api_version: "V3",
      grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
    },
  };
}

function bootstrap(xdsPort: number, adminPort: number, dynamic: Json): string {
  return stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    dynamic_resources: dynamic,
    static_resources: { clusters: [staticCluster("xds", xdsPort, true)] },
  });
}

/** The type of each request that is the first of its type on its stream, in arrival order. */
function firstPerType(requests: Json[]): Json[] {
  const seen = new Set<string>();
  return requests.filter((r) => {
    const k = `${r.stream} ${r.req.type_url}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const nackOf = (history: Json[], type: string) =>
  history.find((r) => r.req.type_url === type && r.req.error_detail !== undefined);

for (const concurrency of [1, 2]) {
  Deno.test(`xDS over ADS (grpc-js server) end to end (--concurrency ${concurrency})`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    await using xds = await AutoXdsServer.start();
    const port = refusedPort();
    const adminPort = refusedPort();
    await xds.set(CDS, "c1", [edsCluster(ADS)]);
    await xds.set(EDS, "e1", [endpoints([a.port])]);
    await xds.set(LDS, "l1", [rdsListener(port, "ingress", ADS)]);
    await xds.set(RDS, "r1", [routes("r1")]);
    const dynamic = {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
      },
      lds_config: ADS,
      cds_config: ADS,
    };
    await using nuncio = await startNuncio(bootstrap(xds.port, adminPort, dynamic), adminPort, concurrency);
    // LIVE only once the listener's routes and the cluster's endpoints arrived: the first request is served
    assert.equal(await getOnce(port), "hello from a|r1");

    // one ADS stream; CDS asked before LDS; EDS and RDS follow once a cluster and a listener need them
    const first = firstPerType(xds.history);
    assert.ok(xds.history.every((r) => r.method === ADS_METHOD && r.stream === first[0].stream));
    assert.deepEqual(first.map((r) => r.req.type_url), [CDS, LDS, EDS, RDS]);
    assert.equal(first[0].req.node.id, "node-1");
    assert.deepEqual(first[2].req.resource_names, ["web"]);
    assert.deepEqual(first[3].req.resource_names, ["routes"]);
    // every response is ACKed with its version (the ACK leaves once every worker applied it)
    for (const [type, v] of [[CDS, "c1"], [EDS, "e1"], [LDS, "l1"], [RDS, "r1"]]) {
      await until(
        `the ACK of ${v}`,
        () =>
          xds.history.some((r) => r.req.type_url === type && r.req.version_info === v && !r.req.error_detail),
      );
    }

    let modifiedBeforeKill = NaN;
    const load = loadLoop(port);
    try {
      // EDS: the endpoints move to origin b
      await xds.set(EDS, "e2", [endpoints([b.port])]);
      await load.more("hello from b|r1", 20);
      // RDS: a new route config version reaches the open keep-alive connections
      await xds.set(RDS, "r2", [routes("r2")]);
      await load.more("hello from b|r2", 20);
      // LDS: the listener is replaced (new stat prefix); the old one drains
      await xds.set(LDS, "l2", [rdsListener(port, "ingress_v2", ADS)]);
      await waitFor(
        "LDS v2",
        async () => (await nuncio.stat("http.ingress_v2.downstream_rq_total")) > 0,
        10_000,
      );
      await load.more("hello from b|r2", 20);

      // an invalid CDS update (an lb_policy nuncio does not know) is NACKed with its reason
      await xds.set(CDS, "c-bad", [edsCluster(ADS, 99)]);
      const nack = await until("the NACK", () => nackOf(xds.history, CDS));
      assert.equal(nack.req.version_info, "c1", "a NACK carries the last good version");
      assert.match(nack.req.error_detail.message, /Cluster "web": lb_policy: /);
      assert.ok(nack.req.response_nonce, "a NACK names the response it rejects");
      assert.ok((await nuncio.stat("cluster_manager.cds.update_rejected")) >= 1);
      await load.more("hello from b|r2", 20);

      // the management server dies: traffic continues on the last good config
      modifiedBeforeKill = await nuncio.stat("listener_manager.listener_modified");
      await xds.kill();
      await load.more("hello from b|r2", 50);
      await waitFor(
        "connected_state 0",
        async () => (await nuncio.stat("control_plane.connected_state")) === 0,
      );
      // ... and comes back on the same port with a new route version, which applies
      await xds.set(RDS, "r3", [routes("r3")]);
      await xds.restart();
      await load.more("hello from b|r3", 20, 15_000);
      const again = firstPerType(xds.history.filter((r) => r.generation === 1));
      assert.deepEqual(
        again.map((r) => r.req.type_url),
        [CDS, EDS, LDS, RDS],
        "Envoy's order on a new stream",
      );
      assert.deepEqual(again.map((r) => r.req.version_info), ["c1", "e2", "l2", "r2"]);
      assert.ok(again.every((r) => r.req.response_nonce === undefined), "no nonce on a new stream");
      // the bad cluster, still current on the server, is NACKed again on the new stream
      await until("the NACK on the new stream", () => nackOf(xds.requests(), CDS));
      assert.equal(await nuncio.stat("control_plane.connected_state"), 1);
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], "no request failed during any update");
    assert.ok((await nuncio.stat("listener_manager.lds.update_success")) >= 2);
    // EDS: e1, e2, and e2 again on the new stream (state of the world re-delivers what a new stream asks for;
    // REST answers 304 instead); a re-delivered listener is not modified
    assert.equal(await nuncio.stat("cluster.web.update_success"), 3);
    assert.equal(await nuncio.stat("listener_manager.listener_modified"), modifiedBeforeKill);
    // the RDS subscription is shared by both listener versions and keeps the first one's stat prefix
    assert.ok((await nuncio.stat("http.ingress.rds.routes.update_success")) >= 3);
    assert.ok((await nuncio.stat("cluster_manager.cds.update_rejected")) >= 2);
    const dump = JSON.parse(await nuncio.admin("/config_dump?include_eds"));
    const part = (suffix: string) => dump.configs.find((c: Json) => c["@type"].endsWith(suffix));
    assert.equal(part("ClustersConfigDump").version_info, "c1");
    assert.equal(part("ClustersConfigDump").dynamic_active_clusters[0].cluster.name, "web");
    assert.equal(part("ListenersConfigDump").version_info, "l2");
    assert.equal(part("EndpointsConfigDump").dynamic_endpoint_configs[0].version_info, "e2");
    assert.equal(part("RoutesConfigDump").dynamic_route_configs[0].version_info, "r3");
  });
}

for (const cdsEds of ["GRPC", "DELTA_GRPC"] as const) {
  Deno.test(`xDS over per-type gRPC streams end to end (LDS/RDS GRPC, CDS/EDS ${cdsEds})`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    await using xds = await AutoXdsServer.start();
    const port = refusedPort();
    const adminPort = refusedPort();
    const sotw = grpcSource("GRPC");
    const clusters = grpcSource(cdsEds);
    await xds.set(CDS, "c1", [edsCluster(clusters)]);
    await xds.set(EDS, "e1", [endpoints([a.port])]);
    await xds.set(LDS, "l1", [rdsListener(port, "ingress", sotw)]);
    await xds.set(RDS, "r1", [routes("r1")]);
    const dynamic = { lds_config: sotw, cds_config: clusters };
    await using nuncio = await startNuncio(bootstrap(xds.port, adminPort, dynamic), adminPort, 1);
    // LIVE only once the listener's routes and the cluster's endpoints arrived: the first request is served
    assert.equal(await getOnce(port), "hello from a|r1");
    const kind = cdsEds === "GRPC" ? "Stream" : "Delta";
    const methods = new Map(xds.history.map((r) => [r.req.type_url, r.method]));
    assert.deepEqual(Object.fromEntries(methods), {
      [CDS]: `/envoy.service.cluster.v3.ClusterDiscoveryService/${kind}Clusters`,
      [EDS]: `/envoy.service.endpoint.v3.EndpointDiscoveryService/${kind}Endpoints`,
      [LDS]: "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
      [RDS]: "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes",
    });
    assert.equal(new Set(xds.history.map((r) => r.stream)).size, 4, "one stream per type");

    const clustersVersion = async () =>
      JSON.parse(await nuncio.admin("/config_dump")).configs.find((c: Json) =>
        c["@type"].endsWith("ClustersConfigDump")
      ).version_info;
    const load = loadLoop(port);
    try {
      await xds.set(EDS, "e2", [endpoints([a.port, b.port])]);
      await load.more("hello from b|r1", 20);
      await xds.set(RDS, "r2", [routes("r2")]);
      await load.more("hello from b|r2", 20);
      // the cluster is replaced whole (another lb_policy) under load; its endpoints stay
      await xds.set(CDS, "c2", [edsCluster(clusters, "LEAST_REQUEST")]);
      await waitFor(
        "CDS v2 applied",
        async () => (await nuncio.stat("cluster_manager.cds.update_success")) >= 2,
      );
      await load.more("hello from a|r2", 20);
      await load.more("hello from b|r2", 20);
      await xds.set(EDS, "e3", [endpoints([b.port])]);
      await waitFor("EDS v3 applied", async () => (await nuncio.stat("cluster.web.update_success")) >= 3);
      await load.more("hello from b|r2", 20);

      await xds.set(CDS, "c-bad", [edsCluster(clusters, 99)]);
      const nack = await until("the NACK", () => nackOf(xds.history, CDS));
      assert.match(nack.req.error_detail.message, /Cluster "web": lb_policy: /);
      if (cdsEds === "GRPC") assert.equal(nack.req.version_info, "c2");
      await load.more("hello from b|r2", 20);

      await xds.kill();
      await load.more("hello from b|r2", 50);
      await xds.set(CDS, "c3", [edsCluster(clusters)]);
      await xds.set(RDS, "r3", [routes("r3")]);
      await xds.restart();
      await load.more("hello from b|r3", 20, 15_000);
      await waitFor("CDS v3 applied", async () => (await clustersVersion()) === "c3");
      if (cdsEds === "DELTA_GRPC") {
        // a new delta stream tells the server what is held
        const held = await until(
          "EDS on the new stream",
          () => xds.history.find((r) => r.generation === 1 && r.req.type_url === EDS),
        );
        assert.deepEqual(Object.keys(held.req.initial_resource_versions), ["web"]);
        assert.deepEqual(held.req.resource_names_subscribe, ["web"]);
      }
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], "no request failed during any update");
    const dump = JSON.parse(await nuncio.admin("/config_dump?include_eds"));
    const part = (suffix: string) => dump.configs.find((c: Json) => c["@type"].endsWith(suffix));
    assert.equal(part("ClustersConfigDump").version_info, "c3");
    assert.equal(part("ListenersConfigDump").version_info, "l1");
  });
}

Deno.test("DELTA_GRPC ADS end to end: two listeners with their own RDS route configs on one stream", async () => {
  await using a = startOrigin("a");
  await using xds = await AutoXdsServer.start();
  const portA = refusedPort();
  const portB = refusedPort();
  const adminPort = refusedPort();
  // two route configs, each named by one listener: two RDS watches of the same type on the delta ADS stream
  const listener = (port: number, name: string, routeConfig: string) => {
    const l = rdsListener(port, name, ADS, name) as Json;
    l.filter_chains[0].filters[0].typed_config.rds.route_config_name = routeConfig;
    return l;
  };
  const routeConfig = (name: string, version: string) => ({ ...routes(version), name });
  await xds.set(CDS, "c1", [edsCluster(ADS)]);
  await xds.set(EDS, "e1", [endpoints([a.port])]);
  await xds.set(LDS, "l1", [
    listener(portA, "ingress_a", "routes_a"),
    listener(portB, "ingress_b", "routes_b"),
  ]);
  await xds.set(RDS, "r1", [routeConfig("routes_a", "a1"), routeConfig("routes_b", "b1")]);
  const dynamic = {
    ads_config: {
      api_type: "DELTA_GRPC",
      transport_api_version: "V3",
      grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
    },
    lds_config: ADS,
    cds_config: ADS,
  };
  await using nuncio = await startNuncio(bootstrap(xds.port, adminPort, dynamic), adminPort, 1);
  // both listeners serve their own route config
  assert.equal(await getOnce(portA), "hello from a|a1");
  assert.equal(await getOnce(portB), "hello from a|b1");
  const history = xds.history;
  assert.ok(
    history.every((r) => r.method.endsWith("/DeltaAggregatedResources") && r.stream === history[0].stream),
  );
  const rdsNames = history.filter((r) => r.req.type_url === RDS).flatMap((r) =>
    r.req.resource_names_subscribe ?? []
  );
  assert.deepEqual([...new Set(rdsNames)].sort(), ["routes_a", "routes_b"]);
  const successA = "http.ingress_a.rds.routes_a.update_success";
  const successB = "http.ingress_b.rds.routes_b.update_success";
  const beforeA = await nuncio.stat(successA);
  const beforeB = await nuncio.stat(successB);
  assert.ok(beforeA >= 1 && beforeB >= 1);

  // a change of routes_b reaches only listener B (delta sends only routes_b; only its watch gets it)
  await xds.set(RDS, "r2", [routeConfig("routes_a", "a1"), routeConfig("routes_b", "b2")]);
  await waitFor("b2 on listener B", async () => (await getOnce(portB)) === "hello from a|b2", 10_000);
  assert.equal(await getOnce(portA), "hello from a|a1");
  assert.equal(await nuncio.stat(successA), beforeA, "routes_a's watch was not called");
  assert.equal(await nuncio.stat(successB), beforeB + 1);
  // ... and a change of routes_a reaches only listener A; every response is ACKed
  await xds.set(RDS, "r3", [routeConfig("routes_a", "a3"), routeConfig("routes_b", "b2")]);
  await waitFor("a3 on listener A", async () => (await getOnce(portA)) === "hello from a|a3", 10_000);
  assert.equal(await getOnce(portB), "hello from a|b2");
  assert.equal(await nuncio.stat(successB), beforeB + 1);
  await until(
    "the RDS ACKs",
    () => history.filter((r) => r.req.type_url === RDS && r.req.response_nonce).length >= 3,
  );
  assert.equal(nackOf(history, RDS), undefined);
  assert.equal(await nuncio.stat("control_plane.connected_state"), 1);
});
