/** Load shapes: a 200-request burst over 20 concurrent keep-alive connections; lifecycle of the plane. */
import { loadTlsRuntime } from "../src/transport/cert_store.ts";
import assert from "node:assert/strict";
import { loadConfigText } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { DataPlane } from "../src/server/data_plane.ts";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

Deno.test("http: 200 requests over 20 concurrent keep-alive connections all succeed", async () => {
  await using origin = startOrigin("web");
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      statPrefix: "burst",
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
    })],
    [staticCluster("web", [origin.port])],
  ));
  const clients = Array.from({ length: 20 }, (_, c) => {
    const args = ["-w", "%{http_code} %{num_connects}\n"];
    for (let i = 0; i < 10; i++) args.push("-o", "/dev/null", proxy.url(`/c${c}/r${i}`));
    return curl(args);
  });
  const results = await Promise.all(clients);
  let connects = 0;
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 10);
    for (const l of lines) {
      const [code, n] = l.split(" ");
      assert.equal(code, "200");
      connects += Number(n);
    }
  }
  assert.equal(connects, 20, "each client used one connection");
  assert.equal(origin.requests.length, 200);
  assert.equal(new Set(origin.requests.map((r) => r.path)).size, 200);
  assert.equal(proxy.stat("http.burst.downstream_cx_total"), 20);
  assert.equal(proxy.stat("http.burst.downstream_rq_2xx"), 200);
  assert.equal(proxy.stat("cluster.web.upstream_rq_200"), 200);
  const upCx = proxy.stat("cluster.web.upstream_cx_total");
  assert.ok(upCx >= 1 && upCx <= 20, `upstream connections: ${upCx}`);
  const logs = await proxy.log(200);
  assert.equal(logs.length, 200);
  assert.ok(logs.every((l) => l.code === "200" && l.flags === "-"));
});

Deno.test("data plane: stop() closes the access log files it opened", async () => {
  const path = await Deno.makeTempFile({ prefix: "nuncio_e2e_", suffix: ".log" });
  try {
    const loaded = loadConfigText(
      bootstrapYaml([
        httpListener({
          virtualHosts: [anyHost([{ match: { prefix: "/" }, direct_response: { status: 200 } }])],
        }),
      ], [])
        .replaceAll("$LOG", path),
      "test.yaml",
      { crossCheck: checkClusterReferences },
    );
    assert.ok(loaded.ok);
    await loadTlsRuntime();
    const plane = new DataPlane(loaded.bootstrap);
    await plane.start(false);
    const r = await curl([
      `http://127.0.0.1:${plane.addresses()[0].port}/`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
    ]);
    assert.equal(r.stdout, "200");
    await plane.stop();
    // the resource sanitizer fails this test if the access log file is still open here
  } finally {
    await Deno.remove(path);
  }
});
