/**
 * Local rate limiting end to end: exact counts over HTTP (filter level, per route, x-ratelimit headers),
 * over TCP (network filter in front of tcp_proxy), and one bucket shared by two data planes on one arena.
 */
import { loadTlsRuntime } from "../src/transport/cert_store.ts";
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { SharedArena } from "../src/common/shared_arena.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigText } from "../src/config/load.ts";
import { DataPlane } from "../src/server/data_plane.ts";
import {
  anyHost,
  behaviors,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  rawExchange,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

const LRL_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};
const ALWAYS = { default_value: { numerator: 100, denominator: "HUNDRED" }, runtime_key: "k" };

/** A LocalRateLimit message (enabled and enforced for every request). */
function lrl(statPrefix: string, maxTokens?: number, extra: Obj = {}): Obj {
  return {
    "@type": LRL_TYPE,
    stat_prefix: statPrefix,
    ...(maxTokens ? { token_bucket: { max_tokens: maxTokens, fill_interval: "3600s" } } : {}),
    filter_enabled: ALWAYS,
    filter_enforced: ALWAYS,
    ...extra,
  };
}

/** Sends `n` GETs on one curl (keep-alive) and returns the status codes. */
async function codes(url: string, n: number, extra: string[] = []): Promise<number[]> {
  const args = ["-w", "%{http_code}\n", ...extra];
  for (let i = 0; i < n; i++) args.push("-o", "/dev/null", url);
  const r = await curl(args);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").map(Number);
}

function count(list: number[], code: number): number {
  return list.filter((c) => c === code).length;
}

Deno.test("http local_ratelimit: max_tokens 5 lets exactly 5 through, the rest get 429 RL", async (t) => {
  await using origin = startOrigin("web");
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
      hcm: {
        http_filters: [{
          name: "envoy.filters.http.local_ratelimit",
          typed_config: lrl("lrl_http", 5, {
            response_headers_to_add: [{ header: { key: "x-local-rate-limit", value: "true" } }],
          }),
        }, ROUTER],
      },
    })],
    [staticCluster("web", [origin.port])],
  ));

  await t.step("5 x 200 then 429s; stats and access log flags", async () => {
    const got = await codes(proxy.url("/"), 9);
    assert.deepEqual(got, [200, 200, 200, 200, 200, 429, 429, 429, 429]);
    assert.equal(origin.requests.length, 5);
    assert.equal(proxy.stat("lrl_http.http_local_rate_limit.enabled"), 9);
    assert.equal(proxy.stat("lrl_http.http_local_rate_limit.ok"), 5);
    assert.equal(proxy.stat("lrl_http.http_local_rate_limit.rate_limited"), 4);
    assert.equal(proxy.stat("lrl_http.http_local_rate_limit.enforced"), 4);
    const log = await proxy.log(9);
    assert.equal(log[8].code, "429");
    assert.equal(log[8].flags, "RL");
    assert.equal(log[8].details, "local_rate_limited");
    assert.equal(log[0].flags, "-");
  });

  await t.step("the 429 carries x-envoy-ratelimited, the configured header and the body", async () => {
    const r = parseResponse((await curl(["-i", proxy.url("/")])).stdout);
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("x-envoy-ratelimited"), "true");
    assert.equal(r.headers.get("x-local-rate-limit"), "true");
    assert.equal(r.body, "local_rate_limited");
  });
});

