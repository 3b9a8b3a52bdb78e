/**
 * xDS over gRPC against a management server that is not nuncio's code: tests/xds_grpc_server.ts runs
 * @grpc/grpc-js with Envoy's own discovery service protos (npm:@grpc/grpc-js-xds), records every request and
 * answers what each test scripts. State of the world per type, ADS (order, reconnect after the server is
 * killed), delta (subscribe, unsubscribe, removed_resources, initial_resource_versions), several delta watches of
 * one type on one ADS stream (names merged, responses split, NACK when any rejects), the message size limit.
 */
import assert from "node:assert/strict";
import { systemClock } from "../common/clock.ts";
import {
  type ApiConfigSource,
  apiConfigSourceSchema,
  configSourceSchema,
  dynamicResourcesSchema,
} from "../config/config_source.ts";
import { StatsStore } from "../stats/store.ts";
import { openGrpcStream } from "../grpc/stream_client.ts";
import { XdsClient } from "./client.ts";
import { decodeDiscoveryResponse, encodeDiscoveryRequest } from "./codec/mod.ts";
import { grpcTransportFactory, type GrpcXdsDeps } from "./grpc.ts";
import { NACK_CODE, Subscription } from "./subscription.ts";
import { TYPE_URLS, type XdsUpdate } from "./types.ts";
import { type Json, waitFor, XdsServer } from "../../tests/xds_grpc_driver.ts";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;
const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.route;

function apiJson(api_type: "GRPC" | "DELTA_GRPC", extra: Json = {}): Json {
  return { api_type, grpc_services: [{ envoy_grpc: { cluster_name: "xds_cluster" } }], ...extra };
}

function api(api_type: "GRPC" | "DELTA_GRPC", extra: Json = {}): ApiConfigSource {
  return apiConfigSourceSchema.parse(apiJson(api_type, extra));
}

function deps(server: () => XdsServer, stats: StatsStore, extra: Partial<GrpcXdsDeps> = {}): GrpcXdsDeps {
  return {
    node: { id: "node-1", cluster: "svc", user_agent_name: "nuncio" },
    resolveCluster: (name) => name === "xds_cluster" ? { host: "127.0.0.1", port: server().port } : undefined,
    stats,
    backoff: { baseMs: 50, maxMs: 200 },
    ...extra,
  };
}

function cluster(name: string): Json {
  return { json: { "@type": CDS, name, connect_timeout: "1s" } };
}

Deno.test("gRPC SotW: first request, ACK with version and nonce, NACK with previous version and reason", async () => {
  const server = await XdsServer.start();
  const stats = new StatsStore();
  const updates: XdsUpdate[] = [];
  const sub = new Subscription({
    typeUrl: CDS,
    stats: stats.scope("cluster_manager.cds"),
    clock: systemClock,
    validateAndApply: (u) => {
      updates.push(u);
      return Promise.resolve(u.resources.has("bad") ? "cluster bad: connect_timeout: too small" : undefined);
    },
  });
  const factory = grpcTransportFactory(deps(() => server, stats));
  const t = factory(sub, api("GRPC", { set_node_on_first_message_only: true }));
  t.start();
  try {
    const first = await server.nthRequest(1);
    assert.equal(first.method, "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters");
    assert.equal(first.req.type_url, CDS);
    assert.equal(first.req.node.id, "node-1");
    assert.equal(first.req.version_info, undefined);
    assert.equal(first.req.response_nonce, undefined);
    assert.equal(stats.gauge("control_plane.connected_state").value, 1);

    await server.respond(first.stream, CDS, "v1", "n1", [cluster("a"), cluster("b")]);
    const ack = await server.nthRequest(2);
    assert.equal(ack.req.version_info, "v1");
    assert.equal(ack.req.response_nonce, "n1");
    assert.equal(ack.req.error_detail, undefined);
    assert.equal(ack.req.node, undefined, "node only on the first message");
    assert.deepEqual([...updates[0].resources.keys()], ["a", "b"]);
    assert.equal((updates[0].resources.get("a") as Json).connect_timeout, "1s");
    assert.equal(sub.version, "v1");

    await server.respond(first.stream, CDS, "v2", "n2", [cluster("a"), cluster("bad")]);
    const nack = await server.nthRequest(3);
    assert.equal(nack.req.version_info, "v1");
    assert.equal(nack.req.response_nonce, "n2");
    assert.equal(nack.req.error_detail.code, NACK_CODE);
    assert.match(nack.req.error_detail.message, /cluster bad: connect_timeout: too small/);
    assert.deepEqual([...sub.resources.keys()], ["a", "b"], "the last good config stays");

    // a resource that is not protobuf: the whole response is NACKed with the decoder's reason
    await server.respond(first.stream, CDS, "v3", "n3", [{ type_url: CDS, b64: "/////w==" }]);
    const nack2 = await server.nthRequest(4);
    assert.equal(nack2.req.version_info, "v1");
    assert.equal(nack2.req.response_nonce, "n3");
    assert.match(nack2.req.error_detail.message, /^resources\[0\]: /);
    assert.equal(updates.length, 2, "an undecodable response never reaches validateAndApply");

    await server.respond(first.stream, CDS, "v4", "n4", [cluster("b")]);
    const ack2 = await server.nthRequest(5);
    assert.equal(ack2.req.version_info, "v4");
    assert.equal(ack2.req.error_detail, undefined);
    assert.deepEqual(updates[2].removed, ["a"]);
    assert.equal(stats.counter("cluster_manager.cds.update_rejected").value, 2);
    assert.equal(stats.counter("cluster_manager.cds.update_success").value, 2);
    assert.equal(server.streams().length, 1);
  } finally {
    await t.close();
    await server.stop();
  }
  assert.equal(stats.gauge("control_plane.pending_requests").value, 0);
});

