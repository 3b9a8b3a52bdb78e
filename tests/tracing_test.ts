/**
 * Tracing end to end: requests crossing two in-process nuncio hops produce spans of one trace with the right
 * parents at a Zipkin v2 and an OTLP (HTTP protobuf and gRPC) collector; sampling (random, forced, client,
 * overall) and x-request-id trace bits; a collector that is down costs nothing but counted drops.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  refusedPort,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import {
  startOtlpReceiver,
  startZipkinReceiver,
  type ZipkinReceiver,
  type ZipkinSpanJson,
} from "./tracing_peers.ts";
import { GrpcServer } from "../src/grpc/server.ts";
import type { HeaderMap } from "../src/http/headers.ts";

type Obj = Record<string, unknown>;

const ZIPKIN = (cluster: string) => ({
  name: "envoy.tracers.zipkin",
  typed_config: {
    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
    collector_cluster: cluster,
    collector_endpoint: "/api/v2/spans",
    collector_endpoint_version: "HTTP_JSON",
  },
});

/** One hop: listener -> cluster `next` on `nextPort`; tracing as given; collector cluster `collector`. */
/** GETs `path` through hop a -> hop b -> `origin` (both reporting to `collectorPort`); the origin's request headers. */
async function callThroughTwoHops(
  origin: { port: number; requests: { headers: Headers }[] },
  collectorPort: number,
  tracing: Obj,
  path: string,
): Promise<Headers> {
  const b = await startProxy(hop("b", origin.port, collectorPort, tracing));
  const a = await startProxy(hop("a", b.port(), collectorPort, tracing));
  try {
    const r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", a.url(path)]);
    assert.equal(r.stdout, "200");
    return origin.requests[0].headers;
  } finally {
    await a.close();
    await b.close();
  }
}

function hop(node: string, nextPort: number, collectorPort: number, tracing: Obj, extra: Obj = {}): string {
  return bootstrapYaml(
    [httpListener({
      statPrefix: "ingress",
      virtualHosts: [anyHost([{
        match: { prefix: "/" },
        route: { cluster: "next" },
        ...(extra.route as Obj ?? {}),
      }])],
      hcm: { tracing },
    })],
    [staticCluster("next", [nextPort]), staticCluster("collector", [collectorPort])],
    { node: { id: node, cluster: `${node}-cluster` }, ...(extra.bootstrap as Obj ?? {}) },
  );
}

const UUID_AT_14 = (id: string | null) => id?.[14];

Deno.test("tracing: zipkin, two hops with spawn_upstream_span: one trace, parent chain", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const tracing = {
    random_sampling: { value: 100 },
    spawn_upstream_span: true,
    provider: ZIPKIN("collector"),
  };
  const b = await startProxy(hop("b", origin.port, zipkin.port, tracing));
  const a = await startProxy(hop("a", b.port(), zipkin.port, tracing, {
    route: { decorator: { operation: "checkout" } },
  }));
  try {
    const r = await curl(["-s", "-o", "/dev/null", "-D", "-", a.url("/shop?q=1")]);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    // ingress: the route's decorator goes back to the caller
    assert.match(r.stdout.toLowerCase(), /\r\nx-envoy-decorator-operation: checkout\r\n/);
    assert.equal(origin.requests.length, 1);
    // the origin sees b's client span as the parent of its request
    const seen = origin.requests[0].headers;
    assert.match(seen.get("x-b3-spanid") ?? "", /^[0-9a-f]{16}$/);
    assert.equal(a.stat("http.ingress.tracing.random_sampling"), 1);
    assert.equal(b.stat("http.ingress.tracing.random_sampling"), 1);
  } finally {
    await a.close();
    await b.close();
  }
  const spans = await zipkin.waitSpans(4);
  assert.equal(spans.length, 4, JSON.stringify(spans));
  const traceIds = new Set(spans.map((s) => s.traceId));
  assert.equal(traceIds.size, 1);
  const aServer = spans.find((s) => s.localEndpoint?.serviceName === "a-cluster" && s.kind === "SERVER")!;
  const aClient = spans.find((s) => s.localEndpoint?.serviceName === "a-cluster" && s.kind === "CLIENT")!;
  const bServer = spans.find((s) => s.localEndpoint?.serviceName === "b-cluster" && s.kind === "SERVER")!;
  const bClient = spans.find((s) => s.localEndpoint?.serviceName === "b-cluster" && s.kind === "CLIENT")!;
  assert.equal(aServer.parentId, undefined);
  assert.equal(aServer.name, "checkout");
  assert.equal(aClient.parentId, aServer.id);
  assert.equal(aClient.name, "router next egress");
  assert.equal(bServer.parentId, aClient.id);
  assert.equal(bClient.parentId, bServer.id);
  assert.equal(aServer.tags["component"], "proxy");
  assert.equal(aServer.tags["node_id"], "a");
  assert.equal(aServer.tags["http.method"], "GET");
  assert.match(aServer.tags["http.url"], /^http:\/\/127\.0\.0\.1:\d+\/shop\?q=1$/);
  assert.equal(aServer.tags["http.status_code"], "200");
  assert.equal(aServer.tags["response_flags"], "-");
  assert.equal(aServer.tags["upstream_cluster"], "next");
  assert.equal(aServer.tags["http.protocol"], "HTTP/1.1");
  assert.match(aServer.tags["guid:x-request-id"], /^[0-9a-f-]{36}$/);
  assert.equal(aServer.tags["user_agent"].startsWith("curl/"), true);
  assert.equal(aServer.tags["downstream_cluster"], "-");
  assert.equal(aServer.tags["error"], undefined);
  assert.equal(aClient.tags["http.status_code"], "200");
  assert.equal(bClient.tags["upstream_address"], `127.0.0.1:${origin.port}`);
  assert.ok(aServer.duration >= aClient.duration);
});