Deno.test("http local_ratelimit: per-route buckets, enabled-but-not-enforced, x-ratelimit headers", async (t) => {
  await using origin = startOrigin("web");
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [
        anyHost([
          {
            match: { prefix: "/a" },
            route: { cluster: "web" },
            typed_per_filter_config: { "envoy.filters.http.local_ratelimit": lrl("route_a", 2) },
          },
          {
            match: { prefix: "/b" },
            route: { cluster: "web" },
            typed_per_filter_config: { "envoy.filters.http.local_ratelimit": lrl("route_b", 3) },
          },
          {
            match: { prefix: "/shadow" },
            route: { cluster: "web" },
            typed_per_filter_config: {
              "envoy.filters.http.local_ratelimit": lrl("route_shadow", 1, {
                filter_enforced: { default_value: { numerator: 0 }, runtime_key: "k" },
                request_headers_to_add_when_not_enforced: [{
                  header: { key: "x-would-limit", value: "yes" },
                }],
              }),
            },
          },
          {
            match: { prefix: "/x" },
            route: { cluster: "web" },
            typed_per_filter_config: {
              "envoy.filters.http.local_ratelimit": lrl("route_x", 3, {
                enable_x_ratelimit_headers: "DRAFT_VERSION_03",
              }),
            },
          },
          { match: { prefix: "/" }, route: { cluster: "web" } },
        ]),
      ],
      hcm: {
        http_filters: [{
          name: "envoy.filters.http.local_ratelimit",
          // No bucket at the filter level: only routes with their own config are limited.
          typed_config: lrl("lrl_default"),
        }, ROUTER],
      },
    })],
    [staticCluster("web", [origin.port])],
  ));

  await t.step("each route has its own bucket; unconfigured routes are not limited", async () => {
    assert.deepEqual(await codes(proxy.url("/a"), 4), [200, 200, 429, 429]);
    assert.deepEqual(await codes(proxy.url("/b"), 5), [200, 200, 200, 429, 429]);
    assert.deepEqual(await codes(proxy.url("/a"), 1), [429]);
    assert.equal(count(await codes(proxy.url("/c"), 10), 200), 10);
    assert.equal(proxy.stat("route_a.http_local_rate_limit.ok"), 2);
    assert.equal(proxy.stat("route_a.http_local_rate_limit.rate_limited"), 3);
    assert.equal(proxy.stat("route_b.http_local_rate_limit.rate_limited"), 2);
    assert.equal(proxy.stat("lrl_default.http_local_rate_limit.enabled"), 0);
  });

  await t.step(
    "enabled but not enforced: requests pass, over-limit ones carry the configured header",
    async () => {
      const before = origin.requests.length;
      assert.deepEqual(await codes(proxy.url("/shadow"), 3), [200, 200, 200]);
      const seen = origin.requests.slice(before).map((r) => r.headers.get("x-would-limit"));
      assert.deepEqual(seen, [null, "yes", "yes"]);
      assert.equal(proxy.stat("route_shadow.http_local_rate_limit.rate_limited"), 2);
      assert.equal(proxy.stat("route_shadow.http_local_rate_limit.enforced"), 0);
    },
  );

  await t.step("DRAFT_VERSION_03 headers count down and stay on the 429", async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = parseResponse((await curl(["-i", proxy.url("/x")])).stdout);
      assert.equal(r.status, i < 3 ? 200 : 429);
      assert.equal(r.headers.get("x-ratelimit-limit"), "3");
      const reset = Number(r.headers.get("x-ratelimit-reset"));
      assert.ok(reset > 0 && reset <= 3600, `reset ${reset}`);
      remaining.push(r.headers.get("x-ratelimit-remaining")!);
    }
    assert.deepEqual(remaining, ["2", "1", "0", "0"]);
  });
});

Deno.test("network local_ratelimit: max_tokens 3 admits 3 connections to tcp_proxy, closes the rest", async () => {
  await using echo = startRawOrigin(behaviors.echo());
  const listener = {
    name: "tcp",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [
        {
          name: "envoy.filters.network.local_ratelimit",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
            stat_prefix: "tcp_lrl",
            token_bucket: { max_tokens: 3, fill_interval: "3600s" },
            runtime_enabled: { default_value: true, runtime_key: "k" },
          },
        },
        {
          name: "envoy.filters.network.tcp_proxy",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            stat_prefix: "tcp",
            cluster: "echo",
          },
        },
      ],
    }],
  };
  await using proxy = await startProxy(bootstrapYaml([listener], [staticCluster("echo", [echo.port])]));
  const echoed: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await rawExchange(proxy.port(), `ping${i}`, { halfClose: true, timeoutMs: 3000 });
    assert.ok(r.closed, `connection ${i} did not close`);
    echoed.push(r.text);
  }
  assert.deepEqual(echoed, ["ping0", "ping1", "ping2", "", "", ""]);
  assert.equal(proxy.stat("local_rate_limit.tcp_lrl.rate_limited"), 3);
  assert.equal(proxy.stat("tcp.tcp.downstream_cx_total"), 3);
});

/** Starts a data plane from a bootstrap on an existing arena (one "worker" of a multi-core process). */
async function startPlane(yaml: string, index: number, arena: SharedArena): Promise<DataPlane> {
  const loaded = loadConfigText(yaml, "test.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
  await loadTlsRuntime();
  const plane = new DataPlane(loaded.bootstrap, index, arena);
  await plane.start(false);
  return plane;
}

Deno.test("local_ratelimit: two data planes on one SharedArena share one bucket", async () => {
  await using origin = startOrigin("web");
  const listener = httpListener({
    virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
    hcm: {
      access_log: [],
      http_filters: [{ name: "envoy.filters.http.local_ratelimit", typed_config: lrl("shared", 4) }, ROUTER],
    },
  });
  const yaml = stringify({
    static_resources: { listeners: [listener], clusters: [staticCluster("web", [origin.port])] },
  });
  const main = SharedArena.create({ bytes: 1 << 20, capacity: 256 });
  const a = await startPlane(yaml, 0, main);
  const b = await startPlane(yaml, 1, SharedArena.attach(main.buffer));
  try {
    const portA = a.addresses()[0].port;
    const portB = b.addresses()[0].port;
    assert.notEqual(portA, portB);
    const gotA = await codes(`http://127.0.0.1:${portA}/`, 3);
    const gotB = await codes(`http://127.0.0.1:${portB}/`, 3);
    assert.deepEqual(gotA, [200, 200, 200]);
    assert.deepEqual(gotB, [200, 429, 429]);
    const ok = (p: DataPlane) => p.stats.snapshot().counters["shared.http_local_rate_limit.ok"] ?? 0;
    assert.equal(ok(a) + ok(b), 4);
  } finally {
    await a.stop();
    await b.stop();
  }
});
