/**
 * REST-JSON xDS from an XdsSource: the answers of `restDiscovery` (200, 304, 400, 404), that nuncio's own REST
 * client parses and applies the 200 body, and the whole poll loop (RestTransport over a real HTTP server that
 * calls restDiscovery) with its ACKs reported to the mesh.
 */
import assert from "node:assert/strict";
import { systemClock } from "../common/clock.ts";
import { xxhash64String } from "../common/xxhash64.ts";
import { StatsStore } from "../stats/store.ts";
import { encodeAny } from "../xds/codec/encode.ts";
import type { JsonObject } from "../xds/codec/proto_json.ts";
import { RestTransport } from "../xds/rest.ts";
import { Subscription } from "../xds/subscription.ts";
import { TYPE_URLS, type XdsUpdate } from "../xds/types.ts";
import { restDiscovery } from "./rest.ts";
import type { MeshObserver, NodeInfo, ResourceEntry, XdsSource } from "./types.ts";

const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.endpoint;

/** Resources per type as JSON, the same for every node. */
class TestSource implements XdsSource {
  readonly changeListeners = new Set<(c: ReadonlySet<string> | null) => void>();
  readonly types = new Map<string, Map<string, JsonObject>>();
  nodes: NodeInfo[] = [];

  set(type: string, name: string, json: JsonObject | undefined): this {
    let m = this.types.get(type);
    if (!m) this.types.set(type, m = new Map());
    if (json === undefined) m.delete(name);
    else m.set(name, json);
    return this;
  }
  resolve(
    node: NodeInfo,
    type: string,
    names: readonly string[] | null,
  ): Promise<Map<string, ResourceEntry>> {
    this.nodes.push(node);
    const out = new Map<string, ResourceEntry>();
    for (const [n, json] of this.types.get(type) ?? []) {
      if (names !== null && !names.includes(n)) continue;
      out.set(n, {
        version: xxhash64String(JSON.stringify(json)).toString(16),
        any: { type_url: type, value: encodeAny(type, json) },
      });
    }
    return Promise.resolve(out);
  }
}

class RecordingMesh implements MeshObserver {
  events: string[] = [];
  connected(node: NodeInfo, stream: string, transport: string): void {
    this.events.push(`connected ${node.id} ${transport} ${stream}`);
  }
  disconnected(node: NodeInfo, stream: string): void {
    this.events.push(`disconnected ${node.id} ${stream}`);
  }
  sent(_n: NodeInfo, type: string, version: string): void {
    this.events.push(`sent ${type} ${version}`);
  }
  acked(_n: NodeInfo, type: string, version: string): void {
    this.events.push(`acked ${type} ${version}`);
  }
  nacked(_n: NodeInfo, type: string, version: string, message: string): void {
    this.events.push(`nacked ${type} ${version} ${message}`);
  }
}

