/**
 * The control plane's gRPC xDS server on real sockets, served from a small in-test XdsSource: raw frames
 * (src/grpc/stream_client.ts) for the protocol's corners, nuncio's own xDS client (XdsClient over GrpcMux,
 * state of the world and delta) and @grpc/grpc-js with Envoy's protos as clients that are not this code.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { xxhash64String } from "../common/xxhash64.ts";
import { configSourceSchema, dynamicResourcesSchema } from "../config/config_source.ts";
import { GrpcStatus } from "../grpc/frame.ts";
import { GrpcServer } from "../grpc/server.ts";
import { type GrpcStreamCall, openGrpcStream } from "../grpc/stream_client.ts";
import { StatsStore } from "../stats/store.ts";
import { XdsClient } from "../xds/client.ts";
import {
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  type RawDeltaDiscoveryResponse,
  type RawDiscoveryResponse,
} from "../xds/codec/discovery.ts";
import { encodeAny } from "../xds/codec/encode.ts";
import type { JsonObject } from "../xds/codec/proto_json.ts";
import { grpcTransportFactory } from "../xds/grpc.ts";
import { TYPE_URLS, type XdsNode, type XdsUpdate } from "../xds/types.ts";
import type { MeshObserver, NodeInfo, ResourceEntry, XdsSource } from "./types.ts";
import { XDS_ADS_METHODS, XDS_TYPE_METHODS, XdsServer, type XdsServerOptions } from "./xds_server.ts";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;
const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.route;
const short = (t: string) => t.slice(t.lastIndexOf(".") + 1);

/** Resources per type as JSON, the same for every node; `notify` tells the server. */
class TestSource implements XdsSource {
  readonly changeListeners = new Set<(c: ReadonlySet<string> | null) => void>();
  readonly types = new Map<string, Map<string, JsonObject>>();
  fail = false;
  resolves = 0;

  set(type: string, name: string, json: JsonObject | undefined): this {
    let m = this.types.get(type);
    if (!m) this.types.set(type, m = new Map());
    if (json === undefined) m.delete(name);
    else m.set(name, json);
    return this;
  }
  notify(clusters: string[] | null): void {
    for (const l of this.changeListeners) l(clusters === null ? null : new Set(clusters));
  }
  entry(type: string, name: string): ResourceEntry {
    const json = this.types.get(type)!.get(name)!;
    return {
      version: xxhash64String(JSON.stringify(json)).toString(16),
      any: { type_url: type, value: encodeAny(type, json) },
    };
  }
  resolve(
    _node: NodeInfo,
    type: string,
    names: readonly string[] | null,
  ): Promise<Map<string, ResourceEntry>> {
    this.resolves++;
    if (this.fail) return Promise.reject(new Error("source down"));
    const out = new Map<string, ResourceEntry>();
    for (const n of this.types.get(type)?.keys() ?? []) {
      if (names === null || names.includes(n)) out.set(n, this.entry(type, n));
    }
    return Promise.resolve(out);
  }
}

/** Records every report as one line. */
class RecordingMesh implements MeshObserver {
  events: string[] = [];
  nodes: NodeInfo[] = [];
  connected(node: NodeInfo, stream: string, transport: string): void {
    this.nodes.push(node);
    this.events.push(`connected ${node.id} ${transport} ${stream}`);
  }
  disconnected(node: NodeInfo, stream: string): void {
    this.events.push(`disconnected ${node.id} ${stream}`);
  }
  sent(_n: NodeInfo, type: string, version: string): void {
    this.events.push(`sent ${short(type)} ${version}`);
  }
  acked(_n: NodeInfo, type: string, version: string): void {
    this.events.push(`acked ${short(type)} ${version}`);
  }
  nacked(_n: NodeInfo, type: string, version: string, message: string): void {
    this.events.push(`nacked ${short(type)} ${version} ${message}`);
  }
  has(prefix: string): boolean {
    return this.events.some((e) => e.startsWith(prefix));
  }
}