Deno.test("ADS through XdsClient: Envoy's order, server killed, reconnect with last version, new version applies", async () => {
  let server = await XdsServer.start();
  const stats = new StatsStore();
  const applied: Record<string, string[]> = { cds: [], lds: [], rds: [], eds: [] };
  const ok = (k: string) => (u: XdsUpdate) => {
    applied[k].push(u.version);
    return Promise.resolve(undefined);
  };
  const dynamic = dynamicResourcesSchema.parse({
    lds_config: { ads: {}, initial_fetch_timeout: "0s" },
    cds_config: { ads: {}, initial_fetch_timeout: "0s" },
    ads_config: {
      api_type: "GRPC",
      grpc_services: [{ envoy_grpc: { cluster_name: "xds_cluster" } }],
    },
  });
  const d = deps(() => server, stats, { adsConfig: dynamic.ads_config });
  const client = new XdsClient(dynamic, {
    node: d.node,
    stats,
    resolveCluster: d.resolveCluster,
    listeners: { validateAndApply: ok("lds") },
    clusters: { validateAndApply: ok("cds") },
    grpcTransport: grpcTransportFactory(d),
  });
  const ads = configSourceSchema.parse({ ads: {}, initial_fetch_timeout: "0s" });
  // subscribed out of order on purpose: LDS and CDS by start(), then RDS before EDS
  client.start();
  const rds = client.subscribe(RDS, ads, {
    names: ["routes-1"],
    stats: stats.scope("http.x.rds.routes-1"),
    validateAndApply: ok("rds"),
  });
  client.subscribe(EDS, ads, {
    names: ["c1"],
    stats: stats.scope("cluster.c1"),
    validateAndApply: ok("eds"),
  });
  // a second EDS watch shares the type's request (names merged) and only gets responses naming its cluster
  const eds9: string[] = [];
  client.subscribe(EDS, ads, {
    names: ["c9"],
    stats: stats.scope("cluster.c9"),
    validateAndApply: (u) => {
      eds9.push(u.version);
      return Promise.resolve(undefined);
    },
  });
  try {
    await server.nthRequest(4);
    const s1 = server.requests();
    assert.deepEqual(s1.map((r) => r.req.type_url), [CDS, EDS, LDS, RDS]);
    assert.ok(s1.every((r) => r.method.endsWith("/StreamAggregatedResources") && r.stream === s1[0].stream));
    assert.ok(s1.every((r) => r.req.node?.id === "node-1"), "node on every request by default");
    assert.deepEqual(s1[1].req.resource_names, ["c1", "c9"]);
    assert.deepEqual(s1[3].req.resource_names, ["routes-1"]);
    const st = s1[0].stream;

    await server.respond(st, CDS, "c-v1", "1", [cluster("c1")]);
    await server.respond(st, EDS, "e-v1", "2", [{ json: { "@type": EDS, cluster_name: "c1" } }]);
    await server.respond(st, RDS, "r-v1", "3", [{ json: { "@type": RDS, name: "routes-1" } }]);
    await server.nthRequest(7);
    assert.deepEqual(server.requests().slice(4).map((r) => [r.req.type_url, r.req.version_info]), [
      [CDS, "c-v1"],
      [EDS, "e-v1"],
      [RDS, "r-v1"],
    ]);
    // RDS names changed: a request with the new names and the current version goes out at once
    assert.deepEqual(applied.eds, ["e-v1"]);
    assert.deepEqual(eds9, [], "a response without c9 is not c9's");
    rds.setNames(["routes-1", "routes-2"]);
    const names = await server.nthRequest(8);
    assert.deepEqual(names.req.resource_names, ["routes-1", "routes-2"]);
    assert.equal(names.req.version_info, "r-v1");

    const port = server.port;
    await server.kill();
    await waitFor("disconnected", () => stats.gauge("control_plane.connected_state").value === 0);
    await waitFor("a failure counted", () => stats.counter("cluster_manager.cds.update_failure").value >= 1);
    assert.equal(applied.cds.length, 1, "the last good config stays");

    server = await XdsServer.start(port);
    const r1 = await server.nthRequest(4);
    const s2 = server.requests();
    assert.deepEqual(s2.map((r) => r.req.type_url), [CDS, EDS, LDS, RDS]);
    assert.deepEqual(s2.map((r) => r.req.version_info), ["c-v1", "e-v1", undefined, "r-v1"]);
    assert.ok(s2.every((r) => r.req.response_nonce === undefined), "no nonce on a new stream");
    assert.deepEqual(s2[3].req.resource_names, ["routes-1", "routes-2"]);
    assert.equal(stats.gauge("control_plane.connected_state").value, 1);

    await server.respond(r1.stream, CDS, "c-v2", "a", [cluster("c1"), cluster("c2")]);
    const ack = await server.nthRequest(5);
    assert.equal(ack.req.version_info, "c-v2");
    assert.equal(ack.req.response_nonce, "a");
    assert.deepEqual(applied.cds, ["c-v1", "c-v2"]);
  } finally {
    await client.close();
    await server.stop();
  }
});

