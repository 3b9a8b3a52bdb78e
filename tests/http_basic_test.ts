/** GET through HCM -> router -> STATIC cluster -> Deno.serve origin with curl; keep-alive reuse. */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("http: GET via curl reaches the origin and comes back", async (t) => {
  await using origin = startOrigin("web");
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      statPrefix: "ingress",
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
    })],
    [staticCluster("web", [origin.port])],
  ));

  await t.step("body, upstream service time, generated x-request-id", async () => {
    const r = await curl(["-i", proxy.url("/hello?x=1")]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.body, "hello from web");
    assert.equal(res.headers.get("x-origin"), "web");
    assert.match(res.headers.get("x-envoy-upstream-service-time") ?? "", /^\d+$/);
    assert.equal(origin.requests.length, 1);
    const seen = origin.requests[0];
    assert.equal(seen.path, "/hello?x=1");
    assert.match(seen.headers.get("x-request-id") ?? "", UUID);
    assert.equal(seen.headers.get("host"), `127.0.0.1:${proxy.port()}`);
    const [log] = await proxy.log(1);
    assert.equal(log.code, "200");
    assert.equal(log.flags, "-");
    assert.equal(log.method, "GET");
    assert.equal(log.path, "/hello?x=1");
    assert.equal(log.upstreamHost, `127.0.0.1:${origin.port}`);
    assert.equal(log.cluster, "web");
    assert.equal(proxy.stat("cluster.web.upstream_rq_200"), 1);
    assert.equal(proxy.stat("cluster.web.upstream_rq_2xx"), 1);
    assert.equal(proxy.stat("http.ingress.downstream_rq_2xx"), 1);
    assert.equal(proxy.stat("http.ingress.downstream_rq_total"), 1);
  });

  await t.step(
    "keep-alive: two requests on one curl share one downstream and one upstream connection",
    async () => {
      const before = {
        cx: proxy.stat("http.ingress.downstream_cx_total"),
        up: proxy.stat("cluster.web.upstream_cx_total"),
      };
      const r = await curl([
        "-w",
        "%{http_code} %{num_connects}\n",
        "-o",
        "/dev/null",
        proxy.url("/a"),
        "-o",
        "/dev/null",
        proxy.url("/b"),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "200 1\n200 0\n");
      assert.equal(proxy.stat("http.ingress.downstream_cx_total") - before.cx, 1);
      // the first step's upstream connection is still pooled: no new one at all
      assert.equal(proxy.stat("cluster.web.upstream_cx_total"), 1);
      assert.equal(before.up, 1);
      assert.deepEqual(origin.requests.slice(1).map((s) => s.path), ["/a", "/b"]);
      const logs = await proxy.log(3);
      assert.deepEqual(logs.map((l) => l.code), ["200", "200", "200"]);
      assert.equal(proxy.stat("cluster.web.upstream_rq_200"), 3);
    },
  );
});
