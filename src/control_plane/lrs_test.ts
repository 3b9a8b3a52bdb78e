import assert from "node:assert/strict";
import { GrpcServer } from "../grpc/server.ts";
import { openGrpcStream } from "../grpc/stream_client.ts";
import { StatsStore } from "../stats/store.ts";
import { encodeMessage } from "../xds/codec/encode.ts";
import { decodeMessage } from "../xds/codec/proto_json.ts";
import { messageType } from "../xds/codec/root.ts";
import { LRS_METHOD, LrsServer } from "./lrs.ts";

const REQ = "envoy.service.load_stats.v3.LoadStatsRequest";
const RES = "envoy.service.load_stats.v3.LoadStatsResponse";

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const report = (cluster: string, ok: number, err: number, issued: number, active: number, zone?: string) => ({
  cluster_name: cluster,
  total_dropped_requests: 1,
  load_report_interval: "2.000001s",
  upstream_locality_stats: [{
    ...(zone ? { locality: { zone } } : {}),
    total_successful_requests: ok,
    total_error_requests: err,
    total_issued_requests: issued,
    total_requests_in_progress: active,
  }],
});

Deno.test("LrsServer: answers the first request with send_all_clusters; adds up every report per node and cluster", async () => {
  const stats = new StatsStore();
  const lrs = new LrsServer({ intervalMs: 2000, stats });
  const grpc = new GrpcServer();
  lrs.registerOn(grpc);
  const { port } = grpc.listen({ port: 0 });
  const a = await openGrpcStream({ host: "127.0.0.1", port }, LRS_METHOD);
  const b = await openGrpcStream({ host: "127.0.0.1", port }, LRS_METHOD);
  try {
    a.write(encodeMessage(messageType(REQ), { node: { id: "proxy-a", cluster: "edge" } }));
    const res = decodeMessage(messageType(RES), (await a.read())!);
    assert.deepEqual(res, { send_all_clusters: true, load_reporting_interval: "2s" });
    a.write(
      encodeMessage(messageType(REQ), {
        node: { id: "proxy-a" },
        cluster_stats: [report("web", 7, 3, 10, 0, "z1")],
      }),
    );
    a.write(
      encodeMessage(messageType(REQ), {
        node: { id: "proxy-a" },
        cluster_stats: [report("web", 2, 0, 3, 1)],
      }),
    );
    b.write(encodeMessage(messageType(REQ), { node: { id: "proxy-b", cluster: "edge" } }));
    await b.read();
    b.write(
      encodeMessage(messageType(REQ), {
        cluster_stats: [report("web", 1, 1, 2, 2), report("api", 5, 0, 5, 0)],
      }),
    );
    await until("three reports", () => stats.counter("lrs.requests").value === 5);
    const l = lrs.loads();
    assert.deepEqual(l.nodes.map((n) => [n.id, n.cluster, n.reports]), [["proxy-a", "edge", 2], [
      "proxy-b",
      "edge",
      1,
    ]]);
    const web = l.nodes[0].clusters.web;
    assert.deepEqual(web.totals, {
      total_successful_requests: 9,
      total_error_requests: 3,
      total_issued_requests: 13,
      total_dropped_requests: 2,
      reports: 2,
    });
    assert.equal(web.last.total_issued_requests, 3);
    assert.equal(web.last.total_requests_in_progress, 1);
    assert.equal(web.last.load_report_interval, "2.000001s");
    assert.deepEqual(l.clusters.web, {
      nodes: 2,
      totals: {
        total_successful_requests: 10,
        total_error_requests: 4,
        total_issued_requests: 15,
        total_dropped_requests: 3,
      },
      last_requests_in_progress: 3,
    });
    assert.equal(l.clusters.api.totals.total_successful_requests, 5);
    assert.equal(stats.gauge("lrs.streams_active").value, 2);
    await b.close();
    await until("b gone", () => lrs.loads().nodes.length === 1);
    assert.equal(stats.gauge("lrs.streams_active").value, 1);
  } finally {
    await a.close();
    await b.close();
    lrs.close();
    await grpc.close();
  }
});

Deno.test("LrsServer: a first request without node.id ends the stream", async () => {
  const stats = new StatsStore();
  const lrs = new LrsServer({ stats });
  const grpc = new GrpcServer();
  lrs.registerOn(grpc);
  const { port } = grpc.listen({ port: 0 });
  const c = await openGrpcStream({ host: "127.0.0.1", port }, LRS_METHOD);
  try {
    c.write(encodeMessage(messageType(REQ), { cluster_stats: [report("web", 1, 0, 1, 0)] }));
    await assert.rejects(() => c.read(), /node\.id/);
    assert.equal(stats.counter("lrs.bad_messages").value, 1);
  } finally {
    await c.close();
    lrs.close();
    await grpc.close();
  }
});