Deno.test("gRPC: connect refused is retried with back-off; a response over the size limit fails the stream", async () => {
  // reserve a port, then free it: nothing listens there yet
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const stats = new StatsStore();
  let server: XdsServer | undefined;
  const sub = new Subscription({
    typeUrl: CDS,
    stats: stats.scope("cluster_manager.cds"),
    clock: systemClock,
    validateAndApply: () => Promise.resolve(undefined),
  });
  const t = grpcTransportFactory(
    deps(() => server ?? ({ port } as XdsServer), stats, { maxMessageBytes: 200 }),
  )(sub, api("GRPC"));
  t.start();
  try {
    await waitFor("two failures", () => stats.counter("cluster_manager.cds.update_failure").value >= 2);
    assert.equal(stats.gauge("control_plane.connected_state").value, 0);
    server = await XdsServer.start(port);
    const first = await server.nthRequest(1);
    const failures = stats.counter("cluster_manager.cds.update_failure").value;
    const big = Array.from({ length: 20 }, (_, i) => cluster(`cluster-with-a-long-name-${i}`));
    await server.respond(first.stream, CDS, "v1", "n1", big);
    await waitFor(
      "the stream to fail",
      () => stats.counter("cluster_manager.cds.update_failure").value > failures,
    );
    assert.equal(sub.version, "");
    // a new stream follows
    const again = await server.nthRequest(2);
    assert.notEqual(again.stream, first.stream);
    assert.equal(again.req.response_nonce, undefined);
  } finally {
    await t.close();
    await server?.stop();
  }
});