const cluster = (name: string, timeout = "1s"): JsonObject => ({ name, connect_timeout: timeout });
const cla = (name: string, ip = "10.0.0.1"): JsonObject => ({
  cluster_name: name,
  endpoints: [{
    lb_endpoints: [{ endpoint: { address: { socket_address: { address: ip, port_value: 80 } } } }],
  }],
});
const listener = (name: string, port = 10000): JsonObject => ({
  name,
  address: { socket_address: { address: "0.0.0.0", port_value: port } },
});
const routes = (name: string, domain = "*"): JsonObject => ({
  name,
  virtual_hosts: [{ name: "vh", domains: [domain] }],
});

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server on a free port with a fresh source, mesh and stats. */
async function start(opts: XdsServerOptions = {}) {
  const source = new TestSource();
  const mesh = new RecordingMesh();
  const store = new StatsStore();
  const xds = new XdsServer(source, mesh, store.scope("control_plane.xds"), { coalesceMs: 5, ...opts });
  const server = new GrpcServer();
  xds.registerOn(server);
  const port = server.listen({ port: 0 }).port;
  await Promise.resolve();
  return {
    source,
    mesh,
    store,
    xds,
    port,
    counter: (n: string) => store.counter(`control_plane.xds.${n}`).value,
    async [Symbol.asyncDispose]() {
      await xds.close();
      await server.shutdown(1000);
    },
  };
}

/** Reads a raw call's messages in the background. */
class Reader<T> {
  readonly msgs: T[] = [];
  error: Error | undefined;
  readonly done: Promise<void>;
  constructor(readonly call: GrpcStreamCall, decode: (b: Uint8Array) => T) {
    this.done = (async () => {
      try {
        for (;;) {
          const m = await call.read();
          if (m === null) return;
          this.msgs.push(decode(m));
        }
      } catch (e) {
        this.error = e as Error;
      }
    })();
  }
  async nth(i: number): Promise<T> {
    await waitFor(`message ${i}`, () => this.msgs.length >= i || this.error !== undefined);
    if (this.msgs.length < i) throw new Error(`stream ended: ${this.error?.message}`);
    return this.msgs[i - 1];
  }
  async ended(): Promise<number | undefined> {
    await waitFor("the stream to end", () => this.error !== undefined);
    return (this.error as { status?: number } | undefined)?.status;
  }
  async close(): Promise<void> {
    await this.call.close();
    await this.done;
  }
}

async function sotw(port: number, path: string = XDS_ADS_METHODS[0]): Promise<Reader<RawDiscoveryResponse>> {
  return new Reader(await openGrpcStream({ host: "127.0.0.1", port }, path), decodeDiscoveryResponse);
}
async function delta(
  port: number,
  path: string = XDS_ADS_METHODS[1],
): Promise<Reader<RawDeltaDiscoveryResponse>> {
  return new Reader(await openGrpcStream({ host: "127.0.0.1", port }, path), decodeDeltaDiscoveryResponse);
}

const NODE: XdsNode = {
  id: "n1",
  cluster: "svc",
  user_agent_name: "envoy",
  user_agent_version: "1.30.0",
  locality: { zone: "z1" },
};