Deno.test("tracing: zipkin shared span context (default): the next hop shares the caller's span", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const tracing = { provider: ZIPKIN("collector") };
  const seen = await callThroughTwoHops(origin, zipkin.port, tracing, "/x");
  const spans = await zipkin.waitSpans(2);
  assert.equal(spans.length, 2);
  const sa = spans.find((s) => s.localEndpoint?.serviceName === "a-cluster")!;
  const sb = spans.find((s) => s.localEndpoint?.serviceName === "b-cluster")!;
  assert.equal(sb.traceId, sa.traceId);
  assert.equal(sb.id, sa.id);
  assert.equal(sb.shared, true);
  // b propagates its (shared) context to the origin
  assert.equal(seen.get("x-b3-traceid"), sa.traceId);
  assert.equal(seen.get("x-b3-spanid"), sa.id);
  assert.equal(seen.get("x-b3-sampled"), "1");
});

Deno.test("tracing: sampling decisions, x-request-id trace bits and stats", async (t) => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const p = await startProxy(hop("a", origin.port, zipkin.port, {
    random_sampling: { value: 0 },
    client_sampling: { value: 100 },
    provider: ZIPKIN("collector"),
  }));
  const internal = ["-H", "x-forwarded-for: 10.0.0.1"];
  const get = async (headers: string[]) => {
    const r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", ...headers, p.url("/s")]);
    assert.equal(r.stdout, "200");
    return origin.requests[origin.requests.length - 1].headers;
  };
  try {
    await t.step("random_sampling 0: not traced, not sampled downstream", async () => {
      const h = await get([]);
      assert.equal(UUID_AT_14(h.get("x-request-id")), "4");
      assert.equal(h.get("x-b3-sampled"), "0");
      assert.equal(h.get("x-b3-traceid"), null);
      assert.equal(p.stat("http.ingress.tracing.not_traceable"), 1);
    });
    await t.step("x-envoy-force-trace from an internal client: service forced ('a')", async () => {
      const h = await get([...internal, "-H", "x-envoy-force-trace: true"]);
      // a forced trace returns its x-request-id to the caller
      const r = await curl([
        "-s",
        "-o",
        "/dev/null",
        "-D",
        "-",
        ...internal,
        "-H",
        "x-envoy-force-trace: 1",
        p.url("/s"),
      ]);
      assert.match(r.stdout.toLowerCase(), /\r\nx-request-id: [0-9a-f]{8}-[0-9a-f]{4}-a/);
      assert.equal(UUID_AT_14(h.get("x-request-id")), "a");
      assert.equal(h.get("x-b3-sampled"), "1");
      assert.match(h.get("x-b3-traceid") ?? "", /^[0-9a-f]{16}$/);
      assert.equal(p.stat("http.ingress.tracing.service_forced"), 2);
    });
    await t.step("x-envoy-force-trace from an external client is stripped", async () => {
      const h = await get(["-H", "x-envoy-force-trace: true"]);
      assert.equal(UUID_AT_14(h.get("x-request-id")), "4");
      assert.equal(p.stat("http.ingress.tracing.not_traceable"), 2);
    });
    await t.step("x-client-trace-id with client_sampling 100: client forced ('b')", async () => {
      const h = await get(["-H", "x-client-trace-id: abc"]);
      assert.equal(UUID_AT_14(h.get("x-request-id")), "b");
      assert.equal(p.stat("http.ingress.tracing.client_enabled"), 1);
    });
    await t.step("an incoming x-b3-sampled: 1 samples whatever the HCM decided", async () => {
      const h = await get([
        "-H",
        "x-b3-traceid: 463ac35c9f6413ad",
        "-H",
        "x-b3-spanid: a2fb4a1d1a96d312",
        "-H",
        "x-b3-sampled: 1",
      ]);
      assert.equal(h.get("x-b3-traceid"), "463ac35c9f6413ad");
      assert.equal(h.get("x-b3-spanid"), "a2fb4a1d1a96d312");
    });
  } finally {
    await p.close();
  }
  const spans = await zipkin.waitSpans(4);
  assert.equal(spans.length, 4);
  const client = spans.find((s) => s.tags["guid:x-client-trace-id"] === "abc");
  assert.ok(client);
  const joined = spans.find((s) => s.traceId === "463ac35c9f6413ad")!;
  assert.equal(joined.id, "a2fb4a1d1a96d312");
  assert.equal(joined.shared, true);
});