Deno.test("DELTA_GRPC: CDS wildcard and EDS names, subscribe/unsubscribe, removed_resources, initial versions", async () => {
  let server = await XdsServer.start();
  const stats = new StatsStore();
  const cds: XdsUpdate[] = [];
  const eds: XdsUpdate[] = [];
  const dynamic = dynamicResourcesSchema.parse({
    cds_config: { api_config_source: apiJson("DELTA_GRPC"), initial_fetch_timeout: "0s" },
  });
  const d = deps(() => server, stats);
  const client = new XdsClient(dynamic, {
    node: d.node,
    stats,
    resolveCluster: d.resolveCluster,
    clusters: {
      validateAndApply: (u) => {
        cds.push(u);
        return Promise.resolve(u.resources.has("bad") ? "bad cluster" : undefined);
      },
    },
    grpcTransport: grpcTransportFactory(d),
  });
  const src = configSourceSchema.parse({
    api_config_source: apiJson("DELTA_GRPC"),
    initial_fetch_timeout: "0s",
  });
  client.start();
  const edsWatch = client.subscribe(EDS, src, {
    names: ["c1"],
    stats: stats.scope("cluster.c1"),
    validateAndApply: (u) => {
      eds.push(u);
      return Promise.resolve(undefined);
    },
  });
  const delta = (
    stream: number,
    type: string,
    v: string,
    nonce: string,
    resources: Json[],
    removed: string[] = [],
  ) =>
    server.send({
      cmd: "delta",
      stream,
      response: { system_version_info: v, type_url: type, nonce, resources, removed_resources: removed },
    });
  const cla = (name: string, version: string) => ({
    name,
    version,
    json: { "@type": EDS, cluster_name: name },
  });
  const cl = (name: string, version: string) => ({ name, version, ...cluster(name) });
  try {
    const c1 = await server.nthRequest(1, { type: CDS });
    assert.equal(c1.method, "/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters");
    assert.equal(c1.req.resource_names_subscribe, undefined, "wildcard");
    assert.equal(c1.req.node.id, "node-1");
    const e1 = await server.nthRequest(1, { type: EDS });
    assert.equal(e1.method, "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints");
    assert.deepEqual(e1.req.resource_names_subscribe, ["c1"]);

    await delta(c1.stream, CDS, "s1", "d1", [cl("a", "1"), cl("b", "1")]);
    const c2 = await server.nthRequest(2, { type: CDS });
    assert.equal(c2.req.response_nonce, "d1");
    assert.equal(c2.req.error_detail, undefined);
    assert.deepEqual([...cds[0].resources.keys()], ["a", "b"]);
    assert.deepEqual(cds[0].removed, []);

    await delta(c1.stream, CDS, "s2", "d2", [cl("b", "2")], ["a"]);
    await server.nthRequest(3, { type: CDS });
    assert.deepEqual([...cds[1].resources.keys()], ["b"]);
    assert.deepEqual(cds[1].removed, ["a"]);

    await delta(c1.stream, CDS, "s3", "d3", [cl("bad", "1")]);
    const nack = await server.nthRequest(4, { type: CDS });
    assert.equal(nack.req.response_nonce, "d3");
    assert.equal(nack.req.error_detail.message, "bad cluster");

    // EDS: names added and removed go out as subscribe / unsubscribe
    await delta(e1.stream, EDS, "e1", "x1", [cla("c1", "7")]);
    await server.nthRequest(2, { type: EDS });
    edsWatch.setNames(["c1", "c2"]);
    const e3 = await server.nthRequest(3, { type: EDS });
    assert.deepEqual(e3.req.resource_names_subscribe, ["c2"]);
    assert.equal(e3.req.resource_names_unsubscribe, undefined);
    edsWatch.setNames(["c2"]);
    const e4 = await server.nthRequest(4, { type: EDS });
    assert.deepEqual(e4.req.resource_names_unsubscribe, ["c1"]);
    await delta(e1.stream, EDS, "e2", "x2", [cla("c2", "1")]);
    await server.nthRequest(5, { type: EDS });
    assert.deepEqual([...eds[1].resources.keys()], ["c2"]);

    // a new stream tells the server what is held
    const port = server.port;
    await server.kill();
    await waitFor("disconnected", () => stats.gauge("control_plane.connected_state").value === 0);
    server = await XdsServer.start(port);
    const c5 = await server.nthRequest(1, { type: CDS });
    assert.deepEqual(c5.req.initial_resource_versions, { b: "2" });
    assert.equal(c5.req.response_nonce, undefined);
    const e5 = await server.nthRequest(1, { type: EDS });
    assert.deepEqual(e5.req.resource_names_subscribe, ["c2"]);
    assert.deepEqual(e5.req.initial_resource_versions, { c2: "1" });
  } finally {
    await client.close();
    await server.stop();
  }
});