Deno.test("SotW ADS: subscribe, ACK waits, change pushed to its node cluster only, NACK not resent, stale nonce", async () => {
  await using t = await start();
  t.source.set(CDS, "a", cluster("a")).set(CDS, "b", cluster("b"));
  const r = await sotw(t.port);
  try {
    r.call.write(encodeDiscoveryRequest({ node: NODE, type_url: CDS }));
    const r1 = await r.nth(1);
    assert.equal(r1.type_url, CDS);
    assert.equal(r1.resources.length, 2);
    assert.match(r1.version_info, /^[0-9a-f]{16}$/);
    assert.deepEqual(t.mesh.nodes[0], { id: "n1", cluster: "svc", userAgent: "envoy/1.30.0", zone: "z1" });
    assert.match(t.mesh.events[0], /^connected n1 ads /);
    assert.ok(t.mesh.has(`sent Cluster ${r1.version_info}`));

    r.call.write(
      encodeDiscoveryRequest({ type_url: CDS, version_info: r1.version_info, response_nonce: r1.nonce }),
    );
    await waitFor("the ACK", () => t.mesh.has(`acked Cluster ${r1.version_info}`));
    // a change for another node cluster, or none, pushes nothing
    t.source.set(CDS, "c", cluster("c"));
    t.source.notify(["other"]);
    await sleep(60);
    assert.equal(r.msgs.length, 1);
    t.source.notify(["svc"]);
    const r2 = await r.nth(2);
    assert.equal(r2.resources.length, 3);
    assert.notEqual(r2.version_info, r1.version_info);

    // the old nonce with new names is stale: ignored
    r.call.write(encodeDiscoveryRequest({
      type_url: CDS,
      resource_names: ["a"],
      version_info: r1.version_info,
      response_nonce: r1.nonce,
    }));
    await waitFor("stale counted", () => t.counter("stale_nonce") === 1);
    // NACK of r2: reported with the request's version, nothing resent, not even on a notification
    r.call.write(encodeDiscoveryRequest({
      type_url: CDS,
      version_info: r1.version_info,
      response_nonce: r2.nonce,
      error_detail: { code: 13, message: "cluster c: bad" },
    }));
    await waitFor("the NACK", () => t.mesh.has(`nacked Cluster ${r1.version_info} cluster c: bad`));
    t.source.notify(null);
    await sleep(60);
    assert.equal(r.msgs.length, 2);
    // a later change is sent
    t.source.set(CDS, "c", cluster("c", "2s"));
    t.source.notify(null);
    const r3 = await r.nth(3);
    assert.equal(r3.resources.length, 3);
    assert.notEqual(r3.version_info, r2.version_info);

    // another type on the same stream; named RDS with a name that does not exist answers what exists
    t.source.set(RDS, "r1", routes("r1"));
    r.call.write(encodeDiscoveryRequest({ type_url: RDS, resource_names: ["r1", "nope"] }));
    const r4 = await r.nth(4);
    assert.equal(r4.type_url, RDS);
    assert.equal(r4.resources.length, 1);
    // new names on an ACK are answered even when the version is the same
    r.call.write(encodeDiscoveryRequest({
      type_url: RDS,
      resource_names: ["nope", "r1", "zzz"],
      version_info: r4.version_info,
      response_nonce: r4.nonce,
    }));
    const r5 = await r.nth(5);
    assert.equal(r5.version_info, r4.version_info);
    assert.notEqual(r5.nonce, r4.nonce);
    assert.equal(t.counter("acks"), 2);
    assert.equal(t.counter("nacks"), 1);
    assert.equal(t.counter("responses"), 5);
    assert.equal(t.xds.streams, 1);
  } finally {
    await r.close();
  }
  await waitFor("disconnected", () => t.mesh.has("disconnected n1"));
  assert.equal(t.xds.streams, 0);
  assert.equal(t.store.gauge("control_plane.xds.streams_active").value, 0);
});

Deno.test("per-type services: another type, a malformed request and ADS without type_url end with INVALID_ARGUMENT", async () => {
  await using t = await start();
  t.source.set(CDS, "a", cluster("a"));
  const cds = await sotw(t.port, XDS_TYPE_METHODS[CDS][0]);
  const other = await sotw(t.port, XDS_TYPE_METHODS[CDS][0]);
  const bad = await sotw(t.port);
  const untyped = await delta(t.port);
  const deltaOther = await delta(t.port, XDS_TYPE_METHODS[EDS][1]);
  try {
    cds.call.write(encodeDiscoveryRequest({ node: NODE, type_url: "" }));
    const r1 = await cds.nth(1);
    assert.equal(r1.type_url, CDS);
    assert.equal(r1.resources.length, 1);
    other.call.write(encodeDiscoveryRequest({ node: NODE, type_url: LDS }));
    assert.equal(await other.ended(), GrpcStatus.INVALID_ARGUMENT);
    bad.call.write(new Uint8Array([0xff, 0xff, 0xff]));
    assert.equal(await bad.ended(), GrpcStatus.INVALID_ARGUMENT);
    untyped.call.write(encodeDeltaDiscoveryRequest({ node: NODE, type_url: "" }));
    assert.equal(await untyped.ended(), GrpcStatus.INVALID_ARGUMENT);
    deltaOther.call.write(encodeDeltaDiscoveryRequest({ node: NODE, type_url: CDS }));
    assert.equal(await deltaOther.ended(), GrpcStatus.INVALID_ARGUMENT);
    assert.equal(t.counter("bad_requests"), 4);
  } finally {
    await Promise.all([cds, other, bad, untyped, deltaOther].map((r) => r.close()));
  }
});