Deno.test("tracing: overall_sampling 0 caps forced traces; the route's tracing overrides the HCM's", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const p = await startProxy(bootstrapYaml(
    [httpListener({
      statPrefix: "ingress",
      virtualHosts: [anyHost([
        {
          match: { prefix: "/sampled" },
          route: { cluster: "next" },
          tracing: {
            random_sampling: { numerator: 100 },
            custom_tags: [{ tag: "r", literal: { value: "1" } }],
          },
        },
        { match: { prefix: "/" }, route: { cluster: "next" } },
      ])],
      hcm: {
        tracing: {
          overall_sampling: { value: 0 },
          custom_tags: [
            { tag: "lit", literal: { value: "v" } },
            { tag: "hdr", request_header: { name: "x-tag", default_value: "none" } },
          ],
          provider: ZIPKIN("collector"),
        },
      },
    })],
    [staticCluster("next", [origin.port]), staticCluster("collector", [zipkin.port])],
  ));
  try {
    const r = await curl([
      "-s",
      "-o",
      "/dev/null",
      "-H",
      "x-forwarded-for: 10.0.0.1",
      "-H",
      "x-envoy-force-trace: 1",
      p.url("/"),
    ]);
    assert.equal(r.code, 0);
    assert.equal(UUID_AT_14(origin.requests[0].headers.get("x-request-id")), "4");
    // the route's overall_sampling (100 %) and random_sampling (100 %) replace the HCM's
    await curl(["-s", "-o", "/dev/null", "-H", "x-tag: T", p.url("/sampled")]);
    assert.equal(UUID_AT_14(origin.requests[1].headers.get("x-request-id")), "9");
  } finally {
    await p.close();
  }
  const spans = await zipkin.waitSpans(1);
  assert.equal(spans.length, 1);
  assert.equal(spans[0].tags["lit"], "v");
  assert.equal(spans[0].tags["hdr"], "T");
  assert.equal(spans[0].tags["r"], "1");
});