Deno.test("gRPC: a grpc-status ends the stream and a new one follows; rate_limit_settings pace requests", async () => {
  const server = await XdsServer.start();
  const stats = new StatsStore();
  const sub = new Subscription({
    typeUrl: EDS,
    names: ["c1"],
    stats: stats.scope("cluster.c1"),
    clock: systemClock,
    validateAndApply: () => Promise.resolve(undefined),
  });
  const t = grpcTransportFactory(deps(() => server, stats))(
    sub,
    api("GRPC", { rate_limit_settings: { max_tokens: 1, fill_rate: 5 } }),
  );
  t.start();
  try {
    const first = await server.nthRequest(1);
    assert.equal(first.method, "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints");
    assert.deepEqual(first.req.resource_names, ["c1"]);
    await server.respond(first.stream, EDS, "v1", "n1", [{ json: { "@type": EDS, cluster_name: "c1" } }]);
    const ack = await server.nthRequest(2);
    const gap = Date.now();
    sub.setNames(["c1", "c2"]);
    t.requestNow();
    const names = await server.nthRequest(3);
    assert.deepEqual(names.req.resource_names, ["c1", "c2"]);
    assert.ok(Date.now() - gap >= 100, "one token per 200 ms after the bucket is empty");
    assert.equal(ack.req.version_info, "v1");

    await server.send({ cmd: "end", stream: first.stream, code: 13, details: "control plane bug" });
    const again = await server.nthRequest(4);
    assert.notEqual(again.stream, first.stream);
    assert.equal(again.req.version_info, "v1");
    assert.equal(again.req.response_nonce, undefined);
    assert.deepEqual(again.req.resource_names, ["c1", "c2"]);
    assert.equal(stats.counter("cluster.c1.update_failure").value, 1);
    // names change before anything arrives on the new stream: no stale nonce from the old one
    sub.setNames(["c2"]);
    t.requestNow();
    const fresh = await server.nthRequest(5);
    assert.equal(fresh.req.response_nonce, undefined);
    assert.deepEqual(fresh.req.resource_names, ["c2"]);
  } finally {
    await t.close();
    await server.stop();
  }
});

Deno.test("gRPC stream client: a reader that lags holds the window; every large message still arrives in order", async () => {
  const server = await XdsServer.start();
  const call = await openGrpcStream(
    { host: "127.0.0.1", port: server.port },
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    { readHighWatermark: 1, h2: { initial_stream_window_size: 65535 } },
  );
  try {
    assert.ok(call.write(encodeDiscoveryRequest({ type_url: CDS, node: { id: "raw" } })));
    const req = await server.nthRequest(1);
    assert.equal(req.req.node.id, "raw");
    for (let i = 0; i < 3; i++) {
      await server.respond(req.stream, CDS, `v${i}`, `n${i}`, [cluster(`${i}`.repeat(200_000))]);
    }
    // nothing is read until the server has had time to fill the window
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) {
      const m = await call.read();
      assert.ok(m);
      const res = decodeDiscoveryResponse(m);
      assert.equal(res.version_info, `v${i}`);
      assert.ok(res.resources[0].value.length > 200_000);
    }
    await server.send({ cmd: "end", stream: req.stream, code: 0 });
    assert.equal(await call.read(), null, "status OK ends the call");
    assert.equal(call.write(new Uint8Array(1)), false);
  } finally {
    await call.close();
    await server.stop();
  }
});