Deno.test("ADS through nuncio's XdsClient: one change to CDS+EDS+LDS+RDS arrives in push order", async () => {
  await using t = await start();
  t.source.set(CDS, "c1", cluster("c1")).set(EDS, "c1", cla("c1")).set(LDS, "l1", listener("l1"))
    .set(RDS, "r1", routes("r1"));
  const stats = new StatsStore();
  const applied: string[] = [];
  const ok = (u: XdsUpdate) => {
    applied.push(`${short(u.typeUrl)}:${[...u.resources.keys()].join(",")}`);
    return Promise.resolve(undefined);
  };
  const dynamic = dynamicResourcesSchema.parse({
    lds_config: { ads: {}, initial_fetch_timeout: "0s" },
    cds_config: { ads: {}, initial_fetch_timeout: "0s" },
    ads_config: { api_type: "GRPC", grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }] },
  });
  const node = { id: "proxy-1", cluster: "svc" };
  const resolveCluster = (n: string) => n === "xds" ? { host: "127.0.0.1", port: t.port } : undefined;
  const client = new XdsClient(dynamic, {
    node,
    stats,
    resolveCluster,
    listeners: { validateAndApply: ok },
    clusters: { validateAndApply: ok },
    grpcTransport: grpcTransportFactory({ node, resolveCluster, stats, adsConfig: dynamic.ads_config }),
  });
  const ads = configSourceSchema.parse({ ads: {}, initial_fetch_timeout: "0s" });
  try {
    client.start();
    client.subscribe(RDS, ads, { names: ["r1"], stats: stats.scope("rds"), validateAndApply: ok });
    client.subscribe(EDS, ads, { names: ["c1"], stats: stats.scope("eds"), validateAndApply: ok });
    await waitFor("four ACKs", () => t.mesh.events.filter((e) => e.startsWith("acked")).length === 4);
    assert.deepEqual([...applied].sort(), [
      "Cluster:c1",
      "ClusterLoadAssignment:c1",
      "Listener:l1",
      "RouteConfiguration:r1",
    ]);
    applied.length = 0;
    const before = t.counter("responses");
    // one change touching every type, told once: make before break
    t.source.set(RDS, "r1", routes("r1", "example.com")).set(LDS, "l2", listener("l2", 10001))
      .set(EDS, "c1", cla("c1", "10.0.0.2")).set(CDS, "c2", cluster("c2"));
    t.source.notify(["svc"]);
    await waitFor("four updates", () => applied.length === 4);
    assert.deepEqual(applied, [
      "Cluster:c1,c2",
      "ClusterLoadAssignment:c1",
      "Listener:l1,l2",
      "RouteConfiguration:r1",
    ]);
    await waitFor("eight ACKs", () => t.mesh.events.filter((e) => e.startsWith("acked")).length === 8);
    assert.equal(t.counter("responses"), before + 4);
    assert.equal(t.counter("nacks"), 0);
    assert.ok(t.mesh.has("connected proxy-1 ads"));
  } finally {
    await client.close();
  }
  await waitFor("disconnected", () => t.mesh.has("disconnected proxy-1"));
});