Deno.test("tracing: a collector that is down costs requests nothing; failed reports are counted", async () => {
  await using origin = startOrigin("web");
  const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (dead.addr as Deno.NetAddr).port;
  dead.close();
  const p = await startProxy(hop("a", origin.port, deadPort, { provider: ZIPKIN("collector") }));
  try {
    for (let i = 0; i < 10; i++) {
      const r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", p.url(`/r${i}`)]);
      assert.equal(r.stdout, "200");
    }
    const deadline = Date.now() + 3000;
    while (p.stat("tracing.zipkin.reports_failed") < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(p.stat("tracing.zipkin.spans_sent"), 10);
    assert.equal(p.stat("tracing.zipkin.reports_failed"), 2);
    assert.equal(p.stat("tracing.zipkin.reports_sent"), 0);
    assert.equal(p.stat("http.ingress.downstream_rq_2xx"), 10);
  } finally {
    await p.close();
  }
});

Deno.test("tracing: zipkin collector answering non-202 counts reports_dropped; bootstrap tracing.http provider", async () => {
  await using zipkin = startZipkinReceiver(500);
  await using origin = startOrigin("web");
  const p = await startProxy(hop("a", origin.port, zipkin.port, {}, {
    bootstrap: { tracing: { http: ZIPKIN("collector") } },
  }));
  try {
    for (let i = 0; i < 5; i++) await curl(["-s", "-o", "/dev/null", p.url("/")]);
    const deadline = Date.now() + 3000;
    while (p.stat("tracing.zipkin.reports_dropped") < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(p.stat("tracing.zipkin.reports_dropped"), 1);
    assert.equal(zipkin.posts, 1);
  } finally {
    await p.close();
  }
});

const OTEL_HTTP = (cluster: string) => ({
  name: "envoy.tracers.opentelemetry",
  typed_config: {
    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
    service_name: "svc",
    http_service: { http_uri: { uri: "http://collector:4318/v1/traces", cluster, timeout: "1s" } },
  },
});

const OTEL_GRPC = (cluster: string) => ({
  name: "envoy.tracers.opentelemetry",
  typed_config: {
    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
    grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: "1s" },
  },
});

Deno.test("tracing: opentelemetry OTLP/HTTP protobuf, two hops via traceparent", async () => {
  await using otlp = startOtlpReceiver();
  await using origin = startOrigin("web");
  const tracing = { provider: OTEL_HTTP("collector") };
  const seen = await callThroughTwoHops(origin, otlp.httpPort, tracing, "/o");
  const spans = await otlp.waitSpans(2);
  assert.equal(spans.length, 2);
  assert.deepEqual(otlp.contentTypes, ["application/x-protobuf", "application/x-protobuf"]);
  const sa = spans.find((s) => s.attributes["node_id"] === "a")!;
  const sb = spans.find((s) => s.attributes["node_id"] === "b")!;
  assert.equal(sa.traceId.length, 32);
  assert.equal(sb.traceId, sa.traceId);
  assert.equal(sa.parentSpanId, "");
  assert.equal(sb.parentSpanId, sa.spanId);
  assert.equal(sa.kind, 2);
  assert.equal(sa.name, "ingress");
  assert.equal(sa.serviceName, "svc");
  assert.equal(sa.attributes["http.status_code"], "200");
  assert.ok(sa.endNs > sa.startNs);
  assert.equal(seen.get("traceparent"), `00-${sa.traceId}-${sb.spanId}-01`);
});

Deno.test("tracing: opentelemetry over gRPC (envoy_grpc) with a child span per attempt", async () => {
  await using otlp = startOtlpReceiver();
  await using origin = startOrigin("web");
  const listener = httpListener({
    statPrefix: "ingress",
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "next" } }])],
    hcm: { tracing: { provider: OTEL_GRPC("collector") } },
  });
  // deno-lint-ignore no-explicit-any -- reaching into the listener literal
  const hcm = (listener as any).filter_chains[0].filters[0].typed_config;
  hcm.http_filters[0].typed_config.start_child_span = true;
  const p = await startProxy(bootstrapYaml(
    [listener],
    [
      staticCluster("next", [origin.port]),
      staticCluster("collector", [otlp.grpcPort], {
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      }),
    ],
  ));
  try {
    const r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", p.url("/g")]);
    assert.equal(r.stdout, "200");
  } finally {
    await p.close();
  }
  const spans = await otlp.waitSpans(2);
  assert.equal(spans.length, 2);
  const server = spans.find((s) => s.kind === 2)!;
  const client = spans.find((s) => s.kind === 3)!;
  assert.equal(client.parentSpanId, server.spanId);
  assert.equal(client.name, "router next egress");
  assert.equal(server.serviceName, "unknown_service:envoy");
  assert.equal(origin.requests[0].headers.get("traceparent"), `00-${server.traceId}-${client.spanId}-01`);
});

