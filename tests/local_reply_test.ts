/** Local replies with response flags: NR, UF, UT, UC, direct_response, redirect. */
import assert from "node:assert/strict";
import {
  behaviors,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  refusedPort,
  startProxy,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";

Deno.test("http: local replies carry the right status, flags and stats", async (t) => {
  await using stall = startRawOrigin(behaviors.stall());
  await using cut = startRawOrigin(behaviors.cutMidHead());
  const vhost = {
    name: "app",
    domains: ["app"],
    routes: [
      { match: { prefix: "/refused" }, route: { cluster: "refused" } },
      { match: { prefix: "/stall" }, route: { cluster: "stall", timeout: "0.3s" } },
      { match: { prefix: "/cut" }, route: { cluster: "cut" } },
      { match: { path: "/direct" }, direct_response: { status: 418, body: { inline_string: "teapot\n" } } },
      { match: { path: "/old" }, redirect: { path_redirect: "/new", response_code: "MOVED_PERMANENTLY" } },
      { match: { path: "/secure" }, redirect: { https_redirect: true } },
    ],
  };
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({ statPrefix: "lr", virtualHosts: [vhost] })],
    [
      staticCluster("refused", [refusedPort()]),
      staticCluster("stall", [stall.port]),
      staticCluster("cut", [cut.port]),
    ],
  ));
  const get = async (path: string, host = "app") => {
    const r = await curl(["-i", "-H", `Host: ${host}`, proxy.url(path)]);
    assert.equal(r.code, 0, r.stderr);
    return parseResponse(r.stdout);
  };
  let n = 0;
  const lastLog = async () => (await proxy.log(++n)).at(-1)!;

  await t.step("no route: 404 NR", async () => {
    const res = await get("/anything", "other.example");
    assert.equal(res.status, 404);
    const log = await lastLog();
    assert.equal(log.code, "404");
    assert.equal(log.flags, "NR");
    assert.equal(log.details, "route_not_found");
    assert.equal(proxy.stat("http.lr.no_route"), 1);
    assert.equal(proxy.stat("http.lr.downstream_rq_4xx"), 1);
  });

  await t.step("refusing host: 503 UF", async () => {
    const res = await get("/refused");
    assert.equal(res.status, 503);
    assert.match(res.body, /upstream connect error/);
    const log = await lastLog();
    assert.equal(log.code, "503");
    assert.equal(log.flags, "UF");
    assert.equal(log.cluster, "refused");
    assert.equal(proxy.stat("cluster.refused.upstream_cx_connect_fail"), 1);
    assert.equal(proxy.stat("cluster.refused.upstream_rq_503"), 0, "no upstream answer was received");
    assert.equal(proxy.stat("http.lr.downstream_rq_5xx"), 1);
  });

  await t.step("route timeout 0.3s on a stalling origin: 504 UT", async () => {
    const t0 = performance.now();
    const res = await get("/stall");
    const took = performance.now() - t0;
    assert.equal(res.status, 504);
    assert.equal(res.body, "upstream request timeout");
    assert.ok(took >= 280 && took < 2000, `took ${took}ms`);
    const log = await lastLog();
    assert.equal(log.flags, "UT");
    assert.equal(log.code, "504");
    assert.equal(proxy.stat("cluster.stall.upstream_rq_timeout"), 1);
  });

  await t.step("origin closes mid-head: 503 UC", async () => {
    const res = await get("/cut");
    assert.equal(res.status, 503);
    assert.match(res.body, /upstream connect error or disconnect\/reset before headers/);
    const log = await lastLog();
    assert.equal(log.code, "503");
    assert.equal(log.flags, "UC");
  });

  await t.step("direct_response", async () => {
    const res = await get("/direct");
    assert.equal(res.status, 418);
    assert.equal(res.body, "teapot\n");
    assert.equal(res.headers.get("content-length"), "7");
    const log = await lastLog();
    assert.equal(log.code, "418");
    assert.equal(log.flags, "-");
    assert.equal(proxy.stat("http.lr.rq_direct_response"), 1);
  });

  await t.step("redirects: path_redirect 301 and https_redirect", async () => {
    const res = await get("/old");
    assert.equal(res.status, 301);
    assert.equal(res.headers.get("location"), "http://app/new");
    const sec = await get("/secure");
    assert.equal(sec.status, 301);
    assert.equal(sec.headers.get("location"), "https://app/secure");
    await lastLog();
    const log = await lastLog();
    assert.equal(log.code, "301");
    assert.equal(proxy.stat("http.lr.rq_redirect"), 2);
  });
});