Deno.test("delta ADS: initial versions honoured, only changes sent, removals, unsubscribe, wildcard, ACK/NACK", async () => {
  await using t = await start();
  t.source.set(CDS, "a", cluster("a")).set(CDS, "b", cluster("b"));
  t.source.set(EDS, "c1", cla("c1")).set(EDS, "c2", cla("c2"));
  const r = await delta(t.port);
  try {
    // CDS: wildcard by an empty first request; holds a at its current version and a cluster that is gone
    r.call.write(encodeDeltaDiscoveryRequest({
      node: NODE,
      type_url: CDS,
      initial_resource_versions: { a: t.source.entry(CDS, "a").version, gone: "x" },
    }));
    const d1 = await r.nth(1);
    assert.deepEqual(d1.resources.map((x) => x.name), ["b"]);
    assert.deepEqual(d1.removed_resources, ["gone"]);
    assert.match(d1.system_version_info, /^[0-9a-f]{16}$/);
    assert.match(t.mesh.events[0], /^connected n1 delta-ads /);
    r.call.write(encodeDeltaDiscoveryRequest({ type_url: CDS, response_nonce: d1.nonce }));
    await waitFor("ACK", () => t.mesh.has(`acked Cluster ${d1.system_version_info}`));

    // only the changed cluster, then a removal
    t.source.set(CDS, "a", cluster("a", "3s"));
    t.source.notify(null);
    const d2 = await r.nth(2);
    assert.deepEqual(d2.resources.map((x) => x.name), ["a"]);
    assert.deepEqual(d2.removed_resources, []);
    t.source.set(CDS, "b", undefined);
    t.source.notify(null);
    const d3 = await r.nth(3);
    assert.deepEqual(d3.resources, []);
    assert.deepEqual(d3.removed_resources, ["b"]);

    // EDS by name; a stale nonce still subscribes; NACK reported with the nonce's system version
    r.call.write(encodeDeltaDiscoveryRequest({
      type_url: EDS,
      resource_names_subscribe: ["c1", "c2", "c3"],
      response_nonce: "no-such-nonce",
    }));
    const d4 = await r.nth(4);
    assert.equal(d4.type_url, EDS);
    assert.deepEqual(d4.resources.map((x) => x.name), ["c1", "c2"]);
    assert.equal(t.counter("stale_nonce"), 1);
    r.call.write(encodeDeltaDiscoveryRequest({
      type_url: EDS,
      response_nonce: d4.nonce,
      error_detail: { code: 13, message: "bad endpoints" },
    }));
    await waitFor(
      "NACK",
      () => t.mesh.has(`nacked ClusterLoadAssignment ${d4.system_version_info} bad endpoints`),
    );
    // unsubscribed c2 changes: nothing; c1 changes: only c1; c3 appears: sent
    const requests = t.counter("requests");
    r.call.write(encodeDeltaDiscoveryRequest({ type_url: EDS, resource_names_unsubscribe: ["c2"] }));
    await waitFor("the unsubscribe", () => t.counter("requests") > requests);
    t.source.set(EDS, "c2", cla("c2", "10.0.0.9"));
    t.source.notify(null);
    await sleep(60);
    assert.equal(r.msgs.length, 4);
    t.source.set(EDS, "c1", cla("c1", "10.0.0.2")).set(EDS, "c3", cla("c3"));
    t.source.notify(null);
    const d5 = await r.nth(5);
    assert.deepEqual(d5.resources.map((x) => x.name), ["c1", "c3"]);
    // a subscribed name that stops resolving is removed; subscribing again resends
    t.source.set(EDS, "c3", undefined);
    t.source.notify(null);
    const d6 = await r.nth(6);
    assert.deepEqual(d6.removed_resources, ["c3"]);
    r.call.write(encodeDeltaDiscoveryRequest({ type_url: EDS, resource_names_subscribe: ["c1"] }));
    const d7 = await r.nth(7);
    assert.deepEqual(d7.resources.map((x) => x.name), ["c1"]);

    // LDS: an explicit "*" subscription, then "*" unsubscribed and a name subscribed
    t.source.set(LDS, "l1", listener("l1")).set(LDS, "l2", listener("l2", 10001));
    r.call.write(encodeDeltaDiscoveryRequest({ type_url: LDS, resource_names_subscribe: ["*"] }));
    const d8 = await r.nth(8);
    assert.deepEqual(d8.resources.map((x) => x.name), ["l1", "l2"]);
    r.call.write(encodeDeltaDiscoveryRequest({
      type_url: LDS,
      resource_names_subscribe: ["l1"],
      resource_names_unsubscribe: ["*"],
    }));
    const d9 = await r.nth(9);
    assert.deepEqual(d9.resources.map((x) => x.name), ["l1"], "subscribing again resends");
    t.source.set(LDS, "l2", listener("l2", 10002));
    t.source.notify(null);
    await sleep(60);
    assert.equal(r.msgs.length, 9, "l2 is no longer wanted");
  } finally {
    await r.close();
  }
});

