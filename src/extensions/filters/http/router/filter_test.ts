/**
 * The router without sockets (Envoy's router_test.cc shape): a fake cluster hands out scripted upstream
 * connections, time is a ManualClock, and the callbacks record what goes downstream.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../../../common/clock.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type HttpFilter, HttpFilterStatus } from "../../../../http/filter.ts";
import { StatsStore } from "../../../../stats/store.ts";
import { routerSchema } from "./config.ts";
import { RouterFactory } from "./filter.ts";
import {
  compileRoute,
  FakeCluster,
  FakeSocket,
  RecordingCallbacks,
  routerContext,
  settle,
} from "./testing.ts";

const OK = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

/** A router over one fake cluster "web" with `route` (route action JSON beyond the cluster). */
function setup(route: Record<string, unknown> = {}, opts: ConstructorParameters<typeof FakeCluster>[2] = {}) {
  const clock = new ManualClock();
  const store = new StatsStore();
  const cluster = new FakeCluster("web", store, opts);
  const ctx = { ...routerContext(clock, [cluster]), stats: store };
  const factory = new RouterFactory(routerSchema.parse({}), ctx, "test");
  factory.random = () => 0;
  const entry = compileRoute({ cluster: "web", ...route });
  const filters: HttpFilter[] = [];
  const start = (request = {}) => {
    const cb = new RecordingCallbacks(entry, request);
    const filter = factory.createFilter(cb);
    filters.push(filter);
    return { cb, filter, status: filter.decodeHeaders!(true) };
  };
  /** The streams end (as the connection manager ends them) and the timer wheel stops. */
  const dispose = () => {
    for (const f of filters) f.onDestroy?.();
    ctx.timers.close();
  };
  /** Moves the manual clock and lets the timer wheel tick. */
  const elapse = async (ms: number) => {
    clock.advance(ms);
    await settle(undefined, 15);
  };
  const counter = (name: string) => store.counter(name).value;
  return { clock, cluster, factory, start, elapse, counter, ctx, [Symbol.dispose]: dispose };
}

/** Two scripted upstream connections, and a request started (its head sent) on the first. */
async function twoConnections(t: ReturnType<typeof setup>) {
  const a = new FakeSocket();
  const b = new FakeSocket();
  t.cluster.script.push(a, b);
  const first = t.start();
  await first.status;
  return { a, b, first };
}

Deno.test("router: a response is forwarded and the connection goes back to the pool", async () => {
  using t = setup();
  const up = new FakeSocket();
  t.cluster.script.push(up);
  const { cb, status } = t.start();
  assert.equal(await status, HttpFilterStatus.StopIteration);
  assert.match(up.written, /^GET \/ HTTP\/1\.1\r\n/);
  assert.match(up.written, /host: example\.com\r\n/i);
  t.clock.advance(7);
  up.push(OK);
  await settle(() => cb.ended);
  assert.equal(cb.response?.status, 200);
  assert.equal(cb.body, "hello");
  assert.equal(cb.response?.headers.get("x-envoy-upstream-service-time"), "7");
  assert.equal(t.cluster.connections[0].releasedReusable, true);
  assert.equal(t.counter("cluster.web.upstream_rq_200"), 1);
  assert.equal(t.counter("cluster.web.upstream_rq_completed"), 1);
  assert.deepEqual(t.cluster.outcomes, [["10.0.0.1:80", 200]]);
  assert.equal(cb.streamInfo.responseCodeDetails, "via_upstream");
});

Deno.test("router: chunked body with trailers, and a close-delimited body", async () => {
  using t = setup();
  const { a, b, first } = await twoConnections(t);
  a.push("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n");
  await settle(() => first.cb.body === "abc");
  a.push("2\r\nde\r\n0\r\nx-sum: 1\r\n\r\n");
  await settle(() => first.cb.ended);
  assert.equal(first.cb.body, "abcde");
  assert.equal(first.cb.trailers?.get("x-sum"), "1");
  assert.equal(t.cluster.connections[0].releasedReusable, true);
  const second = t.start();
  await second.status;
  b.push("HTTP/1.0 200 OK\r\n\r\nuntil");
  b.push(" close");
  b.end();
  await settle(() => second.cb.ended);
  assert.equal(second.cb.body, "until close");
  assert.equal(t.cluster.connections[1].releasedReusable, false);
});

