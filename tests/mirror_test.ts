/** request_mirror_policies end to end: the shadow gets the request with a -shadow host, fire and forget. */
import assert from "node:assert/strict";
import { request, scriptedOrigin, type Step } from "./fault_peers.ts";
import { startH2Origin } from "./h2_upstream_peers.ts";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  refusedPort,
  sleep,
  startProxy,
  staticCluster,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

function config(primary: number, shadow: number, policy: Obj = {}): string {
  return bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{
        match: { prefix: "/" },
        route: { cluster: "web", request_mirror_policies: [{ cluster: "shadow", ...policy }] },
      }])],
    })],
    [staticCluster("web", [primary]), staticCluster("shadow", [shadow])],
  );
}

async function waitFor(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
  return cond();
}

const ok: Step[] = [{ status: 200, body: "primary" }];

Deno.test("mirror", async (t) => {
  await t.step("the shadow gets the same request with -shadow appended to the host", async () => {
    await using primary = scriptedOrigin(ok);
    await using shadow = scriptedOrigin([{ status: 500 }]);
    await using proxy = await startProxy(config(primary.port, shadow.port));
    const r = await request(proxy.port(), "/m?q=1", { headers: { host: "api.local:8080", "x-a": "1" } });
    assert.equal(r.status, 200);
    assert.equal(r.body, "primary");
    assert.ok(await waitFor(() => shadow.requests.length === 1));
    const s = shadow.requests[0];
    assert.equal(s.path, "/m?q=1");
    assert.equal(s.headers["host"], "api.local-shadow:8080");
    assert.equal(s.headers["x-a"], "1");
    assert.equal(primary.requests[0].headers["host"], "api.local:8080");
    assert.ok(await waitFor(() => proxy.stat("cluster.shadow.upstream_rq_500") === 1));
    assert.equal(proxy.stat("cluster.shadow.upstream_rq_total"), 1);
  });

  await t.step("a request body is mirrored", async () => {
    await using primary = scriptedOrigin(ok);
    await using shadow = scriptedOrigin([{ status: 200 }]);
    await using proxy = await startProxy(config(primary.port, shadow.port));
    assert.equal((await request(proxy.port(), "/upload", { body: "mirror-me" })).status, 200);
    assert.ok(await waitFor(() => shadow.requests.length === 1));
    assert.equal(shadow.requests[0].method, "POST");
    assert.equal(shadow.requests[0].body, "mirror-me");
    assert.equal(primary.requests[0].body, "mirror-me");
  });

  await t.step("a slow mirror does not delay the primary", async () => {
    await using primary = scriptedOrigin(ok);
    await using shadow = scriptedOrigin([{ stall: true }]);
    await using proxy = await startProxy(config(primary.port, shadow.port));
    const start = performance.now();
    for (let i = 0; i < 3; i++) assert.equal((await request(proxy.port(), "/")).status, 200);
    assert.ok(performance.now() - start < 1000, "primaries answered while shadows stalled");
    assert.ok(await waitFor(() => shadow.inFlight === 3));
  });

  await t.step("a dead mirror does not fail the primary", async () => {
    await using primary = scriptedOrigin(ok);
    await using proxy = await startProxy(config(primary.port, refusedPort()));
    assert.equal((await request(proxy.port(), "/")).status, 200);
    assert.ok(await waitFor(() => proxy.stat("cluster.shadow.upstream_cx_connect_fail") === 1));
    const [log] = await proxy.log(1);
    assert.equal(log.flags, "-");
  });

  await t.step("runtime_fraction 0 mirrors nothing; 100 % mirrors everything", async () => {
    await using primary = scriptedOrigin(ok);
    await using shadow = scriptedOrigin([{ status: 200 }]);
    await using none = await startProxy(config(primary.port, shadow.port, {
      runtime_fraction: { default_value: { numerator: 0 } },
    }));
    await using all = await startProxy(config(primary.port, shadow.port, {
      runtime_fraction: { default_value: { numerator: 100, denominator: "HUNDRED" } },
    }));
    for (let i = 0; i < 3; i++) await request(none.port(), "/none");
    for (let i = 0; i < 3; i++) await request(all.port(), "/all");
    assert.ok(await waitFor(() => shadow.requests.length === 3));
    await sleep(50);
    assert.deepEqual(shadow.requests.map((r) => r.path), ["/all", "/all", "/all"]);
  });

  await t.step(
    "cluster_header: the mirror cluster comes from the request; absent or unknown -> none",
    async () => {
      await using primary = scriptedOrigin(ok);
      await using shadowA = scriptedOrigin([{ status: 200 }]);
      await using shadowB = scriptedOrigin([{ status: 200 }]);
      await using proxy = await startProxy(bootstrapYaml(
        [httpListener({
          virtualHosts: [anyHost([{
            match: { prefix: "/" },
            route: { cluster: "web", request_mirror_policies: [{ cluster_header: "X-Mirror-To" }] },
          }])],
        })],
        [
          staticCluster("web", [primary.port]),
          staticCluster("a", [shadowA.port]),
          staticCluster("b", [shadowB.port]),
        ],
      ));
      const port = proxy.port();
      assert.equal((await request(port, "/to-a", { headers: { "x-mirror-to": "a" } })).status, 200);
      assert.equal((await request(port, "/to-b", { headers: { "x-mirror-to": "b" } })).status, 200);
      assert.equal((await request(port, "/none")).status, 200);
      assert.equal((await request(port, "/unknown", { headers: { "x-mirror-to": "nope" } })).status, 200);
      assert.ok(await waitFor(() => shadowA.requests.length === 1 && shadowB.requests.length === 1));
      await sleep(50);
      assert.deepEqual(shadowA.requests.map((r) => r.path), ["/to-a"]);
      assert.deepEqual(shadowB.requests.map((r) => r.path), ["/to-b"]);
      assert.equal(primary.requests.length, 4);
    },
  );

  await t.step("an HTTP/2 mirror cluster gets the shadow over HTTP/2, body included", async () => {
    await using primary = scriptedOrigin(ok);
    await using shadow = await startH2Origin((_req, res) => {
      res.writeHead(503);
      res.end("shadow");
    });
    await using proxy = await startProxy(bootstrapYaml(
      [httpListener({
        virtualHosts: [anyHost([{
          match: { prefix: "/" },
          route: { cluster: "web", request_mirror_policies: [{ cluster: "shadow" }] },
        }])],
      })],
      [
        staticCluster("web", [primary.port]),
        staticCluster("shadow", [shadow.port], { http2_protocol_options: {} }),
      ],
    ));
    for (let i = 0; i < 2; i++) {
      const r = await request(proxy.port(), `/h2/${i}`, {
        body: "mirror-me",
        headers: { host: "api.local" },
      });
      assert.equal(r.status, 200);
    }
    assert.ok(await waitFor(() => proxy.stat("cluster.shadow.upstream_rq_503") === 2));
    assert.equal(shadow.requests.length, 2);
    const s = shadow.requests[0];
    assert.equal(s.httpVersion, "2.0");
    assert.equal(s.path, "/h2/0");
    assert.equal(s.authority, "api.local-shadow");
    assert.equal(s.bodyBytes, "mirror-me".length);
    assert.equal(shadow.sessions, 1, "one multiplexed connection");
    assert.ok(await waitFor(() => proxy.stat("cluster.shadow.upstream_rq_active") === 0));
  });

  await t.step("cluster and cluster_header together are a config error", async () => {
    await assert.rejects(
      startProxy(config(0, 0, { cluster_header: "x-mirror-to" })),
      /Only one of cluster, cluster_header may be set/,
    );
  });
});