Deno.test("DELTA_GRPC through nuncio's client: per-type DeltaClusters and DeltaEndpoints, removal applied", async () => {
  await using t = await start();
  t.source.set(CDS, "a", cluster("a")).set(CDS, "b", cluster("b")).set(EDS, "a", cla("a"));
  const stats = new StatsStore();
  const updates: XdsUpdate[] = [];
  const ok = (u: XdsUpdate) => {
    updates.push(u);
    return Promise.resolve(undefined);
  };
  const api = { api_type: "DELTA_GRPC", grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }] };
  const dynamic = dynamicResourcesSchema.parse({
    cds_config: { api_config_source: api, initial_fetch_timeout: "0s" },
  });
  const node = { id: "proxy-2", cluster: "svc" };
  const resolveCluster = (n: string) => n === "xds" ? { host: "127.0.0.1", port: t.port } : undefined;
  const client = new XdsClient(dynamic, {
    node,
    stats,
    resolveCluster,
    clusters: { validateAndApply: ok },
    grpcTransport: grpcTransportFactory({ node, resolveCluster, stats }),
  });
  try {
    client.start();
    client.subscribe(EDS, dynamic.cds_config!, {
      names: ["a"],
      stats: stats.scope("eds"),
      validateAndApply: ok,
    });
    await waitFor("CDS and EDS", () => updates.length === 2);
    assert.deepEqual(
      updates.map((u) => `${short(u.typeUrl)}:${[...u.resources.keys()].sort()}`).sort(),
      ["Cluster:a,b", "ClusterLoadAssignment:a"],
    );
    assert.ok(t.mesh.has("connected proxy-2 delta-grpc"));
    t.source.set(CDS, "b", undefined).set(CDS, "a", cluster("a", "5s"));
    t.source.notify(null);
    await waitFor("the removal", () => updates.length === 3);
    assert.deepEqual([...updates[2].resources.keys()], ["a"]);
    assert.deepEqual(updates[2].removed, ["b"]);
    await waitFor("three ACKs", () => t.mesh.events.filter((e) => e.startsWith("acked")).length === 3);
  } finally {
    await client.close();
  }
});

Deno.test("limits and life: maxStreams refused, a failing source keeps state, close ends streams UNAVAILABLE", async () => {
  await using t = await start({ maxStreams: 1, maxNamesPerStream: 2 });
  t.source.set(CDS, "a", cluster("a"));
  const r = await sotw(t.port);
  const refused = await sotw(t.port, XDS_TYPE_METHODS[CDS][0]);
  try {
    assert.equal(await refused.ended(), GrpcStatus.RESOURCE_EXHAUSTED);
    assert.equal(t.counter("streams_refused"), 1);
    t.source.fail = true;
    r.call.write(encodeDiscoveryRequest({ type_url: CDS })); // no node: "?"
    await waitFor("a resolve", () => t.source.resolves === 1);
    await sleep(30);
    assert.equal(r.msgs.length, 0);
    assert.match(t.mesh.events[0], /^connected \? ads/);
    t.source.fail = false;
    t.source.notify([""]);
    const r1 = await r.nth(1);
    assert.equal(r1.resources.length, 1);
    // a node on a later request replaces "?"; too many names end the stream
    r.call.write(encodeDiscoveryRequest({ node: NODE, type_url: RDS, resource_names: ["x", "y", "z"] }));
    assert.equal(await r.ended(), GrpcStatus.RESOURCE_EXHAUSTED);
    assert.ok(t.mesh.has("disconnected ?") && t.mesh.has("connected n1 ads"));
    const r2 = await sotw(t.port);
    r2.call.write(encodeDiscoveryRequest({ node: NODE, type_url: CDS }));
    await r2.nth(1);
    await t.xds.close();
    assert.equal(await r2.ended(), GrpcStatus.UNAVAILABLE);
    await r2.close();
    assert.equal(t.xds.streams, 0);
  } finally {
    await Promise.all([r.close(), refused.close()]);
  }
});

