import assert from "node:assert/strict";
import { GrpcServer, type GrpcStreamCall } from "../grpc/server.ts";
import { StatsStore } from "../stats/store.ts";
import type { ApiConfigSource } from "../config/config_source.ts";
import { encodeMessage } from "./codec/encode.ts";
import { decodeMessage } from "./codec/proto_json.ts";
import { messageType } from "./codec/root.ts";
import {
  type ClusterLoadSample,
  loadBaseline,
  loadDelta,
  LRS_STREAM_METHOD,
  LrsClient,
  samplesFromStats,
} from "./lrs_client.ts";

const sample = (o: Partial<ClusterLoadSample>): ClusterLoadSample => ({
  name: "web",
  total: 0,
  completed: 0,
  active: 0,
  responses: 0,
  errors5xx: 0,
  dropped: 0,
  ...o,
});

Deno.test("loadDelta: 10 requests, 3 answered 503: 7 successful, 3 errors", () => {
  const base = loadBaseline(sample({ total: 5, completed: 5, responses: 5 }), 0);
  const [d, next] = loadDelta(base, sample({ total: 15, completed: 15, responses: 15, errors5xx: 3 }), 1000);
  assert.deepEqual(d, { issued: 10, successful: 7, errors: 3, inProgress: 0, dropped: 0 });
  assert.equal(next.since, 1000);
  assert.equal(next.unanswered, 0);
  assert.equal(next.unsettled, 0);
});

Deno.test("loadDelta: a connect failure (finished, never answered) is an error; overflow is dropped", () => {
  const [d] = loadDelta(
    loadBaseline(sample({}), 0),
    sample({ total: 4, completed: 4, responses: 3, dropped: 2 }),
    1,
  );
  assert.deepEqual(d, { issued: 4, successful: 3, errors: 1, inProgress: 0, dropped: 2 });
});

Deno.test("loadDelta: an answer whose attempt finishes in the next interval is settled once, there", () => {
  // interval 1: a 200 and a 503 arrived, neither attempt finished yet (both in progress)
  const b0 = loadBaseline(sample({}), 0);
  const [d1, b1] = loadDelta(b0, sample({ total: 2, responses: 2, errors5xx: 1, active: 2 }), 1);
  assert.deepEqual(d1, { issued: 2, successful: 0, errors: 1, inProgress: 2, dropped: 0 });
  // interval 2: both finish
  const [d2, b2] = loadDelta(b1, sample({ total: 2, completed: 2, responses: 2, errors5xx: 1 }), 2);
  assert.deepEqual(d2, { issued: 0, successful: 1, errors: 0, inProgress: 0, dropped: 0 });
  assert.deepEqual([b2.unanswered, b2.unsettled], [0, 0]);
});

Deno.test("loadDelta: counters that went back (/reset_counters) count from zero", () => {
  const base = loadBaseline(sample({ total: 100, completed: 100, responses: 100 }), 0);
  const [d] = loadDelta(base, sample({ total: 3, completed: 3, responses: 3 }), 1);
  assert.deepEqual(d, { issued: 3, successful: 3, errors: 0, inProgress: 0, dropped: 0 });
});

Deno.test("samplesFromStats: reads cluster counters and the active gauge of a merged snapshot", () => {
  const s = new StatsStore();
  const c = s.scope("cluster.web");
  c.counter("upstream_rq_total").inc(10);
  c.counter("upstream_rq_completed").inc(9);
  c.counter("upstream_rq_2xx").inc(6);
  c.counter("upstream_rq_4xx").inc(1);
  c.counter("upstream_rq_5xx").inc(2);
  c.counter("upstream_rq_pending_overflow").inc(4);
  c.gauge("upstream_rq_active").inc(1);
  const [web, none] = samplesFromStats(s.snapshot(), [{ name: "web", locality: { zone: "z" } }, {
    name: "none",
  }]);
  assert.deepEqual(web, {
    name: "web",
    total: 10,
    completed: 9,
    active: 1,
    responses: 9,
    errors5xx: 2,
    dropped: 4,
    locality: { zone: "z" },
  });
  assert.deepEqual(none, sample({ name: "none" }));
});

const SOURCE = {
  api_type: "GRPC",
  grpc_services: [{ envoy_grpc: { cluster_name: "lrs" } }],
} as unknown as ApiConfigSource;

Deno.test("LrsClient: node first, then a report per interval with the deltas of the clusters asked for", async () => {
  const REQ = messageType("envoy.service.load_stats.v3.LoadStatsRequest");
  const RES = messageType("envoy.service.load_stats.v3.LoadStatsResponse");
  const got: Record<string, unknown>[] = [];
  let server: GrpcStreamCall | undefined;
  const grpc = new GrpcServer();
  grpc.registerStream(LRS_STREAM_METHOD, (call) => {
    server = call;
    call.onMessage = (m) => {
      got.push(decodeMessage(REQ, m));
      if (got.length === 1) {
        call.send(encodeMessage(RES, { clusters: ["web"], load_reporting_interval: "0.1s" }));
      }
    };
  });
  const { port } = grpc.listen({ port: 0 });
  let figures = sample({ total: 5, completed: 5, responses: 5 });
  const stats = new StatsStore();
  const client = new LrsClient(SOURCE, {
    node: { id: "n1", cluster: "edge" },
    resolveCluster: () => ({ host: "127.0.0.1", port }),
    stats,
    sample: () => Promise.resolve([figures, sample({ name: "other", total: 99 })]),
  });
  try {
    client.start();
    await waitUntil(() => client.tracked.length === 1);
    assert.deepEqual(client.tracked, ["web"]);
    figures = sample({ total: 15, completed: 14, responses: 14, errors5xx: 3, active: 1 });
    await waitUntil(() => got.length >= 2);
    const first = got[0] as { node: { id: string; client_features: string[] } };
    assert.equal(first.node.id, "n1");
    assert.deepEqual(first.node.client_features, ["envoy.lrs.supports_send_all_clusters"]);
    const rep = got[1] as { cluster_stats: Record<string, unknown>[] };
    assert.equal(rep.cluster_stats.length, 1);
    const cs = rep.cluster_stats[0] as {
      cluster_name: string;
      load_report_interval: string;
      upstream_locality_stats: Record<string, string>[];
    };
    assert.equal(cs.cluster_name, "web");
    assert.match(cs.load_report_interval, /^0\.1\d*s$/);
    assert.deepEqual(cs.upstream_locality_stats, [{
      total_successful_requests: "6",
      total_error_requests: "3",
      total_issued_requests: "10",
      total_requests_in_progress: "1",
    }]);
    assert.ok(stats.counter("load_reporter.requests").value >= 1);
  } finally {
    await client.close();
    server?.end();
    await grpc.close();
  }
});

async function waitUntil(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