Deno.test("router: a connect failure is retried under retry_on connect-failure", async () => {
  using t = setup({ retry_policy: { retry_on: "connect-failure", num_retries: 1 } });
  const up = new FakeSocket();
  t.cluster.script.push({ reason: "connect_failure", detail: "delayed connect error: 111" }, up);
  const { cb, status } = t.start();
  await status;
  assert.equal(t.cluster.connections.length, 0, "waiting for the back-off");
  await t.elapse(30);
  await settle(() => up.written !== "");
  up.push(OK);
  await settle(() => cb.ended);
  assert.equal(cb.response?.status, 200);
  assert.equal(cb.streamInfo.attemptCount, 2);
  assert.equal(t.counter("cluster.web.upstream_rq_retry"), 1);
  assert.deepEqual(t.cluster.outcomes.map((o) => o[1]), [503, 200]);
});

Deno.test("router: connect failure without retries is Envoy's UF reply with the transport reason", async () => {
  using t = setup();
  t.cluster.script.push({ reason: "connect_timeout", detail: "connect timeout" });
  const { cb, status } = t.start();
  await status;
  await settle(() => cb.ended);
  assert.equal(cb.local?.status, 503);
  assert.equal(
    cb.local?.body,
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure, " +
      "transport failure reason: connect timeout",
  );
  assert.equal(cb.local?.opts.flags, ResponseFlag.UpstreamConnectionFailure);
  assert.equal(cb.streamInfo.upstreamTransportFailureReason, "connect timeout");
});

Deno.test("router: overflow is UO with x-envoy-overloaded and never retried", async () => {
  using t = setup({ retry_policy: { retry_on: "5xx,connect-failure", num_retries: 3 } });
  t.cluster.script.push({ reason: "overflow", detail: "Pending requests overflow" });
  const { cb, status } = t.start();
  await status;
  await settle(() => cb.ended);
  assert.equal(cb.local?.status, 503);
  assert.equal(cb.local?.opts.flags, ResponseFlag.UpstreamOverflow);
  assert.deepEqual(cb.local?.opts.headers, [["x-envoy-overloaded", "true"]]);
  assert.equal(t.counter("cluster.web.upstream_rq_retry"), 0);
  assert.deepEqual(t.cluster.outcomes, []);
});

/**
 * One request over two scripted connections: the first answers `first`, and once the back-off passed the retry
 * on the second gets `second`; resolves with the stream's callbacks once it ended.
 */
async function retriedOnce(t: ReturnType<typeof setup>, first: string, second: string) {
  const { a, b, first: { cb } } = await twoConnections(t);
  a.push(first);
  await settle(() => t.cluster.connections[0].releasedReusable !== null);
  await t.elapse(30);
  await settle(() => b.written !== "");
  b.push(second);
  await settle(() => cb.ended);
  return cb;
}