/**
 * One request through a proxy whose HTTP filter chain starts with `filter` (which calls the cluster `side`),
 * traced to `zipkin`; resolves to the request's SERVER span and the filter call's CLIENT span.
 */
async function tracedFilterCall(
  zipkin: ZipkinReceiver,
  originPort: number,
  filter: Obj,
  side: [string, number],
  path: string,
  vhostExtra: Obj = {},
): Promise<{ server: ZipkinSpanJson; client: ZipkinSpanJson; spans: ZipkinSpanJson[] }> {
  const listener = httpListener({
    statPrefix: "ingress",
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "next" } }], vhostExtra)],
    hcm: { tracing: { provider: ZIPKIN("collector") } },
  });
  // deno-lint-ignore no-explicit-any -- reaching into the listener literal
  (listener as any).filter_chains[0].filters[0].typed_config.http_filters.unshift(filter);
  const p = await startProxy(bootstrapYaml(
    [listener],
    [
      staticCluster("next", [originPort]),
      staticCluster("collector", [zipkin.port]),
      staticCluster(side[0], [side[1]]),
    ],
  ));
  try {
    const r = await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", p.url(path)]);
    assert.equal(r.stdout, "200");
  } finally {
    await p.close();
  }
  const spans = await zipkin.waitSpans(2);
  return {
    server: spans.find((s) => s.kind === "SERVER")!,
    client: spans.find((s) => s.kind === "CLIENT")!,
    spans,
  };
}

Deno.test("tracing: an ext_authz HTTP check is a child span carrying the request's context", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const checks: Headers[] = [];
  const authz = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    checks.push(req.headers);
    return new Response(null, { status: 200 });
  });
  let traced;
  try {
    traced = await tracedFilterCall(
      zipkin,
      origin.port,
      {
        name: "envoy.filters.http.ext_authz",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
          http_service: { server_uri: { uri: "http://authz/", cluster: "authz", timeout: "2s" } },
        },
      },
      ["authz", authz.addr.port],
      "/a",
    );
  } finally {
    await authz.shutdown();
  }
  const { server, client: check, spans } = traced;
  assert.equal(spans.length, 2);
  assert.equal(check.name, "async authz egress");
  assert.equal(check.parentId, server.id);
  assert.equal(check.tags["upstream_cluster"], "authz");
  assert.equal(server.tags["ext_authz_status"], "ext_authz_ok");
  assert.equal(checks[0].get("x-b3-spanid"), check.id);
  assert.equal(checks[0].get("x-b3-parentspanid"), server.id);
});

Deno.test("tracing: a rate-limit service call is a child span (an unreachable service: error tagged)", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const { server, client: call } = await tracedFilterCall(
    zipkin,
    origin.port,
    {
      name: "envoy.filters.http.ratelimit",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
        domain: "d",
        timeout: "0.5s",
        rate_limit_service: {
          grpc_service: { envoy_grpc: { cluster_name: "rls" } },
          transport_api_version: "V3",
        },
      },
    },
    ["rls", refusedPort()],
    "/r",
    { rate_limits: [{ actions: [{ generic_key: { descriptor_value: "k" } }] }] },
  );
  assert.equal(call.name, "async envoy.service.ratelimit.v3.RateLimitService.ShouldRateLimit egress");
  assert.equal(call.parentId, server.id);
  assert.equal(call.tags["upstream_cluster"], "rls");
  assert.equal(call.tags["grpc.status_code"], "14");
  assert.equal(call.tags["error"], "true");
});

