/** Routing: virtual host selection, matchers, rewrites, weighted clusters, RING_HASH with a header hash. */
import assert from "node:assert/strict";
import {
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

const direct = (body: string) => ({ status: 200, body: { inline_string: body } });

Deno.test("http: routing", async (t) => {
  await using a = startOrigin("a");
  await using b = startOrigin("b");
  await using h1 = startOrigin("h1");
  await using h2 = startOrigin("h2");
  await using h3 = startOrigin("h3");
  const vhosts = [
    {
      name: "exact",
      domains: ["exact.example"],
      routes: [{ match: { prefix: "/" }, direct_response: direct("vh-exact") }],
    },
    {
      name: "suffix",
      domains: ["*.suffix.example"],
      routes: [{ match: { prefix: "/" }, direct_response: direct("vh-suffix") }],
    },
    {
      name: "prefix",
      domains: ["prefix.*"],
      routes: [{ match: { prefix: "/" }, direct_response: direct("vh-prefix") }],
    },
    {
      name: "default",
      domains: ["*"],
      routes: [
        { match: { path: "/p/exact" }, direct_response: direct("path") },
        {
          match: { prefix: "/p/", headers: [{ name: "x-flag", string_match: { exact: "on" } }] },
          direct_response: direct("header"),
        },
        { match: { safe_regex: { regex: "^/re/[0-9]+$" } }, direct_response: direct("regex") },
        {
          match: { prefix: "/q", query_parameters: [{ name: "k", string_match: { exact: "v" } }] },
          direct_response: direct("query"),
        },
        { match: { prefix: "/rw/" }, route: { cluster: "a", prefix_rewrite: "/new/" } },
        { match: { prefix: "/host" }, route: { cluster: "a", host_rewrite_literal: "rewritten.example" } },
        {
          match: { prefix: "/w" },
          route: { weighted_clusters: { clusters: [{ name: "a", weight: 50 }, { name: "b", weight: 50 }] } },
        },
        {
          match: { prefix: "/hash" },
          route: { cluster: "ring", hash_policy: [{ header: { header_name: "x-user" } }] },
        },
        { match: { prefix: "/" }, direct_response: direct("fallback") },
      ],
    },
  ];
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({ statPrefix: "rt", virtualHosts: vhosts })],
    [
      staticCluster("a", [a.port]),
      staticCluster("b", [b.port]),
      staticCluster("ring", [h1.port, h2.port, h3.port], { lb_policy: "RING_HASH" }),
    ],
  ));
  const get = async (path: string, ...headers: string[]) => {
    const r = await curl(["-i", ...headers.flatMap((h) => ["-H", h]), proxy.url(path)]);
    assert.equal(r.code, 0, r.stderr);
    return parseResponse(r.stdout);
  };

  await t.step("virtual host by domain: exact, *.suffix, prefix.*, *", async () => {
    assert.equal((await get("/", "Host: exact.example")).body, "vh-exact");
    assert.equal(
      (await get("/", "Host: exact.example:8080")).body,
      "fallback",
      "the port is part of the match",
    );
    assert.equal((await get("/", "Host: api.suffix.example")).body, "vh-suffix");
    assert.equal((await get("/", "Host: prefix.anything.io")).body, "vh-prefix");
    assert.equal((await get("/", "Host: EXACT.example")).body, "vh-exact", "domains are case-insensitive");
    assert.equal((await get("/", "Host: unknown.example")).body, "fallback");
  });

  await t.step("path, prefix+header, safe_regex and query matchers", async () => {
    assert.equal((await get("/p/exact")).body, "path");
    assert.equal((await get("/p/other", "x-flag: on")).body, "header");
    assert.equal((await get("/p/other", "x-flag: off")).body, "fallback");
    assert.equal((await get("/re/123")).body, "regex");
    assert.equal((await get("/re/12a")).body, "fallback");
    assert.equal((await get("/q?k=v")).body, "query");
    assert.equal((await get("/q?k=w")).body, "fallback");
  });

  await t.step("prefix_rewrite sets x-envoy-original-path; the log shows the original path", async () => {
    const res = await get("/rw/thing?z=1");
    assert.equal(res.body, "hello from a");
    const seen = a.requests.at(-1)!;
    assert.equal(seen.path, "/new/thing?z=1");
    assert.equal(seen.headers.get("x-envoy-original-path"), "/rw/thing?z=1");
    const logs = await proxy.log(14);
    assert.equal(logs.length, 14);
    const log = logs.at(-1)!;
    assert.equal(log.path, "/rw/thing?z=1");
    assert.equal(log.cluster, "a");
  });

  await t.step("host_rewrite_literal", async () => {
    await get("/host");
    assert.equal(a.requests.at(-1)!.headers.get("host"), "rewritten.example");
  });

  await t.step("weighted clusters: both get traffic", async () => {
    const before = [a.requests.length, b.requests.length];
    for (let i = 0; i < 40; i++) await get("/w");
    const gotA = a.requests.length - before[0];
    const gotB = b.requests.length - before[1];
    assert.equal(gotA + gotB, 40);
    assert.ok(gotA > 0 && gotB > 0, `a=${gotA} b=${gotB}`);
    assert.equal(proxy.stat("cluster.a.upstream_rq_200") + proxy.stat("cluster.b.upstream_rq_200"), 42);
  });

  await t.step(
    "RING_HASH with a header hash policy: the same header always reaches the same host",
    async () => {
      const hosts = [h1, h2, h3];
      const where = (n: number[]) => hosts.map((h, i) => h.requests.length - n[i]);
      const chosen = new Set<string>();
      for (const user of ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]) {
        const before = hosts.map((h) => h.requests.length);
        const bodies = new Set<string>();
        for (let i = 0; i < 5; i++) bodies.add((await get("/hash", `x-user: ${user}`)).body);
        assert.equal(bodies.size, 1, `${user} went to ${[...bodies]}`);
        assert.equal(where(before).filter((n) => n > 0).length, 1);
        chosen.add([...bodies][0]);
      }
      assert.ok(chosen.size >= 2, `8 users all hashed to ${[...chosen]}`);
      assert.equal(proxy.stat("cluster.ring.upstream_rq_200"), 40);
    },
  );
});