Deno.test("router: a 503 is retried under 5xx; the retried connection is dropped", async () => {
  using t = setup({ retry_policy: { retry_on: "5xx", num_retries: 2 } });
  const cb = await retriedOnce(t, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", OK);
  assert.equal(t.cluster.connections[0].releasedReusable, false);
  assert.equal(cb.response?.status, 200);
  assert.equal(t.counter("cluster.web.upstream_rq_retry"), 1);
  assert.equal(t.counter("cluster.web.upstream_rq_retry_success"), 1);
});

Deno.test("router: retries run out: the last response goes downstream with URX", async () => {
  using t = setup({ retry_policy: { retry_on: "5xx", num_retries: 1 } });
  const cb = await retriedOnce(
    t,
    "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\n\r\nbad",
  );
  assert.equal(cb.response?.status, 503);
  assert.equal(cb.body, "bad");
  assert.ok(cb.streamInfo.responseFlags & ResponseFlag.UpstreamRetryLimitExceeded);
  assert.equal(t.counter("cluster.web.upstream_rq_retry_limit_exceeded"), 1);
});

Deno.test("router: a close before the head is UC; a malformed head is UPE", async () => {
  using t = setup();
  const { a, b, first } = await twoConnections(t);
  a.end();
  await settle(() => first.cb.ended);
  assert.equal(first.cb.local?.status, 503);
  assert.equal(
    first.cb.local?.opts.details,
    "upstream_reset_before_response_started{connection_termination}",
  );
  assert.equal(first.cb.local?.opts.flags, ResponseFlag.UpstreamConnectionTermination);
  assert.equal(t.counter("cluster.web.upstream_rq_rx_reset"), 1);
  const second = t.start();
  await second.status;
  b.push("HTTP/1.1 2x0 Nope\r\n\r\n");
  await settle(() => second.cb.ended);
  assert.equal(second.cb.local?.status, 502);
  assert.equal(second.cb.local?.opts.flags, ResponseFlag.UpstreamProtocolError);
  assert.equal(second.cb.local?.opts.details, "upstream_protocol_error");
});

Deno.test("router: a close inside the body resets the downstream stream", async () => {
  using t = setup();
  const up = new FakeSocket();
  t.cluster.script.push(up);
  const { cb, status } = t.start();
  await status;
  up.push("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
  await settle(() => cb.body === "abc");
  up.end();
  await settle(() => cb.reset);
  assert.equal(cb.reset, true);
  assert.ok(cb.streamInfo.responseFlags & ResponseFlag.UpstreamConnectionTermination);
  assert.equal(
    cb.streamInfo.responseCodeDetails,
    "upstream_reset_after_response_started{connection_termination}",
  );
});

Deno.test("router: per-try timeout is UT 504 on the manual clock; retried under gateway-error", async () => {
  using t = setup({ retry_policy: { retry_on: "gateway-error", num_retries: 1, per_try_timeout: "0.1s" } });
  const a = new FakeSocket();
  const b = new FakeSocket();
  t.cluster.script.push(a, b);
  const { cb, status } = t.start();
  await status;
  await t.elapse(150);
  assert.equal(t.cluster.connections[0].releasedReusable, false, "the timed-out connection is dropped");
  assert.equal(t.counter("cluster.web.upstream_rq_per_try_timeout"), 1);
  await t.elapse(30);
  await settle(() => b.written !== "");
  await t.elapse(150);
  await settle(() => cb.ended);
  assert.equal(cb.local?.status, 504);
  assert.equal(cb.local?.body, "upstream request timeout");
  assert.ok((cb.local?.opts.flags ?? 0) & ResponseFlag.UpstreamRequestTimeout);
  assert.deepEqual(t.cluster.outcomes.map((o) => o[1]), [504, 504]);
});

Deno.test("router: the global timeout answers 504 and drops the attempt", async () => {
  using t = setup({ timeout: "1s" });
  const up = new FakeSocket();
  t.cluster.script.push(up);
  const { cb, status } = t.start();
  await status;
  await t.elapse(500);
  assert.equal(cb.ended, false);
  await t.elapse(600);
  await settle(() => cb.ended);
  assert.equal(cb.local?.status, 504);
  assert.equal(t.counter("cluster.web.upstream_rq_timeout"), 1);
  assert.equal(t.cluster.connections[0].releasedReusable, false);
});

Deno.test("router: HEAD and 1xx: no body is read, interim heads are absorbed", async () => {
  using t = setup();
  const up = new FakeSocket();
  t.cluster.script.push(up);
  const head = t.start({ method: "HEAD" });
  await head.status;
  up.push("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n");
  await settle(() => head.cb.ended);
  assert.equal(head.cb.response?.status, 200);
  assert.equal(head.cb.body, "");
  assert.equal(t.cluster.connections[0].releasedReusable, true);
});

Deno.test("router: a downstream reset mid-response drops the connection and counts tx_reset", async () => {
  using t = setup();
  const up = new FakeSocket();
  t.cluster.script.push(up);
  const { cb, filter, status } = t.start();
  await status;
  up.push("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
  await settle(() => cb.body === "abc");
  filter.onDestroy!();
  await settle(() => t.cluster.connections[0].releasedReusable !== null);
  assert.equal(t.cluster.connections[0].releasedReusable, false);
  assert.equal(t.counter("cluster.web.upstream_rq_tx_reset"), 1);
  assert.equal(t.cluster.stats.upstream_rq_active.value, 0);
});
