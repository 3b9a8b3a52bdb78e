/**
 * Admin /debug/route against a running server with workers (the main thread holds no route tables: it compiles
 * the listener's route config on demand), and the x-nuncio-debug response header, honoured for internal
 * callers only.
 */
import assert from "node:assert/strict";
import { ADMIN, freePort, startServer } from "./health_helpers.ts";
import { bootstrapYaml, curl, httpListener, startOrigin, staticCluster } from "./helpers.ts";

/** GET through the proxy with curl (fetch cannot set Host): status and response headers, lower-cased. */
async function get(
  url: string,
  headers: string[],
): Promise<{ status: number; headers: Map<string, string> }> {
  const r = await curl(["-D", "-", "-o", "/dev/null", ...headers.flatMap((h) => ["-H", h]), url]);
  const lines = r.stdout.split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const map = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) map.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
  }
  return { status, headers: map };
}

type Obj = Record<string, unknown>;

function config(port: number, origins: { a: number; b1: number; b2: number }, hcm: Obj = {}): string {
  const l = httpListener({
    name: "edge",
    statPrefix: "edge",
    virtualHosts: [
      {
        name: "admin-only",
        domains: ["admin.local"],
        routes: [{ match: { prefix: "/" }, route: { cluster: "a" } }],
      },
      {
        name: "main",
        domains: ["*.example.com"],
        routes: [
          {
            name: "beta",
            match: { prefix: "/api", headers: [{ name: "x-beta", string_match: { exact: "yes" } }] },
            route: { cluster: "b" },
          },
          { name: "api", match: { prefix: "/api" }, route: { cluster: "a", timeout: "2s" } },
          {
            name: "split",
            match: { prefix: "/" },
            route: { weighted_clusters: { clusters: [{ name: "a", weight: 1 }, { name: "b", weight: 3 }] } },
          },
        ],
      },
    ],
    hcm: { use_remote_address: true, ...hcm },
  });
  (l.address as { socket_address: { port_value: number } }).socket_address.port_value = port;
  return bootstrapYaml([l], [
    staticCluster("a", [origins.a]),
    staticCluster("b", [origins.b1, origins.b2], { lb_policy: "ROUND_ROBIN" }),
  ], { admin: ADMIN });
}

Deno.test("/debug/route explains listener, chain, virtual hosts, routes, cluster and host (2 workers)", async () => {
  await using a = startOrigin("a");
  await using b1 = startOrigin("b1");
  await using b2 = startOrigin("b2");
  const port = freePort();
  await using s = await startServer(config(port, { a: a.port, b1: b1.port, b2: b2.port }), 2);
  const ask = async (q: string) => JSON.parse(await s.admin(`/debug/route?${q}`));

  const ex = await ask("authority=shop.example.com&path=/api/v1&header=x-beta:yes&listener=edge");
  assert.equal(ex.listener.name, "edge");
  assert.equal(ex.listener.address, `127.0.0.1:${port}`);
  assert.equal(ex.filter_chains.length, 1);
  assert.equal(ex.filter_chains[0].selected, true);
  assert.deepEqual(ex.http_connection_manager.http_filters, ["envoy.filters.http.router"]);
  assert.equal(ex.virtual_host, "main");
  assert.match(ex.virtual_hosts[0].reason, /domain mismatch/);
  assert.equal(ex.route.name, "beta");
  assert.equal(ex.cluster.name, "b");
  assert.ok([`127.0.0.1:${b1.port}`, `127.0.0.1:${b2.port}`].includes(ex.host.host), JSON.stringify(ex.host));
  assert.equal(ex.host.policy, "ROUND_ROBIN");
  assert.equal(ex.host.sideEffectFree, true);
  assert.equal(ex.result, "forwarded to cluster 'b'");

  // the header matcher fails: the next route, and why the first did not match
  const noBeta = await ask(`authority=shop.example.com&path=/api/v1&listener=127.0.0.1:${port}`);
  assert.equal(noBeta.route.name, "api");
  assert.match(noBeta.routes[0].reason, /header matcher x-beta exact 'yes' failed/);
  assert.equal(noBeta.listener.reason.includes("bound at"), true);

  // weighted clusters: which and why
  const split = await ask("authority=www.example.com&path=/home");
  assert.equal(split.route.name, "split");
  assert.equal(split.cluster.specifier, "weighted_clusters");
  assert.deepEqual(split.cluster.weights.map((w: { percent: number }) => w.percent), [25, 75]);
  assert.match(split.routes[0].reason, /prefix '\/api' does not match path '\/home'/);

  // no virtual host: 404 NR with every domain mismatch
  const none = await ask("authority=nowhere.org&path=/");
  assert.equal(none.virtual_host, null);
  assert.match(none.result, /no virtual host matches/);

  // bad input is a 400 naming what exists
  const bad = await s.admin("/debug/route?listener=nope");
  assert.match(bad, /No listener named or bound at "nope" \(listeners: edge 127\.0\.0\.1:\d+\)/);
});

const DEBUG_RE =
  /^route=main\/api;cluster=a;host=127\.0\.0\.1:\d+;filters=router:\d+\.\d\dms;upstream=\d+\.\d\dms$/;

Deno.test("x-nuncio-debug: decisions and timings for an internal caller, nothing otherwise", async () => {
  await using a = startOrigin("a");
  await using b1 = startOrigin("b1");
  await using b2 = startOrigin("b2");
  const port = freePort();
  await using s = await startServer(config(port, { a: a.port, b1: b1.port, b2: b2.port }), 1);
  const url = `http://127.0.0.1:${port}/api/x`;
  const res = await get(url, ["Host: shop.example.com", "x-nuncio-debug: 1"]);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("x-nuncio-debug") ?? "", DEBUG_RE);
  const plain = await get(url, ["Host: shop.example.com"]);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get("x-nuncio-debug"), undefined);
  // a no-route answer still reports what was decided
  const nr = await get(`http://127.0.0.1:${port}/`, ["Host: nowhere.org", "x-nuncio-debug: 1"]);
  assert.equal(nr.status, 404);
  assert.match(nr.headers.get("x-nuncio-debug") ?? "", /^route=none;cluster=none;host=none;filters=router:/);
  void s;
});

Deno.test("x-nuncio-debug is ignored from a caller outside internal_address_config", async () => {
  await using a = startOrigin("a");
  const port = freePort();
  const yaml = config(port, { a: a.port, b1: a.port, b2: a.port }, {
    internal_address_config: { cidr_ranges: [{ address_prefix: "10.0.0.0", prefix_len: 8 }] },
  });
  await using _s = await startServer(yaml, 1);
  const res = await get(`http://127.0.0.1:${port}/api/x`, ["Host: shop.example.com", "x-nuncio-debug: 1"]);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-nuncio-debug"), undefined);
  // the header went upstream untouched (it is not an x-envoy-* header)
  assert.equal(a.requests.at(-1)?.headers.get("x-nuncio-debug"), "1");
});