Deno.test("DELTA_GRPC ADS: several watches of one type share the stream; responses split; NACK if any rejects", async () => {
  let server = await XdsServer.start();
  const stats = new StatsStore();
  const dynamic = dynamicResourcesSchema.parse({ ads_config: apiJson("DELTA_GRPC") });
  const d = deps(() => server, stats, { adsConfig: dynamic.ads_config });
  const client = new XdsClient(dynamic, {
    node: d.node,
    stats,
    resolveCluster: d.resolveCluster,
    grpcTransport: grpcTransportFactory(d),
  });
  const ads = configSourceSchema.parse({ ads: {}, initial_fetch_timeout: "0s" });
  const got: Record<string, XdsUpdate[]> = { w1: [], w2: [], w3: [] };
  const watch = (key: string, name: string) =>
    client.subscribe(RDS, ads, {
      names: [name],
      stats: stats.scope(`http.x.rds.${key}`),
      validateAndApply: (u) => {
        got[key].push(u);
        const bad = [...u.resources.values()].some((r) => (r as Json).virtual_hosts?.[0]?.name === "bad");
        return Promise.resolve(bad ? `RouteConfiguration ${[...u.resources.keys()]}: bad` : undefined);
      },
    });
  const rc = (name: string, version: string, vh = "any") => ({
    name,
    version,
    json: { "@type": RDS, name, virtual_hosts: [{ name: vh, domains: ["*"] }] },
  });
  const delta = (stream: number, v: string, nonce: string, resources: Json[], removed: string[] = []) =>
    server.send({
      cmd: "delta",
      stream,
      response: { system_version_info: v, type_url: RDS, nonce, resources, removed_resources: removed },
    });
  const w1 = watch("w1", "r1");
  const w2 = watch("w2", "r2"); // a second watch of the type: no "already watched"
  try {
    await waitFor("r1 and r2 subscribed", () => {
      const subscribed = server.requests().flatMap((r) => r.req.resource_names_subscribe ?? []);
      return subscribed.includes("r1") && subscribed.includes("r2");
    });
    const reqs = server.requests();
    assert.ok(
      reqs.every((r) => r.method.endsWith("/DeltaAggregatedResources") && r.stream === reqs[0].stream),
    );
    assert.equal(server.streams().length, 1);
    const st = reqs[0].stream;
    let n = reqs.length;

    // one response with both: each watch gets only its own; one ACK
    await delta(st, "s1", "d1", [rc("r1", "1"), rc("r2", "1")]);
    const ack = await server.nthRequest(++n);
    assert.equal(ack.req.response_nonce, "d1");
    assert.equal(ack.req.error_detail, undefined);
    assert.deepEqual(got.w1.map((u) => [...u.resources.keys()]), [["r1"]]);
    assert.deepEqual(got.w2.map((u) => [...u.resources.keys()]), [["r2"]]);

    // a change of r2 reaches only r2's watch
    await delta(st, "s2", "d2", [rc("r2", "2", "v2")]);
    assert.equal((await server.nthRequest(++n)).req.response_nonce, "d2");
    assert.equal(got.w1.length, 1);
    assert.equal(got.w2.length, 2);
    assert.equal(w2.subscription.typeUrl, RDS);

    // w1 rejects its part: the response is NACKed with its reason; w2's part applies
    await delta(st, "s3", "d3", [rc("r1", "3", "bad"), rc("r2", "3", "v3")]);
    const nack = await server.nthRequest(++n);
    assert.equal(nack.req.response_nonce, "d3");
    assert.equal(nack.req.error_detail.code, NACK_CODE);
    assert.equal(nack.req.error_detail.message, "RouteConfiguration r1: bad");
    assert.equal(stats.counter("http.x.rds.w1.update_rejected").value, 1);
    assert.equal(stats.counter("http.x.rds.w2.update_success").value, 3);
    assert.equal(stats.counter("http.x.rds.w2.update_rejected").value, 0);

    // removed_resources go to the watch that held the name
    await delta(st, "s4", "d4", [], ["r2"]);
    const ack4 = await server.nthRequest(++n);
    assert.equal(ack4.req.error_detail, undefined);
    assert.deepEqual(got.w2.at(-1)!.removed, ["r2"]);
    assert.equal(got.w1.length, 2, "r1's watch is not told about r2");

    // a watch that leaves: its names are unsubscribed; a new watch of a name already held gets it at once
    await w2.close();
    const unsub = await server.nthRequest(++n);
    assert.deepEqual(unsub.req.resource_names_unsubscribe, ["r2"]);
    const before = server.requests().length;
    const w3 = watch("w3", "r1");
    await waitFor("w3 seeded from w1", () => got.w3.length === 1);
    assert.deepEqual([...got.w3[0].resources.keys()], ["r1"]);
    assert.equal((got.w3[0].resources.get("r1") as Json).virtual_hosts[0].name, "any", "w1's accepted copy");
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      server.requests().slice(before).every((r) => r.req.resource_names_subscribe === undefined),
      "r1 is subscribed already",
    );
    assert.equal(w3.subscription.typeUrl, RDS);

    // a new stream: every wanted name, and the versions held
    const port = server.port;
    await server.kill();
    await waitFor("disconnected", () => stats.gauge("control_plane.connected_state").value === 0);
    server = await XdsServer.start(port);
    const fresh = await server.nthRequest(1);
    assert.deepEqual(fresh.req.resource_names_subscribe, ["r1"]);
    assert.deepEqual(fresh.req.initial_resource_versions, { r1: "1" });
    assert.equal(fresh.req.response_nonce, undefined);
    assert.ok(stats.counter("http.x.rds.w1.update_failure").value >= 1);
    assert.ok(stats.counter("http.x.rds.w3.update_failure").value >= 1);
    await w1.close();
  } finally {
    await client.close();
    await server.stop();
  }
});