Deno.test("tracing: egress (OUTBOUND listener) client span; decorator propagated to the next hop and back", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const tracing = { provider: ZIPKIN("collector") };
  const b = await startProxy(hop("b", origin.port, zipkin.port, tracing, {
    route: { decorator: { operation: "served" } },
  }));
  const egress = httpListener({
    statPrefix: "ingress",
    virtualHosts: [anyHost([
      { match: { prefix: "/fwd" }, route: { cluster: "next" }, decorator: { operation: "pay" } },
      {
        match: { prefix: "/back" },
        route: { cluster: "next" },
        decorator: { operation: "pay", propagate: false },
      },
    ])],
    hcm: { tracing },
  });
  egress.traffic_direction = "OUTBOUND";
  const a = await startProxy(bootstrapYaml(
    [egress],
    [staticCluster("next", [b.port()]), staticCluster("collector", [zipkin.port])],
    { node: { id: "a", cluster: "a-cluster" } },
  ));
  // an internal caller (one internal x-forwarded-for address): x-envoy-* headers are kept between the hops
  const internal = ["-H", "x-forwarded-for: 10.0.0.1"];
  const heads: string[] = [];
  try {
    for (const path of ["/fwd", "/back"]) {
      const r = await curl(["-s", "-o", "/dev/null", "-D", "-", ...internal, a.url(path)]);
      heads.push(r.stdout.toLowerCase());
      assert.match(r.stdout, /^HTTP\/1\.1 200/);
    }
    assert.equal(origin.requests[0].headers.get("x-envoy-decorator-operation"), null);
  } finally {
    await a.close();
    await b.close();
  }
  // a (egress) consumes b's x-envoy-decorator-operation: the client never sees it
  for (const h of heads) assert.doesNotMatch(h, /x-envoy-decorator-operation/);
  const spans = await zipkin.waitSpans(4);
  assert.equal(spans.length, 4);
  const of = (svc: string, traceId?: string) =>
    spans.filter((s) => s.localEndpoint?.serviceName === svc && (!traceId || s.traceId === traceId));
  const [fwdA, backA] = of("a-cluster").sort((x, y) => x.timestamp - y.timestamp);
  const fwdB = of("b-cluster", fwdA.traceId)[0];
  const backB = of("b-cluster", backA.traceId)[0];
  // forward: a's decorator names both spans (b's own decorator yields to the caller's)
  assert.equal(fwdA.kind, "CLIENT");
  assert.equal(fwdA.name, "pay");
  assert.equal(fwdB.kind, "SERVER");
  assert.equal(fwdB.name, "pay");
  assert.equal(fwdB.id, fwdA.id);
  assert.equal(fwdB.shared, true);
  // back: a does not propagate; b names its span and returns the name, which a takes
  assert.equal(backB.name, "served");
  assert.equal(backA.name, "served");
});

Deno.test("tracing: an HTTP/2 downstream request is traced like an HTTP/1.1 one", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const p = await startProxy(hop("a", origin.port, zipkin.port, { provider: ZIPKIN("collector") }));
  try {
    const r = await curl([
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--http2-prior-knowledge",
      p.url("/h2"),
    ]);
    assert.equal(r.stdout, "200");
    assert.match(origin.requests[0].headers.get("x-b3-traceid") ?? "", /^[0-9a-f]{16}$/);
  } finally {
    await p.close();
  }
  const [span] = await zipkin.waitSpans(1);
  assert.equal(span.tags["http.protocol"], "HTTP/2");
  assert.equal(span.tags["http.status_code"], "200");
  assert.equal(span.traceId, span.id);
});

Deno.test("tracing: an ext_authz gRPC check is a child span; its context goes in the call's metadata", async () => {
  await using zipkin = startZipkinReceiver();
  await using origin = startOrigin("web");
  const seen: HeaderMap[] = [];
  const grpc = new GrpcServer();
  // an empty CheckResponse: status OK
  grpc.register("/envoy.service.auth.v3.Authorization/Check", (_body, md) => {
    seen.push(md);
    return new Uint8Array(0);
  });
  const grpcPort = grpc.listen({ port: 0, hostname: "127.0.0.1" }).port;
  let traced;
  try {
    traced = await tracedFilterCall(
      zipkin,
      origin.port,
      {
        name: "envoy.filters.http.ext_authz",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
          grpc_service: { envoy_grpc: { cluster_name: "authz" } },
          transport_api_version: "V3",
        },
      },
      ["authz", grpcPort],
      "/g",
    );
  } finally {
    await grpc.close();
  }
  const { server, client: check } = traced;
  assert.equal(check.name, "async envoy.service.auth.v3.Authorization.Check egress");
  assert.equal(check.parentId, server.id);
  assert.equal(server.tags["ext_authz_status"], "ext_authz_ok");
  assert.equal(seen[0].get("x-b3-spanid"), check.id);
  assert.equal(seen[0].get("x-b3-traceid"), server.traceId);
});