// deno-lint-ignore no-explicit-any -- grpc-js clients and messages are untyped here
type Any = any;

/** Envoy's discovery services for @grpc/grpc-js, from @grpc/grpc-js-xds's bundled protos. */
function envoyServices(): Any {
  const pkg = new URL(import.meta.resolve("@grpc/grpc-js-xds/package.json")).pathname;
  const deps = pkg.replace(/package\.json$/, "deps/");
  const def = protoLoader.loadSync(
    ["envoy/service/discovery/v3/ads.proto", "envoy/service/cluster/v3/cds.proto"],
    {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
      oneofs: false,
      includeDirs: [`${deps}envoy-api/`, `${deps}googleapis/`, `${deps}protoc-gen-validate/`, `${deps}xds/`],
    },
  );
  return grpc.loadPackageDefinition(def).envoy;
}

Deno.test("@grpc/grpc-js client: ADS state of the world, ACK, push; CDS service refuses LDS", async () => {
  await using t = await start();
  t.source.set(CDS, "a", cluster("a"));
  const envoy = envoyServices();
  const target = `127.0.0.1:${t.port}`;
  const ads = new envoy.service.discovery.v3.AggregatedDiscoveryService(
    target,
    grpc.credentials.createInsecure(),
  );
  const cds = new envoy.service.cluster.v3.ClusterDiscoveryService(target, grpc.credentials.createInsecure());
  const got: Any[] = [];
  const errors: Any[] = [];
  const call = ads.StreamAggregatedResources();
  call.on("data", (m: Any) => got.push(m));
  call.on("error", (e: Any) => errors.push(e));
  const wrong = cds.StreamClusters();
  wrong.on("data", () => {});
  wrong.on("error", (e: Any) => errors.push(e));
  try {
    call.write({ node: { id: "grpc-js", cluster: "svc" }, type_url: CDS });
    await waitFor("a response", () => got.length === 1);
    assert.equal(got[0].type_url, CDS);
    assert.equal(got[0].resources.length, 1);
    assert.equal(got[0].resources[0].type_url, CDS);
    call.write({ type_url: CDS, version_info: got[0].version_info, response_nonce: got[0].nonce });
    await waitFor("the ACK", () => t.mesh.has(`acked Cluster ${got[0].version_info}`));
    t.source.set(CDS, "b", cluster("b"));
    t.source.notify(["svc"]);
    await waitFor("the push", () => got.length === 2);
    assert.equal(got[1].resources.length, 2);

    wrong.write({ node: { id: "grpc-js-2" }, type_url: LDS });
    await waitFor("the refusal", () => errors.length === 1);
    assert.equal(errors[0].code, grpc.status.INVALID_ARGUMENT);
  } finally {
    call.cancel();
    wrong.cancel();
    ads.close();
    cds.close();
  }
  await waitFor("streams closed", () => t.xds.streams === 0);
});

Deno.test("a client that does not read is cut once maxPendingBytes are unsent", async () => {
  await using t = await start({ maxPendingBytes: 1000 });
  const long = "x".repeat(200);
  for (let i = 0; i < 200; i++) t.source.set(CDS, `${long}-${i}`, cluster(`${long}-${i}`));
  const call = await openGrpcStream({ host: "127.0.0.1", port: t.port }, XDS_ADS_METHODS[0], {
    readHighWatermark: 1,
    h2: { initial_stream_window_size: 65535, initial_connection_window_size: 65535 },
  });
  try {
    call.write(encodeDiscoveryRequest({ node: NODE, type_url: CDS }));
    for (let i = 1; i < 10 && t.counter("slow_clients") === 0; i++) {
      await waitFor("a response", () => t.counter("responses") >= i || t.counter("slow_clients") > 0);
      t.source.set(CDS, `${long}-0`, cluster(`${long}-0`, `${i + 1}s`));
      t.source.notify(null);
    }
    await waitFor("the cut", () => t.counter("slow_clients") === 1 && t.xds.streams === 0);
  } finally {
    await call.close();
  }
});