const cluster = (name: string, timeout = "1s"): JsonObject => ({ name, connect_timeout: timeout });
const NODE = { id: "n1", cluster: "svc", locality: { zone: "z1" } };

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("restDiscovery: 200 that nuncio's REST parsing applies, 304 as an ACK, NACK, 400s and 404", async () => {
  const source = new TestSource().set(CDS, "a", cluster("a")).set(CDS, "b", cluster("b"));
  source.set(EDS, "c1", {
    cluster_name: "c1",
    endpoints: [{
      lb_endpoints: [{ endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } } }],
    }],
  });
  const mesh = new RecordingMesh();
  const path = "/v3/discovery:clusters";

  assert.equal((await restDiscovery(source, mesh, "/v3/discovery:nothing", "{}")).status, 404);
  assert.equal((await restDiscovery(source, mesh, path, "{not json")).status, 400);
  assert.equal((await restDiscovery(source, mesh, path, "[]")).status, 400);
  assert.equal((await restDiscovery(source, mesh, path, JSON.stringify({ type_url: CDS }))).status, 400);
  const wrongType = await restDiscovery(source, mesh, path, JSON.stringify({ node: NODE, type_url: EDS }));
  assert.equal(wrongType.status, 400);
  assert.deepEqual(mesh.events, []);

  const res = await restDiscovery(source, mesh, path, JSON.stringify({ node: NODE, type_url: CDS }));
  assert.equal(res.status, 200);
  assert.equal(res.contentType, "application/json");
  const body = JSON.parse(res.body);
  assert.equal(body.type_url, CDS);
  assert.match(body.version_info, /^[0-9a-f]{16}$/);
  assert.equal(typeof body.nonce, "string");
  assert.deepEqual(body.resources, [
    { "@type": CDS, name: "a", connect_timeout: "1s" },
    { "@type": CDS, name: "b", connect_timeout: "1s" },
  ]);
  assert.deepEqual(source.nodes[0], { id: "n1", cluster: "svc", zone: "z1" });
  assert.deepEqual(mesh.events, [`connected n1 rest rest:n1:${CDS}`, `sent ${CDS} ${body.version_info}`]);

  // nuncio's REST client takes the body as it is
  const stats = new StatsStore();
  const applied: XdsUpdate[] = [];
  const sub = new Subscription({
    typeUrl: CDS,
    stats: stats.scope("cluster_manager.cds"),
    clock: systemClock,
    validateAndApply: (u) => {
      applied.push(u);
      return Promise.resolve(undefined);
    },
  });
  await sub.handleResponseText(res.body);
  assert.equal(applied.length, 1);
  assert.deepEqual([...applied[0].resources.keys()], ["a", "b"]);
  assert.equal(sub.version, body.version_info);
  assert.equal(stats.counter("cluster_manager.cds.update_rejected").value, 0);

  // the next poll carries that version: 304, an ACK
  mesh.events = [];
  const again = await restDiscovery(source, mesh, path, JSON.stringify(sub.request(NODE)));
  assert.equal(again.status, 304);
  assert.equal(again.body, "");
  assert.deepEqual(mesh.events, [`connected n1 rest rest:n1:${CDS}`, `acked ${CDS} ${body.version_info}`]);

  // a NACK (previous version with error_detail) after a change: reported, and the new version is served
  source.set(CDS, "b", undefined);
  mesh.events = [];
  const nack = await restDiscovery(
    source,
    mesh,
    path,
    JSON.stringify({ ...sub.request(NODE), error_detail: { code: 13, message: "bad cluster" } }),
  );
  assert.equal(nack.status, 200);
  assert.ok(mesh.events.includes(`nacked ${CDS} ${body.version_info} bad cluster`));
  assert.equal(JSON.parse(nack.body).resources.length, 1);

  // named EDS: only the names asked for
  const eds = await restDiscovery(
    source,
    mesh,
    "/v3/discovery:endpoints",
    JSON.stringify({ node: NODE, resource_names: ["c1", "c9"] }),
  );
  assert.equal(eds.status, 200);
  const edsBody = JSON.parse(eds.body);
  assert.deepEqual(edsBody.resources.map((r: { cluster_name: string }) => r.cluster_name), ["c1"]);
  assert.equal(edsBody.resources[0]["@type"], EDS);
});

Deno.test("REST xDS end to end: nuncio's RestTransport polls an HTTP server answering with restDiscovery", async () => {
  const source = new TestSource().set(CDS, "a", cluster("a"));
  const mesh = new RecordingMesh();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const r = await restDiscovery(source, mesh, new URL(req.url).pathname, await req.text());
    const headers = r.contentType ? { "content-type": r.contentType } : undefined;
    return new Response(r.status === 304 ? null : r.body, { status: r.status, headers });
  });
  const stats = new StatsStore();
  const applied: string[] = [];
  const sub = new Subscription({
    typeUrl: CDS,
    stats: stats.scope("cluster_manager.cds"),
    clock: systemClock,
    validateAndApply: (u) => {
      applied.push([...u.resources.keys()].join(",") + (u.removed.length ? ` -${u.removed.join(",")}` : ""));
      return Promise.resolve(undefined);
    },
  });
  const transport = new RestTransport(sub, {
    clusterName: "xds",
    resolveCluster: () => ({ host: "127.0.0.1", port: server.addr.port }),
    node: NODE,
    refreshDelayMs: 10,
    clock: systemClock,
    random: () => 0,
    controlPlane: stats.scope("control_plane"),
  });
  try {
    transport.start();
    await waitFor("applied", () => applied.length === 1);
    await waitFor("an ACK poll", () => mesh.events.some((e) => e.startsWith("acked")));
    source.set(CDS, "b", cluster("b")).set(CDS, "a", undefined);
    await waitFor("the change", () => applied.length === 2);
    assert.deepEqual(applied, ["a", "b -a"]);
    assert.equal(stats.counter("cluster_manager.cds.update_rejected").value, 0);
    assert.ok(stats.counter("cluster_manager.cds.update_success").value >= 3, "304s count as successes");
  } finally {
    await transport.close();
    await server.shutdown();
  }
});
